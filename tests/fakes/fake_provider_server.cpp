// tests/fakes/fake_provider_server.cpp: the fake Anthropic / OpenAI servers of
// fake_provider_server.hpp, on Boost.Beast with C++20 coroutines. One io_context, one thread;
// one coroutine per connection (keep-alive: several requests each). Responses are written as raw
// HTTP/1.1 bytes (chunked for event streams) so that faults can cut, stall or corrupt them at
// any point. The script format is in README.md. The OpenAI Realtime WebSocket (kind
// openai_realtime) is one more coroutine per connection, after the upgrade ("Realtime" below).
#include "fake_provider_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace consilium::test::fakes {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string read_file(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::invalid_argument("fake server: cannot read " + p.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The recorded stream cut into events: each piece ends after a blank line; their concatenation is
// the file, byte for byte.
std::vector<std::string> split_events(const std::string &s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' && i + 1 < s.size() && s[i + 1] == '\n') {
            out.push_back(s.substr(start, i + 2 - start));
            start = i + 2;
            ++i;
        } else if (s.compare(i, 4, "\r\n\r\n") == 0) {
            out.push_back(s.substr(start, i + 4 - start));
            start = i + 4;
            i += 3;
        }
    }
    if (start < s.size()) out.push_back(s.substr(start));
    return out;
}

const char *reason_phrase(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return "Status";
    }
}

// ---- Scripts --------------------------------------------------------------------------------

const std::set<std::string> kFaults = {"rate_limit",      "server_error", "unavailable", "overloaded", "context_too_long",
                                       "content_filter",  "insufficient_quota", "reset", "hang",     "cut",
                                       "stall",           "malformed",    "no_end",      "reject_prefill", "down",
                                       "eof",             "refuse_upgrade", "close"};

// What to do with one request.
struct Action {
    std::string fault;   // "" = replay
    std::string replay;  // a recording (relative to the protocols dir, or absolute)
    int status = 0;      // overrides the recording's status
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<std::string> retry_after, retry_after_ms, reset_requests;
    int after_events = 0;
    int64_t ms = 0;
    int64_t delay_ms = 0;
    size_t chunk_bytes = 0;
    int64_t event_delay_ms = 0;
    std::string as = "503";  // "down": "reset" or a status
    int close_code = 1000;   // "close" (Realtime WebSocket): the code of the fake's close frame
    std::string id;          // identity of a "down" window
};

Action parse_action(const json &j, const std::string &where) {
    if (!j.is_object()) throw std::invalid_argument(where + ": an action must be an object");
    Action a;
    a.id = where;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string &k = it.key();
        const json &v = it.value();
        auto want_str = [&] {
            if (!v.is_string()) throw std::invalid_argument(where + "." + k + ": expected a string");
            return v.get<std::string>();
        };
        auto want_int = [&]() -> int64_t {
            if (!v.is_number_integer() || v.get<int64_t>() < 0)
                throw std::invalid_argument(where + "." + k + ": expected a non-negative integer");
            return v.get<int64_t>();
        };
        if (k == "fault") {
            a.fault = want_str();
            if (!kFaults.count(a.fault)) throw std::invalid_argument(where + ".fault: unknown fault \"" + a.fault + "\"");
        } else if (k == "replay") a.replay = want_str();
        else if (k == "status") a.status = static_cast<int>(want_int());
        else if (k == "retry_after") a.retry_after = want_str();
        else if (k == "retry_after_ms") a.retry_after_ms = want_str();
        else if (k == "reset_requests") a.reset_requests = want_str();
        else if (k == "after_events") a.after_events = static_cast<int>(want_int());
        else if (k == "ms") a.ms = want_int();
        else if (k == "delay_ms") a.delay_ms = want_int();
        else if (k == "chunk_bytes") a.chunk_bytes = static_cast<size_t>(want_int());
        else if (k == "event_delay_ms") a.event_delay_ms = want_int();
        else if (k == "as") a.as = want_str();
        else if (k == "close_code") a.close_code = static_cast<int>(want_int());
        else if (k == "headers") {
            if (!v.is_object()) throw std::invalid_argument(where + ".headers: expected an object");
            for (auto h = v.begin(); h != v.end(); ++h) {
                if (!h.value().is_string()) throw std::invalid_argument(where + ".headers." + h.key() + ": expected a string");
                a.headers.emplace_back(h.key(), h.value().get<std::string>());
            }
        } else {
            throw std::invalid_argument(where + "." + k + ": unknown key");
        }
    }
    return a;
}

struct Script {
    std::optional<std::string> api_key;
    std::optional<Action> fallback;
    std::map<int, Action> by_number;
    std::map<std::string, Action> by_model;
};

Script parse_script(const std::string &text) {
    Script s;
    if (text.empty()) return s;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("script: not a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string &k = it.key();
        if (k == "api_key") {
            if (!it.value().is_string()) throw std::invalid_argument("script.api_key: expected a string");
            s.api_key = it.value().get<std::string>();
        } else if (k == "default") {
            s.fallback = parse_action(it.value(), "script.default");
        } else if (k == "requests") {
            if (!it.value().is_object()) throw std::invalid_argument("script.requests: expected an object");
            for (auto r = it.value().begin(); r != it.value().end(); ++r) {
                int n = 0;
                try {
                    n = std::stoi(r.key());
                } catch (...) {
                    n = 0;
                }
                if (n <= 0) throw std::invalid_argument("script.requests." + r.key() + ": keys are request numbers from 1");
                s.by_number[n] = parse_action(r.value(), "script.requests." + r.key());
            }
        } else if (k == "models") {
            if (!it.value().is_object()) throw std::invalid_argument("script.models: expected an object");
            for (auto m = it.value().begin(); m != it.value().end(); ++m)
                s.by_model[m.key()] = parse_action(m.value(), "script.models." + m.key());
        } else {
            throw std::invalid_argument("script." + k + ": unknown key");
        }
    }
    return s;
}

// ---- Responses ------------------------------------------------------------------------------

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    bool stream = false;
    std::vector<std::string> events;  // stream: the pieces written one chunk each
    std::string body;                 // otherwise

    bool has_header(std::string_view name) const {
        for (const auto &[k, v] : headers)
            if (lower(k) == lower(name)) return true;
        return false;
    }
    void set_header(const std::string &name, const std::string &value) {
        for (auto &[k, v] : headers)
            if (lower(k) == lower(name)) {
                v = value;
                return;
            }
        headers.emplace_back(name, value);
    }
};

Response json_response(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    r.headers.emplace_back("content-type", "application/json");
    return r;
}

std::string anthropic_error(const std::string &type, const std::string &message, int n) {
    return nlohmann::ordered_json{{"type", "error"},
                                  {"error", {{"type", type}, {"message", message}}},
                                  {"request_id", "req_fake_" + std::to_string(n)}}
        .dump();
}

std::string openai_error(const std::string &type, const std::string &message, const json &param, const json &code) {
    return nlohmann::ordered_json{{"error", {{"message", message}, {"type", type}, {"param", param}, {"code", code}}}}
        .dump(2);
}

}  // namespace

std::string FakeRequest::header(std::string_view name) const {
    std::string n = lower(name);
    for (const auto &[k, v] : headers)
        if (k == n) return v;
    return {};
}

bool FakeRequest::has_header(std::string_view name) const {
    std::string n = lower(name);
    for (const auto &[k, v] : headers)
        if (k == n) return true;
    return false;
}

FakeKind parse_fake_kind(std::string_view name) {
    if (name == "anthropic") return FakeKind::anthropic;
    if (name == "openai") return FakeKind::openai;
    if (name == "openai_realtime") return FakeKind::openai_realtime;
    throw std::invalid_argument("unknown fake kind \"" + std::string(name) + "\" (anthropic, openai or openai_realtime)");
}

// One response in progress, as the client sees it: it counts from the request's arrival until
// the fake is about to write the bytes that end the response for the client (the last event, or
// an error body), so that a client that starts its next request the moment it read the end is
// never counted twice.
struct InFlight {
    std::function<void()> on_finish;
    bool done = false;
    void finish() {
        if (done) return;
        done = true;
        on_finish();
    }
};

// One accepted connection. LIFETIME: shared by its session coroutine and the pause watchers.
// Coroutines hold no reference to the Impl: the destructor stops the loop and joins it first, and
// the io_context (a member) then destroys whatever coroutine frames were left suspended.
struct Conn {
    explicit Conn(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
};

struct FakeProviderServer::Impl {
    FakeKind kind;
    fs::path dir;
    asio::io_context io;
    tcp::acceptor acceptor{io};
    std::thread thread;
    uint16_t port = 0;

    mutable std::mutex mu;
    mutable std::condition_variable cv;
    std::shared_ptr<const Script> script = std::make_shared<Script>();
    std::vector<FakeRequest> requests;
    int counter = 0;
    size_t aborts = 0, active = 0, peak = 0;
    std::map<std::string, Clock::time_point> down_since;
    std::function<void(const FakeRequest &)> observer;
    std::map<int, FakeWsSession> ws_runs;  // Realtime WebSockets by upgrade number
    std::function<void(int, std::string_view, std::string_view)> ws_observer;
    int ws_error_events = 0;  // server thread only

    // Server-thread only.
    std::map<uint64_t, std::weak_ptr<Conn>> conns;
    uint64_t next_conn = 0;

    Impl(FakeKind k, std::string d) : kind(k), dir(std::move(d)) {}

    // ---- Accepting ------------------------------------------------------------------------

    asio::awaitable<void> accept_loop() {
        for (;;) {
            beast::error_code ec;
            tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                if (!acceptor.is_open()) co_return;
                continue;
            }
            s.set_option(tcp::no_delay(true), ec);
            auto c = std::make_shared<Conn>(std::move(s));
            uint64_t id = ++next_conn;
            conns[id] = c;
            asio::co_spawn(io, session(c, id), asio::detached);
        }
    }

    asio::awaitable<void> session(std::shared_ptr<Conn> c, uint64_t id) {
        beast::flat_buffer buf;
        try {
            for (;;) {
                http::request_parser<http::string_body> parser;
                parser.body_limit(256u << 20);
                beast::error_code ec;
                co_await http::async_read(c->socket, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
                if (ec) break;
                auto req = parser.release();
                FakeRequest fr;
                fr.method = std::string(req.method_string());
                fr.target = std::string(req.target());
                for (const auto &f : req) fr.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
                fr.body = req.body();
                {
                    std::lock_guard<std::mutex> lock(mu);
                    fr.number = ++counter;
                    peak = std::max(peak, ++active);
                }
                InFlight flight;
                flight.on_finish = [this] {
                    {
                        std::lock_guard<std::mutex> lock(mu);
                        --active;
                    }
                    cv.notify_all();
                };
                if (kind == FakeKind::openai_realtime && websocket::is_upgrade(req)) {
                    co_await realtime_upgrade(c, std::move(req), fr, &flight);
                    flight.finish();
                    break;
                }
                bool keep = co_await answer(c, fr, &flight);
                flight.finish();
                if (!keep || !req.keep_alive()) break;
            }
        } catch (...) {
        }
        beast::error_code ignored;
        c->socket.shutdown(tcp::socket::shutdown_both, ignored);
        c->socket.close(ignored);
        conns.erase(id);
    }

    // ---- Deciding -------------------------------------------------------------------------

    void record(FakeRequest &fr, std::string action, int status) {
        fr.action = std::move(action);
        fr.status = status;
        std::function<void(const FakeRequest &)> obs;
        {
            std::lock_guard<std::mutex> lock(mu);
            requests.push_back(fr);
            obs = observer;
        }
        cv.notify_all();
        if (obs) obs(fr);
    }

    void count_abort() {
        {
            std::lock_guard<std::mutex> lock(mu);
            ++aborts;
        }
        cv.notify_all();
    }

    Action choose(const Script &s, int number, const std::string &model) const {
        if (auto it = s.by_number.find(number); it != s.by_number.end()) return it->second;
        if (auto it = s.by_model.find(model); it != s.by_model.end()) return it->second;
        if (s.fallback) return *s.fallback;
        return Action{};
    }

    std::string default_recording() const {
        if (kind == FakeKind::openai_realtime) return "openai_realtime/client_secret_response.json";
        return kind == FakeKind::anthropic ? "anthropic/recorded/stream_text_json_output.sse" : "openai_chat/stream_text.sse";
    }

    fs::path resolve(const std::string &p) const {
        fs::path path(p);
        return path.is_absolute() ? path : dir / path;
    }

    // A recording, with status and headers from its .exchange.json when there is one.
    Response replay(const std::string &file, int status_override, int n) const {
        fs::path p = resolve(file.empty() ? default_recording() : file);
        Response r;
        std::string bytes = read_file(p);
        std::string name = p.filename().string();
        r.stream = ends_with(name, ".sse");
        std::string base = p.string();
        if (ends_with(base, ".sse")) base.resize(base.size() - 4);
        else if (ends_with(base, ".body.json")) base.resize(base.size() - 10);
        else if (ends_with(base, ".json")) base.resize(base.size() - 5);
        fs::path exchange = base + ".exchange.json";
        int status = 0;
        if (fs::exists(exchange)) {
            json ex = json::parse(read_file(exchange), nullptr, false);
            if (ex.is_object() && ex.contains("response") && ex["response"].is_object()) {
                const json &resp = ex["response"];
                if (resp.contains("status_code") && resp["status_code"].is_number_integer())
                    status = resp["status_code"].get<int>();
                if (resp.contains("headers") && resp["headers"].is_object())
                    for (auto h = resp["headers"].begin(); h != resp["headers"].end(); ++h) {
                        std::string k = lower(h.key());
                        if (k == "content-length" || k == "transfer-encoding" || k == "connection" ||
                            k == "content-encoding" || k == "keep-alive" || !h.value().is_string())
                            continue;
                        r.headers.emplace_back(h.key(), h.value().get<std::string>());
                    }
            }
        }
        if (status == 0) {
            static const std::regex pattern("error_([0-9]{3})_");
            std::smatch m;
            status = std::regex_search(name, m, pattern) ? std::stoi(m[1].str()) : 200;
        }
        r.status = status_override ? status_override : status;
        if (!r.has_header("content-type"))
            r.headers.emplace_back("content-type", r.stream ? "text/event-stream; charset=utf-8" : "application/json");
        if (r.stream) {
            r.events = split_events(bytes);
            if (!r.has_header("cache-control")) r.headers.emplace_back("cache-control", "no-cache");
        } else {
            r.body = std::move(bytes);
        }
        (void)n;
        return r;
    }

    // The error responses of the faults, per API.
    Response fault_response(const Action &a, int n) const {
        bool ant = kind == FakeKind::anthropic;
        const std::string &f = a.fault;
        if (f == "rate_limit") {
            Response r = ant ? replay("anthropic/constructed/error_429_rate_limit_error.json", 429, n)
                             : replay("openai_chat/error_429_rate_limit_exceeded.json", 429, n);
            if (a.retry_after) r.set_header("retry-after", *a.retry_after);
            if (a.retry_after_ms) r.set_header("retry-after-ms", *a.retry_after_ms);
            if (a.reset_requests) r.set_header("x-ratelimit-reset-requests", *a.reset_requests);
            if (ant) r.set_header("x-should-retry", "true");
            return r;
        }
        if (f == "insufficient_quota")
            return ant ? replay("anthropic/constructed/error_402_billing_error.json", 402, n)
                       : replay("openai_chat/error_429_insufficient_quota.json", 429, n);
        if (f == "server_error")
            return ant ? replay("anthropic/constructed/error_500_api_error.json", 500, n)
                       : json_response(500, openai_error("server_error",
                                                         "The server had an error while processing your request. Sorry about that!",
                                                         nullptr, nullptr));
        if (f == "unavailable")
            return json_response(503, ant ? anthropic_error("api_error", "Service Unavailable", n)
                                          : openai_error("server_error", "The server is overloaded or not ready yet.",
                                                         nullptr, nullptr));
        if (f == "overloaded")
            return ant ? replay("anthropic/constructed/error_529_overloaded_error.json", 529, n)
                       : json_response(529, openai_error("server_error", "Overloaded", nullptr, nullptr));
        if (f == "context_too_long")
            return json_response(
                400, ant ? anthropic_error("invalid_request_error", "prompt is too long: 212345 tokens > 200000 maximum", n)
                         : openai_error("invalid_request_error",
                                        "This model's maximum context length is 128000 tokens. However, your messages "
                                        "resulted in 130017 tokens. Please reduce the length of the messages.",
                                        "messages", "context_length_exceeded"));
        if (f == "refuse_upgrade")
            return json_response(a.status ? a.status : 401,
                                 openai_error("invalid_request_error", "Incorrect API key provided.", nullptr,
                                              "invalid_api_key"));
        if (f == "content_filter")
            return ant ? replay("anthropic/sdk_fixtures/stream_refusal.sse", 0, n)
                       : json_response(400, openai_error("invalid_request_error",
                                                         "Your request was rejected as a result of our safety system.",
                                                         nullptr, "content_policy_violation"));
        return replay(a.replay, a.status, n);
    }

    // Checks a request the way the real API would; an error response when it fails.
    std::optional<Response> validate(const FakeRequest &fr, const Script &s, const json &body) const {
        bool ant = kind == FakeKind::anthropic;
        int n = fr.number;
        std::string path = fr.target.substr(0, fr.target.find('?'));
        if (kind == FakeKind::openai_realtime) return validate_client_secret(fr, s, body);
        if (ant) {
            if (fr.method != "POST" || path != "/v1/messages")
                return json_response(404, anthropic_error("not_found_error", "Not Found", n));
            std::string key = fr.header("x-api-key");
            if (key.empty()) return json_response(401, anthropic_error("authentication_error", "x-api-key header is required", n));
            if (s.api_key && key != *s.api_key)
                return replay("anthropic/constructed/error_401_authentication_error.json", 401, n);
            if (fr.header("anthropic-version").empty())
                return json_response(400, anthropic_error("invalid_request_error", "anthropic-version: header is required", n));
            auto bad = [&](const std::string &m) { return json_response(400, anthropic_error("invalid_request_error", m, n)); };
            if (body.is_discarded() || !body.is_object()) return bad("There was an error parsing the body");
            if (!body.contains("model") || !body["model"].is_string()) return bad("model: Field required");
            if (!body.contains("max_tokens") || !body["max_tokens"].is_number_integer()) return bad("max_tokens: Field required");
            if (!body.contains("messages") || !body["messages"].is_array()) return bad("messages: Field required");
            const json &m = body["messages"];
            if (m.empty()) return bad("messages: at least one message is required");
            std::string want = "user";
            for (size_t i = 0; i < m.size(); ++i) {
                std::string role = m[i].is_object() && m[i].contains("role") && m[i]["role"].is_string()
                                       ? m[i]["role"].get<std::string>()
                                       : "";
                if (role != want)
                    return bad(i == 0 ? "messages: first message must use the \"user\" role"
                                      : "messages: roles must alternate between \"user\" and \"assistant\"");
                if (!m[i].contains("content")) return bad("messages." + std::to_string(i) + ".content: Field required");
                want = want == "user" ? "assistant" : "user";
            }
            if (body.contains("system") && !body["system"].is_string() && !body["system"].is_array())
                return bad("system: Input should be a valid string or list");
            return std::nullopt;
        }
        if (fr.method != "POST" || path != "/v1/chat/completions")
            return json_response(404, openai_error("invalid_request_error", "Unknown request URL: " + fr.method + " " + path,
                                                   nullptr, "unknown_url"));
        if (s.api_key) {
            std::string auth = fr.header("authorization");
            if (auth.empty())
                return json_response(401, openai_error("invalid_request_error",
                                                       "You didn't provide an API key. You need to provide your API key in "
                                                       "an Authorization header using Bearer auth.",
                                                       nullptr, nullptr));
            if (auth != "Bearer " + *s.api_key)
                // Worse than the real API, which masks the key: tests prove the plugin never repeats it.
                return json_response(401, openai_error("invalid_request_error",
                                                       "Incorrect API key provided: " + auth.substr(std::min<size_t>(7, auth.size())),
                                                       nullptr, "invalid_api_key"));
        }
        auto bad = [&](const std::string &m, const json &param) {
            return json_response(400, openai_error("invalid_request_error", m, param, nullptr));
        };
        if (body.is_discarded() || !body.is_object()) return bad("We could not parse the JSON body of your request.", nullptr);
        if (!body.contains("model") || !body["model"].is_string()) return bad("you must provide a model parameter", "model");
        if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
            return bad("'messages' must contain at least one message", "messages");
        return std::nullopt;
    }

    bool is_prefill(const json &body) const {
        if (!body.is_object() || !body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
            return false;
        const json &last = body["messages"].back();
        return last.is_object() && last.value("role", std::string()) == "assistant";
    }

    // ---- Answering ------------------------------------------------------------------------

    // Waits ms, or until the peer closes the connection. False when it did.
    asio::awaitable<bool> pause(std::shared_ptr<Conn> c, int64_t ms) {
        struct State {
            explicit State(asio::io_context &io) : timer(io) {}
            asio::steady_timer timer;
            bool closed = false;
        };
        auto st = std::make_shared<State>(io);
        st->timer.expires_after(std::chrono::milliseconds(ms));
        c->socket.async_wait(tcp::socket::wait_read, [st, c](beast::error_code ec) {
            if (ec) return;
            beast::error_code aec;
            size_t avail = c->socket.available(aec);
            if (aec || avail == 0) {
                st->closed = true;
                st->timer.cancel();
            }
        });
        beast::error_code ec;
        co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        beast::error_code ignored;
        if (c->socket.is_open()) c->socket.cancel(ignored);
        co_return !st->closed && c->socket.is_open();
    }

    asio::awaitable<bool> write(std::shared_ptr<Conn> c, std::string bytes) {
        beast::error_code ec;
        co_await asio::async_write(c->socket, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec;
    }

    std::string head(const Response &r, int n) const {
        std::string h = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
        for (const auto &[k, v] : r.headers) h += k + ": " + v + "\r\n";
        std::string rid_name = kind == FakeKind::anthropic ? "request-id" : "x-request-id";
        if (!r.has_header(rid_name)) h += rid_name + ": req_fake_" + std::to_string(n) + "\r\n";
        if (r.stream) h += "transfer-encoding: chunked\r\n";
        else h += "content-length: " + std::to_string(r.body.size()) + "\r\n";
        h += "\r\n";
        return h;
    }

    static std::string chunk(std::string_view data) {
        std::ostringstream s;
        s << std::hex << data.size() << "\r\n";
        return s.str() + std::string(data) + "\r\n";
    }

    bool is_end_marker(const std::string &event) const {
        return kind == FakeKind::anthropic ? event.find("event: message_stop") != std::string::npos
                                           : event.find("data: [DONE]") != std::string::npos;
    }

    std::string malformed_event() const {
        return kind == FakeKind::anthropic
                   ? "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\"\n\n"
                   : "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\n\n";
    }

    static void reset(Conn &c) {
        beast::error_code ec;
        c.socket.set_option(asio::socket_base::linger(true, 0), ec);
        c.socket.close(ec);
    }

    // Answers one request; false when the connection must not be reused.
    asio::awaitable<bool> answer(std::shared_ptr<Conn> c, FakeRequest fr, InFlight *flight) {
        std::shared_ptr<const Script> s;
        {
            std::lock_guard<std::mutex> lock(mu);
            s = script;
        }
        json body = json::parse(fr.body, nullptr, false);
        std::string model = body.is_object() && body.contains("model") && body["model"].is_string()
                                ? body["model"].get<std::string>()
                                : "";
        if (model.empty() && body.is_object() && body.contains("session") && body["session"].is_object() &&
            body["session"].contains("model") && body["session"]["model"].is_string())
            model = body["session"]["model"].get<std::string>();  // Realtime client secrets
        Action a = choose(*s, fr.number, model);
        const Action plain;  // no event faults
        if (a.delay_ms > 0 && !co_await pause(c, a.delay_ms)) {
            record(fr, a.fault.empty() ? "replay" : a.fault, 0);
            count_abort();
            co_return false;
        }
        if (a.fault == "reset") {
            record(fr, "reset", 0);
            reset(*c);
            co_return false;
        }
        if (a.fault == "hang") {
            record(fr, "hang", 0);
            if (!co_await pause(c, 3600 * 1000)) count_abort();
            co_return false;
        }
        std::string action = a.fault.empty() ? "replay" : a.fault;
        if (a.fault == "down") {
            bool down = false;
            {
                std::lock_guard<std::mutex> lock(mu);
                auto [it, fresh] = down_since.emplace(a.id, Clock::now());
                down = Clock::now() - it->second < std::chrono::milliseconds(a.ms);
            }
            if (down) {
                if (a.as == "reset") {
                    record(fr, "down", 0);
                    reset(*c);
                    co_return false;
                }
                int status = std::atoi(a.as.c_str());
                Action e;
                e.fault = status == 529 ? "overloaded" : status == 500 ? "server_error" : "unavailable";
                Response r = fault_response(e, fr.number);
                record(fr, "down", r.status);
                bool keep = co_await send(c, std::move(r), plain, fr.number, flight);
                co_return keep;
            }
            a.fault.clear();  // healthy again: the recording
            action = "replay";
        }
        std::optional<Response> invalid = validate(fr, *s, body);
        if (invalid) {
            record(fr, "invalid", invalid->status);
            bool keep = co_await send(c, std::move(*invalid), plain, fr.number, flight);
            co_return keep;
        }
        Response r;
        try {
            if (a.fault == "reject_prefill" && is_prefill(body)) {
                action = "reject_prefill";
                r = json_response(400, kind == FakeKind::anthropic
                                           ? anthropic_error("invalid_request_error",
                                                             "This model does not support assistant message prefill. The "
                                                             "conversation must end with a user message.",
                                                             fr.number)
                                           : openai_error("invalid_request_error",
                                                          "The last message must be from the user.", "messages", nullptr));
            } else if (a.fault == "reject_prefill") {
                action = "replay";
                r = replay(a.replay, a.status, fr.number);
            } else {
                r = fault_response(a, fr.number);
            }
        } catch (const std::exception &e) {
            r = json_response(500, json{{"fake_server_error", e.what()}}.dump());
            action = "script_error";
        }
        for (const auto &[k, v] : a.headers) r.set_header(k, v);
        record(fr, action, r.status);
        bool keep = co_await send(c, std::move(r), a, fr.number, flight);
        co_return keep;
    }

    // Writes a response, applying the event faults of `a` (cut, stall, malformed, no_end).
    // Parameters by value: GCC 12 mishandles temporaries bound to references across co_await.
    asio::awaitable<bool> send(std::shared_ptr<Conn> c, Response r, Action a, int n, InFlight *flight) {
        if (!co_await write(c, head(r, n))) {
            count_abort();
            co_return false;
        }
        if (!r.stream) {
            flight->finish();
            if (!co_await write(c, r.body)) {
                count_abort();
                co_return false;
            }
            co_return true;
        }
        size_t at = static_cast<size_t>(a.after_events);
        for (size_t i = 0; i <= r.events.size(); ++i) {
            if (i == at || (i == r.events.size() && at > r.events.size())) {
                if (a.fault == "cut") {
                    beast::error_code ec;
                    c->socket.shutdown(tcp::socket::shutdown_both, ec);
                    c->socket.close(ec);
                    co_return false;
                }
                if (a.fault == "eof") break;  // a clean end of the body, cut short
                if (a.fault == "stall" && !co_await pause(c, a.ms)) {
                    count_abort();
                    co_return false;
                }
                if (a.fault == "malformed" && !co_await write(c, chunk(malformed_event()))) {
                    count_abort();
                    co_return false;
                }
            }
            if (i == r.events.size()) break;
            const std::string &ev = r.events[i];
            if (i + 1 == r.events.size() || is_end_marker(ev)) flight->finish();
            if (a.fault == "no_end" && is_end_marker(ev)) continue;
            if (a.chunk_bytes > 0) {
                for (size_t off = 0; off < ev.size(); off += a.chunk_bytes) {
                    if (!co_await write(c, chunk(std::string_view(ev).substr(off, a.chunk_bytes)))) {
                        count_abort();
                        co_return false;
                    }
                }
            } else if (!co_await write(c, chunk(ev))) {
                count_abort();
                co_return false;
            }
            if (a.event_delay_ms > 0 && !co_await pause(c, a.event_delay_ms)) {
                count_abort();
                co_return false;
            }
        }
        flight->finish();
        if (!co_await write(c, "0\r\n\r\n")) {
            count_abort();
            co_return false;
        }
        co_return true;
    }

    // ---- Realtime (kind openai_realtime) ----------------------------------------------------
    //
    // POST /v1/realtime/client_secrets goes through answer() like any request (validated by
    // validate_client_secret, then the client_secret_response.json replay or a fault). A
    // WebSocket upgrade to /v1/realtime?model=... comes here: validated, refused or accepted as
    // the script says; then the fake sends the sequence's opening events (session.created),
    // wants a session.update first, and answers each client frame with the server lines that
    // follow that kind of client line in the sequence file.

    static json realtime_error(const std::string &code, const std::string &message, const json &param) {
        return json{{"type", "invalid_request_error"}, {"code", code}, {"message", message}, {"param", param}};
    }

    // The beta session keys that the GA shape moved under session.audio or renamed.
    static const std::set<std::string> &beta_session_keys() {
        static const std::set<std::string> keys = {"modalities",         "voice",
                                                   "input_audio_format", "output_audio_format",
                                                   "input_audio_transcription", "turn_detection",
                                                   "input_audio_noise_reduction", "max_response_output_tokens",
                                                   "temperature"};
        return keys;
    }

    // A GA session object: type "realtime", no beta keys, a known turn detection. Empty when fine,
    // else {code, message, param}.
    static std::optional<json> check_ga_session(const json &session, const std::string &prefix) {
        if (!session.contains("type"))
            return realtime_error("missing_required_parameter", "Missing required parameter: '" + prefix + ".type'.",
                                  prefix + ".type");
        if (!session["type"].is_string() || session["type"].get<std::string>() != "realtime")
            return realtime_error("invalid_value", "Invalid value for '" + prefix + ".type'.", prefix + ".type");
        for (const auto &k : beta_session_keys())
            if (session.contains(k))
                return realtime_error("unknown_parameter", "Unknown parameter: '" + prefix + "." + k + "'.",
                                      prefix + "." + k);
        if (session.contains("audio")) {
            const json &audio = session["audio"];
            if (!audio.is_object()) return realtime_error("invalid_type", "Invalid type for '" + prefix + ".audio'.", prefix + ".audio");
            if (audio.contains("input") && audio["input"].is_object() && audio["input"].contains("turn_detection")) {
                const json &td = audio["input"]["turn_detection"];
                std::string p = prefix + ".audio.input.turn_detection.type";
                if (!td.is_null()) {
                    std::string t = td.is_object() && td.contains("type") && td["type"].is_string() ? td["type"].get<std::string>() : "";
                    if (t != "server_vad" && t != "semantic_vad") return realtime_error("invalid_value", "Invalid value for '" + p + "'.", p);
                }
            }
        }
        return std::nullopt;
    }

    // A beta session object (OpenAI-Beta: realtime=v1): none of the GA-only keys.
    static std::optional<json> check_beta_session(const json &session) {
        static const std::vector<std::string> ga_only = {"type", "audio", "output_modalities"};
        for (const auto &k : ga_only)
            if (session.contains(k))
                return realtime_error("unknown_parameter", "Unknown parameter: 'session." + k + "'.", "session." + k);
        return std::nullopt;
    }

    std::optional<Response> validate_client_secret(const FakeRequest &fr, const Script &s, const json &body) const {
        std::string path = fr.target.substr(0, fr.target.find('?'));
        if (fr.method != "POST" || path != "/v1/realtime/client_secrets")
            return json_response(404, openai_error("invalid_request_error", "Unknown request URL: " + fr.method + " " + path,
                                                   nullptr, "unknown_url"));
        if (auto refused = check_bearer(fr, s)) return refused;
        auto bad = [](const json &e) {
            return json_response(400, openai_error("invalid_request_error", e["message"].get<std::string>(), e["param"],
                                                   e["code"]));
        };
        if (body.is_discarded() || !body.is_object())
            return bad(realtime_error("invalid_json", "We could not parse the JSON body of your request.", nullptr));
        for (auto it = body.begin(); it != body.end(); ++it)
            if (it.key() != "expires_after" && it.key() != "session")
                return bad(realtime_error("unknown_parameter", "Unknown parameter: '" + it.key() + "'.", it.key()));
        if (!body.contains("session") || !body["session"].is_object())
            return bad(realtime_error("missing_required_parameter", "Missing required parameter: 'session'.", "session"));
        if (auto e = check_ga_session(body["session"], "session")) return bad(*e);
        if (body.contains("expires_after")) {
            const json &ea = body["expires_after"];
            bool ok = ea.is_object() && ea.value("anchor", std::string()) == "created_at" && ea.contains("seconds") &&
                      ea["seconds"].is_number_integer() && ea["seconds"].get<int64_t>() >= 10 &&
                      ea["seconds"].get<int64_t>() <= 7200;
            if (!ok) return bad(realtime_error("invalid_value", "Invalid value for 'expires_after'.", "expires_after"));
        }
        return std::nullopt;
    }

    // Authorization: Bearer, always required here (the script's api_key, when set, must match).
    std::optional<Response> check_bearer(const FakeRequest &fr, const Script &s) const {
        std::string auth = fr.header("authorization");
        if (auth.rfind("Bearer ", 0) != 0 || auth.size() <= 7)
            return json_response(401, openai_error("invalid_request_error",
                                                   "You didn't provide an API key. You need to provide your API key in "
                                                   "an Authorization header using Bearer auth.",
                                                   nullptr, nullptr));
        if (s.api_key && auth != "Bearer " + *s.api_key)
            // Worse than the real API, which masks the key: tests prove the plugin never repeats it.
            return json_response(401, openai_error("invalid_request_error", "Incorrect API key provided: " + auth.substr(7),
                                                   nullptr, "invalid_api_key"));
        return std::nullopt;
    }

    static std::string query_param(const std::string &target, const std::string &name) {
        auto q = target.find('?');
        if (q == std::string::npos) return {};
        std::string query = target.substr(q + 1);
        size_t pos = 0;
        while (pos <= query.size()) {
            size_t amp = query.find('&', pos);
            std::string part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
            if (part.rfind(name + "=", 0) == 0) {
                std::string raw = part.substr(name.size() + 1), out;
                auto hex = [](char h) {
                    return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                };
                for (size_t i = 0; i < raw.size(); ++i) {
                    if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
                        out += static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
                        i += 2;
                    } else {
                        out += raw[i] == '+' ? ' ' : raw[i];
                    }
                }
                return out;
            }
            if (amp == std::string::npos) break;
            pos = amp + 1;
        }
        return {};
    }

    // A sequence file (.jsonl, one event per line with "_dir": "server" / "client"): the server
    // lines before any client line, and after each kind of client line the server lines that
    // follow it. A server line is sent as it is in the file, minus its leading `"_dir":"server",`.
    struct Sequence {
        std::vector<std::string> opening;
        std::map<std::string, std::vector<std::string>> after;
    };

    Sequence load_sequence(const std::string &file) const {
        fs::path p = resolve(file.empty() ? "openai_realtime/constructed/ws_session_sequence.jsonl" : file);
        if (!ends_with(p.string(), ".jsonl")) throw std::invalid_argument("a Realtime replay must be a .jsonl file");
        std::istringstream in(read_file(p));
        Sequence seq;
        std::vector<std::string> *into = &seq.opening;
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty()) continue;
            json j = json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.is_object()) throw std::invalid_argument(p.string() + ": a line is not a JSON object");
            std::string direction = j.value("_dir", std::string("server"));
            if (direction == "client") {
                into = &seq.after[j.value("type", std::string())];
                into->clear();
                continue;
            }
            static const std::string tag = "{\"_dir\":\"server\",";
            if (line.rfind(tag, 0) == 0) {
                into->push_back("{" + line.substr(tag.size()));
            } else if (j.contains("_dir")) {
                nlohmann::ordered_json o = nlohmann::ordered_json::parse(line);
                o.erase("_dir");
                into->push_back(o.dump());
            } else {
                into->push_back(line);
            }
        }
        return seq;
    }

    void ws_note(int number, const std::function<void(FakeWsSession &)> &fn) {
        {
            std::lock_guard<std::mutex> lock(mu);
            fn(ws_runs[number]);
        }
        cv.notify_all();
    }

    void ws_observe(int number, std::string_view direction, std::string_view frame) {
        std::function<void(int, std::string_view, std::string_view)> obs;
        {
            std::lock_guard<std::mutex> lock(mu);
            obs = ws_observer;
        }
        if (obs) obs(number, direction, frame);
    }

    void ws_ended(int number, const std::string &how, int client_code = -1) {
        ws_note(number, [&](FakeWsSession &w) {
            if (w.ended) return;
            w.ended = true;
            w.end = how;
            if (client_code >= 0) w.client_close_code = client_code;
        });
    }

    using Ws = websocket::stream<tcp::socket &>;

    // One WebSocket after its upgrade: what the script's action does to it, and how far it got.
    struct WsRun {
        Action action;
        int number = 0;
        int events = 0;  // server events sent so far
        bool fault_done = false;
        bool over = false;  // the fake ended the session (a fault, a protocol error)
    };

    asio::awaitable<bool> ws_write(Ws *ws, WsRun *run, std::string frame) {
        beast::error_code ec;
        ws->text(true);
        co_await ws->async_write(asio::buffer(frame), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
        ws_note(run->number, [&](FakeWsSession &w) { w.sent.push_back(frame); });
        ws_observe(run->number, "server", frame);
        co_return true;
    }

    // The event faults, once per connection, when `after_events` server events have been sent.
    // False when the session is over.
    asio::awaitable<bool> ws_fault(std::shared_ptr<Conn> c, Ws *ws, WsRun *run) {
        const Action &a = run->action;
        if (run->fault_done || run->events != a.after_events) co_return true;
        run->fault_done = true;
        if (a.fault == "cut") {
            ws_ended(run->number, "cut");
            run->over = true;
            beast::error_code ec;
            c->socket.shutdown(tcp::socket::shutdown_both, ec);
            c->socket.close(ec);
            co_return false;
        }
        if (a.fault == "close" || a.fault == "eof") {
            ws_ended(run->number, "close");
            run->over = true;
            beast::error_code ec;
            co_await ws->async_close(websocket::close_reason(static_cast<websocket::close_code>(a.close_code), "fake: closing"),
                                     asio::redirect_error(asio::use_awaitable, ec));
            co_return false;
        }
        if (a.fault == "stall") {
            if (!co_await pause(c, a.ms)) {
                ws_ended(run->number, "client_gone");
                run->over = true;
                co_return false;
            }
            co_return true;
        }
        if (a.fault == "malformed") {
            bool ok = co_await ws_write(ws, run,
                                        "{\"type\":\"response.output_audio_transcript.delta\",\"event_id\":\"event_bad\","
                                        "\"delta\":\"Lou");
            co_return ok;
        }
        co_return true;
    }

    // Sends server events (with the pause between events and the fault at its place).
    asio::awaitable<bool> ws_emit(std::shared_ptr<Conn> c, Ws *ws, WsRun *run, std::vector<std::string> lines) {
        for (auto &line : lines) {
            if (!co_await ws_write(ws, run, line)) co_return false;
            ++run->events;
            if (!co_await ws_fault(c, ws, run)) co_return false;
            if (run->action.event_delay_ms > 0 && !co_await pause(c, run->action.event_delay_ms)) co_return false;
        }
        co_return true;
    }

    asio::awaitable<bool> ws_refuse(Ws *ws, WsRun *run, std::string code, std::string message, json param) {
        json ev = {{"type", "error"},
                   {"event_id", "event_fake_" + std::to_string(++ws_error_events)},
                   {"error", realtime_error(code, message, param)}};
        ev["error"]["event_id"] = nullptr;
        ws_note(run->number, [&](FakeWsSession &w) { w.refused.push_back(code); });
        co_return co_await ws_write(ws, run, ev.dump());
    }

    // The faults that answer an upgrade with an HTTP error instead of accepting it.
    static bool refuses_upgrade(const std::string &fault) {
        static const std::set<std::string> refusing = {"refuse_upgrade", "rate_limit",  "insufficient_quota",
                                                       "server_error",   "unavailable", "overloaded"};
        return refusing.count(fault) > 0;
    }

    static Response script_error_response(const std::string &what) {
        return json_response(500, json{{"fake_server_error", what}}.dump());
    }

    asio::awaitable<void> realtime_upgrade(std::shared_ptr<Conn> c, http::request<http::string_body> req, FakeRequest fr,
                                           InFlight *flight) {
        std::shared_ptr<const Script> s;
        {
            std::lock_guard<std::mutex> lock(mu);
            s = script;
        }
        std::string model = query_param(fr.target, "model");
        Action a = choose(*s, fr.number, model);
        const Action plain;
        std::string action = a.fault.empty() ? "websocket" : a.fault;
        if (a.delay_ms > 0 && !co_await pause(c, a.delay_ms)) {
            record(fr, action, 0);
            count_abort();
            co_return;
        }
        if (a.fault == "reset") {
            record(fr, "reset", 0);
            reset(*c);
            co_return;
        }
        if (a.fault == "hang") {
            record(fr, "hang", 0);
            if (!co_await pause(c, 3600 * 1000)) count_abort();
            co_return;
        }
        std::optional<Response> refusal;
        std::string path = fr.target.substr(0, fr.target.find('?'));
        if (fr.method != "GET" || path != "/v1/realtime") {
            refusal = json_response(404, openai_error("invalid_request_error", "Unknown request URL: " + fr.method + " " + path,
                                                      nullptr, "unknown_url"));
        } else if (auto r = check_bearer(fr, *s)) {
            refusal = std::move(r);
        } else if (model.empty()) {
            refusal = json_response(400, openai_error("invalid_request_error", "Missing required parameter: 'model'.",
                                                      "model", "missing_required_parameter"));
        }
        if (refusal) {
            record(fr, "invalid", refusal->status);
            co_await send(c, std::move(*refusal), plain, fr.number, flight);
            co_return;
        }
        bool down = false;
        if (a.fault == "down") {
            std::lock_guard<std::mutex> lock(mu);
            auto [it, fresh] = down_since.emplace(a.id, Clock::now());
            down = Clock::now() - it->second < std::chrono::milliseconds(a.ms);
            if (!down) action = "websocket";  // healthy again
        }
        if (refuses_upgrade(a.fault) || down) {
            Action e = a;
            if (down) e.fault = a.as == "529" ? "overloaded" : a.as == "500" ? "server_error" : "unavailable";
            Response r = fault_response(e, fr.number);
            for (const auto &[k, v] : a.headers) r.set_header(k, v);
            record(fr, down ? "down" : a.fault, r.status);
            co_await send(c, std::move(r), plain, fr.number, flight);
            co_return;
        }
        Sequence seq;
        std::string script_error;
        try {
            seq = load_sequence(a.replay);
        } catch (const std::exception &e) {
            script_error = e.what();
        }
        if (!script_error.empty()) {
            record(fr, "script_error", 500);
            Response r = script_error_response(script_error);
            co_await send(c, std::move(r), plain, fr.number, flight);
            co_return;
        }
        bool beta = fr.header("openai-beta") == "realtime=v1";
        ws_note(fr.number, [&](FakeWsSession &w) {
            w.number = fr.number;
            w.model = model;
            w.beta = beta;
        });
        record(fr, action, 101);
        flight->finish();

        Ws ws(c->socket);
        ws.auto_fragment(false);
        ws.read_message_max(64u << 20);
        ws.set_option(websocket::stream_base::decorator(
            [n = fr.number](websocket::response_type &res) { res.set("x-request-id", "req_fake_" + std::to_string(n)); }));
        beast::error_code ec;
        co_await ws.async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            ws_ended(fr.number, "client_gone");
            co_return;
        }
        WsRun run;
        run.action = a;
        run.number = fr.number;
        if (!co_await ws_fault(c, &ws, &run) || !co_await ws_emit(c, &ws, &run, seq.opening)) {
            if (!run.over) ws_ended(fr.number, "client_gone");
            co_return;
        }
        bool first = true;
        for (;;) {
            beast::flat_buffer buf;
            co_await ws.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
            if (ec == websocket::error::closed) {
                ws_ended(fr.number, "client_close", static_cast<int>(ws.reason().code));
                co_return;
            }
            if (ec) {
                ws_ended(fr.number, c->socket.is_open() ? "client_gone" : "shutdown");
                co_return;
            }
            std::string frame = beast::buffers_to_string(buf.data());
            ws_note(fr.number, [&](FakeWsSession &w) { w.received.push_back(frame); });
            ws_observe(fr.number, "client", frame);
            json j = json::parse(frame, nullptr, false);
            bool ok = true;
            bool typed = !j.is_discarded() && j.is_object() && j.contains("type") && j["type"].is_string();
            std::string type = typed ? j["type"].get<std::string>() : "";
            if (!typed && !first) {
                std::string code = "invalid_json", message = "The event is not a JSON object with a type.";
                ok = co_await ws_refuse(&ws, &run, code, message, json());
                if (!ok) break;
                continue;
            }
            if (first && type != "session.update") {
                std::string code = "session_update_expected", message = "The fake wants a session.update first.";
                json param = std::string("type");
                co_await ws_refuse(&ws, &run, code, message, param);
                ws_ended(fr.number, "protocol");
                websocket::close_reason why(websocket::close_code::policy_error);
                why.reason = "expected session.update first";
                co_await ws.async_close(why, asio::redirect_error(asio::use_awaitable, ec));
                co_return;
            }
            first = false;
            std::vector<std::string> answer_lines;
            if (type == "session.update") {
                std::optional<json> problem;
                if (!j.contains("session") || !j["session"].is_object()) {
                    problem = realtime_error("missing_required_parameter", "Missing required parameter: 'session'.", "session");
                } else if (beta) {
                    problem = check_beta_session(j["session"]);
                } else {
                    problem = check_ga_session(j["session"], "session");
                }
                if (problem) {
                    std::string code = (*problem)["code"].get<std::string>();
                    std::string message = (*problem)["message"].get<std::string>();
                    json param = (*problem)["param"];
                    ok = co_await ws_refuse(&ws, &run, code, message, param);
                    if (!ok) break;
                    continue;
                }
                answer_lines = seq.after["session.update"];
            } else if (type == "input_audio_buffer.append") {
                // Audio is taken silently; a commit or response.create starts the turn.
            } else if (seq.after.count(type)) {
                answer_lines = seq.after[type];
            } else if (type == "response.create" || type == "input_audio_buffer.commit") {
                answer_lines = seq.after["input_audio_buffer.append"];
            }
            if (!answer_lines.empty() && !co_await ws_emit(c, &ws, &run, std::move(answer_lines))) break;
        }
        if (!run.over) ws_ended(fr.number, "client_gone");
    }

    // ---- Lifetime -------------------------------------------------------------------------

    void start(uint16_t want_port) {
        tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), want_port);
        acceptor.open(ep.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(ep);
        acceptor.listen(asio::socket_base::max_listen_connections);
        port = acceptor.local_endpoint().port();
        asio::co_spawn(io, accept_loop(), asio::detached);
        thread = std::thread([this] { io.run(); });
    }

    void stop() {
        std::promise<void> closed;
        asio::post(io, [this, &closed] {
            beast::error_code ec;
            acceptor.close(ec);
            for (auto &[id, w] : conns)
                if (auto c = w.lock()) {
                    c->socket.shutdown(tcp::socket::shutdown_both, ec);
                    c->socket.close(ec);
                }
            closed.set_value();
        });
        closed.get_future().wait_for(std::chrono::seconds(5));
        io.stop();
        if (thread.joinable()) thread.join();
    }
};

FakeProviderServer::FakeProviderServer(FakeKind kind, std::string protocols_dir, uint16_t port)
    : impl_(std::make_shared<Impl>(kind, std::move(protocols_dir))) {
    if (!fs::is_directory(impl_->dir / "anthropic") || !fs::is_directory(impl_->dir / "openai_chat"))
        throw std::invalid_argument("fake server: " + impl_->dir.string() +
                                    " does not hold the recordings (anthropic/, openai_chat/)");
    if (kind == FakeKind::openai_realtime && !fs::is_directory(impl_->dir / "openai_realtime"))
        throw std::invalid_argument("fake server: " + impl_->dir.string() + " does not hold openai_realtime/");
    impl_->start(port);
}

FakeProviderServer::~FakeProviderServer() { impl_->stop(); }

FakeKind FakeProviderServer::kind() const { return impl_->kind; }
uint16_t FakeProviderServer::port() const { return impl_->port; }

std::string FakeProviderServer::base_url() const {
    std::string u = "http://127.0.0.1:" + std::to_string(impl_->port);
    return impl_->kind == FakeKind::anthropic ? u : u + "/v1";
}

void FakeProviderServer::set_script(const std::string &json_text) {
    auto s = std::make_shared<const Script>(parse_script(json_text));
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->script = std::move(s);
    impl_->down_since.clear();
}

void FakeProviderServer::reset_requests() {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->requests.clear();
    impl_->counter = 0;
    impl_->aborts = 0;
    impl_->peak = impl_->active;
}

std::vector<FakeRequest> FakeProviderServer::requests() const {
    std::vector<FakeRequest> out;
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        out = impl_->requests;
    }
    std::sort(out.begin(), out.end(), [](const FakeRequest &a, const FakeRequest &b) { return a.number < b.number; });
    return out;
}

size_t FakeProviderServer::request_count() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->requests.size();
}

bool FakeProviderServer::wait_for_requests(size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(impl_->mu);
    return impl_->cv.wait_for(lock, timeout, [&] { return impl_->requests.size() >= n; });
}

size_t FakeProviderServer::client_aborts() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->aborts;
}

bool FakeProviderServer::wait_for_client_aborts(size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(impl_->mu);
    return impl_->cv.wait_for(lock, timeout, [&] { return impl_->aborts >= n; });
}

size_t FakeProviderServer::in_flight() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->active;
}

size_t FakeProviderServer::peak_in_flight() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->peak;
}

void FakeProviderServer::set_observer(std::function<void(const FakeRequest &)> observer) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->observer = std::move(observer);
}

std::vector<FakeWsSession> FakeProviderServer::ws_sessions() const {
    std::vector<FakeWsSession> out;
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto &[n, w] : impl_->ws_runs) out.push_back(w);
    return out;
}

bool FakeProviderServer::wait_for_ws_frames(int number, size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->cv.wait_for(lock, timeout, [&] {
        auto it = impl_->ws_runs.find(number);
        return it != impl_->ws_runs.end() && (it->second.received.size() >= n || it->second.ended);
    });
    auto it = impl_->ws_runs.find(number);
    return it != impl_->ws_runs.end() && it->second.received.size() >= n;
}

bool FakeProviderServer::wait_for_ws_end(int number, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(impl_->mu);
    return impl_->cv.wait_for(lock, timeout, [&] {
        auto it = impl_->ws_runs.find(number);
        return it != impl_->ws_runs.end() && it->second.ended;
    });
}

void FakeProviderServer::set_ws_observer(
    std::function<void(int number, std::string_view direction, std::string_view frame)> observer) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->ws_observer = std::move(observer);
}

}  // namespace consilium::test::fakes
