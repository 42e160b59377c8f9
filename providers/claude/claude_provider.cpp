// providers/claude/claude_provider.cpp: the "claude" provider plugin, Anthropic's Messages API
// streamed over SSE (POST {base_url}/v1/messages, stream: true).
//
// The model request of docs/plugins.md maps to a Messages body (system, text / image / PDF
// document blocks, max_tokens, temperature); the stream's events map to CS_EV_* per
// ../shared/protocols/SUMMARY.md section 1; HTTP and in-stream errors map to cs_error_kind by
// status and error.type (table in docs/providers.md). The HTTP side (libcurl multi, SSE,
// cancellation, keys) is in providers/common/.
#include "provider_support.hpp"

#include <algorithm>
#include <cctype>

namespace {

using consilium::providers::HttpClient;
using consilium::providers::HttpClientOptions;
using consilium::providers::HttpHead;
using consilium::providers::HttpRequest;
using consilium::providers::HttpStreamHandle;
using consilium::providers::SseEvent;
using consilium::providers::SseHttpStream;
using consilium::providers::StreamOut;
using consilium::providers::StreamProtocol;
using consilium::sdk::Error;
using consilium::sdk::json;
namespace pv = consilium::providers;

constexpr const char *kName = "claude";

std::string lower(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A string member, or "" when absent or not a string.
std::string str(const json &j, const char *key) {
    if (!j.is_object()) return {};
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A non-negative integer member, or -1.
int64_t num(const json &j, const char *key) {
    if (!j.is_object()) return -1;
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<int64_t>() : -1;
}

// Does an invalid_request_error message say the prompt does not fit the context window?
bool says_context_too_long(const std::string &message) {
    std::string m = lower(message);
    for (const char *p : {"prompt is too long", "context window", "context length", "maximum context",
                          "too many tokens", "input is too long", "exceeds the model's context"})
        if (m.find(p) != std::string::npos) return true;
    return false;
}

// Status (0 for an in-stream error) and Anthropic error.type to the connector's error kind.
cs_error_kind map_error(int status, const std::string &type, const std::string &message) {
    if (type == "overloaded_error" || status == 529 || status == 503) return CS_ERR_OVERLOADED;
    if (type == "rate_limit_error" || status == 429) return CS_ERR_RATE_LIMITED;
    if (type == "authentication_error" || type == "permission_error" || type == "billing_error" || status == 401 ||
        status == 402 || status == 403)
        return CS_ERR_AUTH;
    if (type == "not_found_error" || status == 404) return CS_ERR_NOT_FOUND;
    if (type == "request_too_large" || status == 413) return CS_ERR_CONTEXT_TOO_LONG;
    if (type == "timeout_error" || status == 504 || status == 408) return CS_ERR_TIMEOUT;
    if (type == "invalid_request_error" || status == 400)
        return says_context_too_long(message) ? CS_ERR_CONTEXT_TOO_LONG : CS_ERR_BAD_REQUEST;
    if (type == "api_error" || status >= 500 || status == 409) return CS_ERR_SERVER;
    if (status >= 400) return CS_ERR_BAD_REQUEST;
    return status == 0 ? CS_ERR_SERVER : CS_ERR_PROTOCOL;
}

cs_stop_reason map_stop(const std::string &reason) {
    if (reason == "max_tokens") return CS_STOP_MAX_TOKENS;
    if (reason == "refusal") return CS_STOP_REFUSAL;
    if (reason == "model_context_window_exceeded") return CS_STOP_CONTEXT_EXCEEDED;
    // end_turn, stop_sequence; tool_use and pause_turn cannot happen (we send no tools).
    return CS_STOP_END_TURN;
}

std::string with_request_id(std::string message, const std::string &request_id) {
    if (!request_id.empty()) message += " (request-id " + request_id + ")";
    return message;
}

// The Messages stream of one request. LIFETIME: owned by its SseHttpStream.
class ClaudeProtocol : public StreamProtocol {
public:
    void on_event(const SseEvent &ev, StreamOut &out) override {
        ++events_;
        json j = pv::parse_json(ev.data);
        if (j.is_discarded() || !j.is_object()) {
            out.fail(CS_ERR_PROTOCOL,
                     with_request_id(std::string(kName) + ": malformed " + safe_name(ev.type) + " event (" +
                                         std::to_string(ev.data.size()) + " bytes)",
                                     out.request_id()),
                     200);
            return;
        }
        std::string type = str(j, "type");
        if (type.empty()) type = ev.type;
        try {
            dispatch(type, j, out);
        } catch (const json::exception &) {
            out.fail(CS_ERR_PROTOCOL,
                     with_request_id(std::string(kName) + ": unexpected shape of a " + safe_name(type) + " event",
                                     out.request_id()),
                     200);
        }
    }

    void on_eof(StreamOut &out) override {
        out.fail(CS_ERR_PROTOCOL,
                 with_request_id(std::string(kName) + ": the stream ended before message_stop (" +
                                     std::to_string(events_) + " events)",
                                 out.request_id()),
                 200);
    }

    void on_error_response(const HttpHead &head, std::string_view body, StreamOut &out) override {
        json j = pv::parse_json(body);
        std::string type, message, request_id = out.request_id();
        if (j.is_object() && j.contains("error") && j["error"].is_object()) {
            type = str(j["error"], "type");
            message = str(j["error"], "message");
        }
        if (request_id.empty() && j.is_object()) request_id = str(j, "request_id");
        if (!request_id.empty()) out.set_request_id(request_id);
        if (head.status / 100 == 2) {
            out.fail(CS_ERR_PROTOCOL,
                     with_request_id(std::string(kName) + ": HTTP " + std::to_string(head.status) +
                                         " but not an event stream (content-type " +
                                         safe_name(head.header("content-type")) + ")",
                                     request_id),
                     head.status);
            return;
        }
        int64_t retry = pv::parse_retry_after_ms(head.header("retry-after"), out.host().now_unix_ms());
        cs_error_kind kind = map_error(head.status, type, message);
        std::string text = std::string(kName) + ": HTTP " + std::to_string(head.status);
        if (!type.empty()) text += " " + safe_name(type);
        out.fail(kind, with_request_id(text, request_id), head.status, retry);
    }

private:
    // Names from the wire (event and error types) go into messages only when they look like names.
    static std::string safe_name(const std::string &s) {
        if (s.empty()) return "unnamed";
        if (s.size() > 64) return "unnamed";
        for (char c : s)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/' ||
                  c == ';' || c == '=' || c == ' '))
                return "unnamed";
        return s;
    }

    void dispatch(const std::string &type, const json &j, StreamOut &out) {
        if (type == "message_start") {
            const json &m = j.at("message");
            out.model(str(m, "model"));
            read_usage(m.value("usage", json::object()));
            out.usage(input_tokens(), output_);
        } else if (type == "content_block_start") {
            const json &block = j.at("content_block");
            if (str(block, "type") == "text") out.text(str(block, "text"));
        } else if (type == "content_block_delta") {
            const json &d = j.at("delta");
            std::string dt = str(d, "type");
            if (dt == "text_delta") {
                out.text(d.at("text").get<std::string>());
            } else if (dt == "citations_delta") {
                out.citation(citation(d.at("citation")));
            }
            // thinking_delta, signature_delta, input_json_delta: not part of the answer.
        } else if (type == "message_delta") {
            std::string reason = str(j.at("delta"), "stop_reason");
            if (!reason.empty()) stop_reason_ = reason;
            if (j.contains("usage") && j["usage"].is_object()) {
                read_usage(j["usage"]);
                out.usage(input_tokens(), output_);
            }
        } else if (type == "message_stop") {
            out.end(map_stop(stop_reason_));
        } else if (type == "error") {
            const json &e = j.at("error");
            std::string et = str(e, "type");
            cs_error_kind kind = map_error(0, et, str(e, "message"));
            out.fail(kind,
                     with_request_id(std::string(kName) + ": stream error " + safe_name(et) + " after " +
                                         std::to_string(events_) + " events",
                                     out.request_id()),
                     0);
        }
        // ping, content_block_stop and event types added later: nothing to do.
    }

    // Anthropic's usage is cumulative; input tokens exclude cache reads and writes, which we add.
    void read_usage(const json &u) {
        if (!u.is_object()) return;
        if (int64_t v = num(u, "input_tokens"); v >= 0) input_ = v;
        if (int64_t v = num(u, "cache_creation_input_tokens"); v >= 0) cache_write_ = v;
        if (int64_t v = num(u, "cache_read_input_tokens"); v >= 0) cache_read_ = v;
        if (int64_t v = num(u, "output_tokens"); v >= 0) output_ = v;
    }
    int64_t input_tokens() const { return input_ + cache_write_ + cache_read_; }

    // {"title", "cited_text", "url"?} from any of Anthropic's citation location types.
    static json citation(const json &c) {
        json out = json::object();
        std::string title = str(c, "document_title");
        if (title.empty()) title = str(c, "title");
        out["title"] = title;
        out["cited_text"] = str(c, "cited_text");
        std::string url = str(c, "url");
        if (url.empty()) {
            std::string source = str(c, "source");  // search_result_location
            if (source.rfind("http://", 0) == 0 || source.rfind("https://", 0) == 0) url = source;
        }
        if (!url.empty()) out["url"] = url;
        return out;
    }

    size_t events_ = 0;
    std::string stop_reason_;
    int64_t input_ = 0, cache_write_ = 0, cache_read_ = 0, output_ = 0;
};

// ---- Request mapping ------------------------------------------------------------------------

json map_block(const json &b) {
    if (!b.is_object()) throw Error(CS_E_INVALID, "claude: a content block is not an object");
    std::string type = str(b, "type");
    if (type == "text") return {{"type", "text"}, {"text", str(b, "text")}};
    if (type == "image") {
        std::string mt = str(b, "media_type"), data = str(b, "data");
        if (mt.empty() || data.empty()) throw Error(CS_E_INVALID, "claude: an image block needs media_type and data");
        return {{"type", "image"}, {"source", {{"type", "base64"}, {"media_type", mt}, {"data", data}}}};
    }
    if (type == "document") {
        std::string mt = str(b, "media_type"), data = str(b, "data");
        if (mt.empty()) mt = "application/pdf";
        if (mt != "application/pdf")
            throw Error(CS_E_INVALID, "claude: documents must be application/pdf, got " + mt.substr(0, 64));
        if (data.empty()) throw Error(CS_E_INVALID, "claude: a document block needs data");
        json d = {{"type", "document"},
                  {"source", {{"type", "base64"}, {"media_type", mt}, {"data", data}}},
                  {"citations", {{"enabled", true}}}};
        std::string title = str(b, "title");
        if (title.empty()) title = str(b, "name");
        if (!title.empty()) d["title"] = title;
        return d;
    }
    throw Error(CS_E_INVALID, "claude: unsupported content block type \"" + type.substr(0, 32) + "\"");
}

json build_body(const json &rq) {
    std::string model = str(rq, "model");
    if (model.empty()) throw Error(CS_E_INVALID, "claude: the request has no model");
    auto msgs = rq.find("messages");
    if (msgs == rq.end() || !msgs->is_array() || msgs->empty())
        throw Error(CS_E_INVALID, "claude: the request has no messages");
    json body = json::object();
    body["model"] = model;
    int64_t max_tokens = num(rq, "max_tokens");
    body["max_tokens"] = max_tokens > 0 ? max_tokens : 1024;
    auto sys = rq.find("system");
    if (sys != rq.end() && ((sys->is_string() && !sys->get<std::string>().empty()) || sys->is_array()))
        body["system"] = *sys;
    json messages = json::array();
    for (const json &m : *msgs) {
        std::string role = str(m, "role");
        if (role != "user" && role != "assistant")
            throw Error(CS_E_INVALID, "claude: message roles must be user or assistant");
        const json &content = m.contains("content") ? m["content"] : json();
        json mapped;
        if (content.is_string()) {
            mapped = content;
        } else if (content.is_array()) {
            mapped = json::array();
            for (const json &b : content) mapped.push_back(map_block(b));
        } else {
            throw Error(CS_E_INVALID, "claude: a message has no content");
        }
        messages.push_back({{"role", role}, {"content", std::move(mapped)}});
    }
    body["messages"] = std::move(messages);
    auto temp = rq.find("temperature");
    if (temp != rq.end() && temp->is_number()) body["temperature"] = *temp;
    auto stops = rq.find("stop_sequences");
    if (stops != rq.end() && stops->is_array() && !stops->empty()) body["stop_sequences"] = *stops;
    body["stream"] = true;
    return body;
}

// ---- The plugin -----------------------------------------------------------------------------

class ClaudeProvider : public consilium::sdk::Provider {
public:
    static json defaults() {
        return {{"base_url", "https://api.anthropic.com"},
                {"api_key_env", "ANTHROPIC_API_KEY"},
                {"api_key_file", ""},
                {"api_key", pv::api_key_refusal_default()},
                {"anthropic_version", "2023-06-01"},
                {"max_concurrent", 16},
                {"beta", ""}};
    }

    ClaudeProvider(consilium::sdk::Host host, const std::string &path, const json &o)
        : host_(host),
          base_url_(pv::normalise_base_url(o.at("base_url").get<std::string>(), consilium::sdk::join_path(path, "base_url"))),
          key_(pv::load_api_key(o, path, true)),
          version_(o.at("anthropic_version").get<std::string>()),
          beta_(o.at("beta").get<std::string>()),
          max_concurrent_(static_cast<size_t>(consilium::sdk::option_int(o, path, "max_concurrent", 1, 1024))),
          client_(HttpClientOptions{max_concurrent_, "consilium-claude/1.0"}) {
        if (version_.empty() || !pv::header_safe("anthropic-version", version_))
            throw Error(CS_E_INVALID, consilium::sdk::join_path(path, "anthropic_version") + ": not a valid header value");
        if (!pv::header_safe("anthropic-beta", beta_))
            throw Error(CS_E_INVALID, consilium::sdk::join_path(path, "beta") + ": not a valid header value");
        host_.info(std::string(kName) + ": ready, max_concurrent=" + std::to_string(max_concurrent_) +
                   (beta_.empty() ? "" : ", with anthropic-beta"));
    }

    std::unique_ptr<consilium::sdk::Stream> start(const json &request, consilium::sdk::StreamSink sink) override {
        json body = build_body(request);
        HttpRequest rq;
        rq.url = base_url_ + "/v1/messages";
        rq.headers = {"content-type: application/json", "accept: text/event-stream", "x-api-key: " + key_,
                      "anthropic-version: " + version_};
        if (!beta_.empty()) rq.headers.push_back("anthropic-beta: " + beta_);
        rq.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
        rq.connect_timeout_ms = pv::connect_timeout_ms(request, 10000);
        auto handler = std::make_shared<SseHttpStream>(StreamOut(host_, std::move(sink), kName, key_),
                                                       std::make_unique<ClaudeProtocol>(), "request-id");
        uint64_t id = client_.start(std::move(rq), std::move(handler));
        return std::make_unique<HttpStreamHandle>(client_.canceller(id));
    }

private:
    consilium::sdk::Host host_;
    std::string base_url_;
    std::string key_;
    std::string version_;
    std::string beta_;
    size_t max_concurrent_;
    HttpClient client_;  // last: destroyed first, ending every stream while the rest is alive
};

}  // namespace

CONSILIUM_PROVIDER_PLUGIN(ClaudeProvider, "claude", "1.0.0", "Anthropic Claude (Messages API, streamed)")
