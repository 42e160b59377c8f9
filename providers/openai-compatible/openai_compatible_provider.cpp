// providers/openai-compatible/openai_compatible_provider.cpp: the "openai_compatible" provider
// plugin: Chat Completions streamed over SSE (POST {base_url}/chat/completions, stream: true,
// stream_options.include_usage) for OpenAI and the servers that speak its dialect (vLLM, Ollama,
// llama.cpp server).
//
// The model request of docs/plugins.md maps to chat messages (system first; images as image_url
// data: URLs; PDFs as `file` parts); `data:` chunks map to CS_EV_* per
// ../shared/protocols/SUMMARY.md section 3; HTTP and in-stream errors map to cs_error_kind by
// status, error.code and error.type (table in docs/providers.md). The HTTP side (libcurl multi,
// SSE, cancellation, keys) is in providers/common/.
#include "provider_support.hpp"

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
using consilium::sdk::join_path;
namespace pv = consilium::providers;

constexpr const char *kName = "openai_compatible";

std::string lower(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string str(const json &j, const char *key) {
    if (!j.is_object()) return {};
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t num(const json &j, const char *key) {
    if (!j.is_object()) return -1;
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<int64_t>() : -1;
}

// Names from the wire go into messages only when they look like names.
std::string safe_name(const std::string &s) {
    if (s.empty() || s.size() > 64) return "unnamed";
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/' || c == ';' ||
              c == '=' || c == ' '))
            return "unnamed";
    return s;
}

// An error object in any of the dialects: OpenAI {"error": {message, type, param, code}},
// vLLM's older flat {"object": "error", message, type, code}, {"error": "text"} (Ollama).
struct WireError {
    bool present = false;
    std::string type, code, message;
    int status_code = 0;  // vLLM puts the HTTP status in code
};

WireError read_error(const json &j) {
    WireError e;
    if (!j.is_object()) return e;
    const json *o = nullptr;
    auto it = j.find("error");
    if (it != j.end() && it->is_object()) o = &*it;
    else if (it != j.end() && it->is_string()) {
        e.present = true;
        e.message = it->get<std::string>();
        return e;
    } else if (str(j, "object") == "error") o = &j;
    if (!o) return e;
    e.present = true;
    e.type = str(*o, "type");
    e.message = str(*o, "message");
    auto c = o->find("code");
    if (c != o->end() && c->is_string()) e.code = c->get<std::string>();
    if (c != o->end() && c->is_number_integer()) e.status_code = c->get<int>();
    return e;
}

bool says_context_too_long(const WireError &e) {
    if (e.code == "context_length_exceeded" || e.type == "exceed_context_size_error" ||
        e.code == "string_above_max_length")
        return true;
    std::string m = lower(e.message);
    for (const char *p : {"maximum context length", "context length", "context window", "context size",
                          "too many tokens", "prompt is too long"})
        if (m.find(p) != std::string::npos) return true;
    return false;
}

bool says_content_filter(const WireError &e) {
    for (const std::string *s : {&e.code, &e.type})
        if (*s == "content_policy_violation" || *s == "content_filter") return true;
    return false;
}

// Status (0 for an in-stream error) and the error object to the connector's error kind.
cs_error_kind map_error(int status, const WireError &e) {
    if (status == 0 && e.status_code >= 400) status = e.status_code;
    if (e.code == "insufficient_quota" || e.type == "insufficient_quota") return CS_ERR_AUTH;  // billing
    if (status == 429 || e.code == "rate_limit_exceeded") return CS_ERR_RATE_LIMITED;
    if (status == 413 || says_context_too_long(e)) return CS_ERR_CONTEXT_TOO_LONG;
    if (says_content_filter(e)) return CS_ERR_CONTENT_FILTER;
    if (status == 401 || status == 402 || status == 403 || e.code == "invalid_api_key") return CS_ERR_AUTH;
    if (status == 404 || e.code == "model_not_found") return CS_ERR_NOT_FOUND;
    if (status == 408 || status == 504) return CS_ERR_TIMEOUT;
    if (status == 503 || status == 529) return CS_ERR_OVERLOADED;
    if (status >= 500) return CS_ERR_SERVER;
    if (status >= 400) return CS_ERR_BAD_REQUEST;
    return status == 0 ? CS_ERR_SERVER : CS_ERR_PROTOCOL;
}

cs_stop_reason map_finish(const std::string &finish) {
    if (finish == "length") return CS_STOP_MAX_TOKENS;
    if (finish == "content_filter") return CS_STOP_REFUSAL;
    return CS_STOP_END_TURN;  // stop, tool_calls, function_call, and anything newer
}

std::string with_request_id(std::string message, const std::string &request_id) {
    if (!request_id.empty()) message += " (request-id " + request_id + ")";
    return message;
}

// The Chat Completions stream of one request. LIFETIME: owned by its SseHttpStream.
class ChatProtocol : public StreamProtocol {
public:
    void on_event(const SseEvent &ev, StreamOut &out) override {
        ++events_;
        std::string_view data = ev.data;
        while (!data.empty() && std::isspace(static_cast<unsigned char>(data.back()))) data.remove_suffix(1);
        if (data == "[DONE]") {
            complete(out);
            return;
        }
        json j = pv::parse_json(data);
        if (j.is_discarded() || !j.is_object()) {
            out.fail(CS_ERR_PROTOCOL,
                     with_request_id(std::string(kName) + ": malformed chunk (" + std::to_string(ev.data.size()) +
                                         " bytes)",
                                     out.request_id()),
                     200);
            return;
        }
        WireError e = read_error(j);
        if (e.present) {
            cs_error_kind kind = map_error(0, e);
            std::string text = std::string(kName) + ": stream error";
            if (!e.type.empty()) text += " " + safe_name(e.type);
            if (!e.code.empty()) text += " " + safe_name(e.code);
            out.fail(kind, with_request_id(text + " after " + std::to_string(events_) + " chunks", out.request_id()),
                     0);
            return;
        }
        try {
            chunk(j, out);
        } catch (const json::exception &) {
            out.fail(CS_ERR_PROTOCOL, with_request_id(std::string(kName) + ": unexpected shape of a chunk", out.request_id()),
                     200);
        }
    }

    void on_eof(StreamOut &out) override {
        // Some servers close without [DONE]: complete if the choice finished, truncated if not.
        if (!finish_.empty()) {
            complete(out);
            return;
        }
        out.fail(CS_ERR_PROTOCOL,
                 with_request_id(std::string(kName) + ": the stream ended without finish_reason or [DONE] (" +
                                     std::to_string(events_) + " chunks)",
                                 out.request_id()),
                 200);
    }

    void on_error_response(const HttpHead &head, std::string_view body, StreamOut &out) override {
        if (head.status / 100 == 2) {
            out.fail(CS_ERR_PROTOCOL,
                     with_request_id(std::string(kName) + ": HTTP " + std::to_string(head.status) +
                                         " but not an event stream (content-type " +
                                         safe_name(head.header("content-type")) + ")",
                                     out.request_id()),
                     head.status);
            return;
        }
        WireError e = read_error(pv::parse_json(body));
        cs_error_kind kind = map_error(head.status, e);
        int64_t retry = retry_after(head, out.host().now_unix_ms());
        std::string text = std::string(kName) + ": HTTP " + std::to_string(head.status);
        if (!e.type.empty()) text += " " + safe_name(e.type);
        if (!e.code.empty()) text += " " + safe_name(e.code);
        out.fail(kind, with_request_id(text, out.request_id()), head.status, retry);
    }

    // retry-after (seconds or date), else retry-after-ms, else x-ratelimit-reset-requests/-tokens.
    static int64_t retry_after(const HttpHead &head, int64_t now_ms) {
        int64_t ms = pv::parse_retry_after_ms(head.header("retry-after"), now_ms);
        if (ms >= 0) return ms;
        std::string v = head.header("retry-after-ms");
        if (!v.empty()) {
            char *end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (end && *end == '\0' && d >= 0) return static_cast<int64_t>(d);
        }
        if (head.status != 429) return -1;
        ms = pv::parse_duration_ms(head.header("x-ratelimit-reset-requests"));
        if (ms >= 0) return ms;
        return pv::parse_duration_ms(head.header("x-ratelimit-reset-tokens"));
    }

private:
    void chunk(const json &j, StreamOut &out) {
        if (!model_sent_) {
            std::string model = str(j, "model");
            if (!model.empty()) {
                out.model(model);
                model_sent_ = true;
            }
        }
        auto choices = j.find("choices");
        if (choices != j.end() && choices->is_array()) {
            for (const json &c : *choices) {
                int64_t index = num(c, "index");
                if (index > 0) continue;  // n > 1: the first choice only
                auto delta = c.find("delta");
                if (delta != c.end() && delta->is_object()) {
                    out.text(str(*delta, "content"));
                    refusal_ += str(*delta, "refusal");
                }
                std::string finish = str(c, "finish_reason");
                if (!finish.empty()) finish_ = finish;
            }
        }
        auto usage = j.find("usage");
        if (usage != j.end() && usage->is_object()) {
            int64_t in = num(*usage, "prompt_tokens"), outn = num(*usage, "completion_tokens");
            out.usage(in < 0 ? 0 : in, outn < 0 ? 0 : outn);
        }
    }

    void complete(StreamOut &out) {
        if (!refusal_.empty()) {
            out.text(refusal_);  // the model's own words of refusal, as the answer
            out.end(CS_STOP_REFUSAL);
            return;
        }
        out.end(map_finish(finish_));
    }

    size_t events_ = 0;
    bool model_sent_ = false;
    std::string finish_;
    std::string refusal_;
};

// ---- Request mapping ------------------------------------------------------------------------

std::string data_url(const std::string &media_type, const std::string &data) {
    return "data:" + media_type + ";base64," + data;
}

json map_content(const std::string &role, const json &content) {
    if (content.is_string()) return content;
    if (!content.is_array()) throw Error(CS_E_INVALID, "openai_compatible: a message has no content");
    bool only_text = true;
    for (const json &b : content)
        if (str(b, "type") != "text") only_text = false;
    if (only_text || role == "assistant") {
        // Plain strings reach every server (older llama.cpp and Ollama builds want them).
        std::string text;
        for (const json &b : content) {
            if (str(b, "type") != "text") continue;
            if (!text.empty()) text += "\n";
            text += str(b, "text");
        }
        return text;
    }
    json parts = json::array();
    for (const json &b : content) {
        std::string type = str(b, "type");
        if (type == "text") {
            parts.push_back({{"type", "text"}, {"text", str(b, "text")}});
        } else if (type == "image") {
            std::string mt = str(b, "media_type"), data = str(b, "data");
            if (mt.empty() || data.empty())
                throw Error(CS_E_INVALID, "openai_compatible: an image block needs media_type and data");
            parts.push_back({{"type", "image_url"}, {"image_url", {{"url", data_url(mt, data)}}}});
        } else if (type == "document") {
            std::string mt = str(b, "media_type"), data = str(b, "data");
            if (mt.empty()) mt = "application/pdf";
            if (data.empty()) throw Error(CS_E_INVALID, "openai_compatible: a document block needs data");
            std::string name = str(b, "title");
            if (name.empty()) name = str(b, "name");
            if (name.empty()) name = "document.pdf";
            parts.push_back({{"type", "file"}, {"file", {{"filename", name}, {"file_data", data_url(mt, data)}}}});
        } else {
            throw Error(CS_E_INVALID, "openai_compatible: unsupported content block type \"" + type.substr(0, 32) + "\"");
        }
    }
    return parts;
}

json build_body(const json &rq, const std::string &max_tokens_field) {
    std::string model = str(rq, "model");
    if (model.empty()) throw Error(CS_E_INVALID, "openai_compatible: the request has no model");
    auto msgs = rq.find("messages");
    if (msgs == rq.end() || !msgs->is_array() || msgs->empty())
        throw Error(CS_E_INVALID, "openai_compatible: the request has no messages");
    json messages = json::array();
    std::string system = str(rq, "system");
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    for (const json &m : *msgs) {
        std::string role = str(m, "role");
        if (role != "user" && role != "assistant")
            throw Error(CS_E_INVALID, "openai_compatible: message roles must be user or assistant");
        messages.push_back({{"role", role}, {"content", map_content(role, m.contains("content") ? m["content"] : json())}});
    }
    json body = json::object();
    body["model"] = model;
    body["messages"] = std::move(messages);
    int64_t max_tokens = num(rq, "max_tokens");
    if (max_tokens > 0) body[max_tokens_field] = max_tokens;
    auto temp = rq.find("temperature");
    if (temp != rq.end() && temp->is_number()) body["temperature"] = *temp;
    auto stops = rq.find("stop_sequences");
    if (stops != rq.end() && stops->is_array() && !stops->empty()) body["stop"] = *stops;
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    return body;
}

// ---- The plugin -----------------------------------------------------------------------------

class OpenAiCompatibleProvider : public consilium::sdk::Provider {
public:
    static json defaults() {
        return {{"base_url", "https://api.openai.com/v1"},
                {"api_key_env", "OPENAI_API_KEY"},
                {"api_key_file", ""},
                {"api_key", pv::api_key_refusal_default()},
                {"max_concurrent", 16},
                {"organization", ""},
                {"extra_headers", json::object()},
                {"max_tokens_field", "max_completion_tokens"}};
    }

    OpenAiCompatibleProvider(consilium::sdk::Host host, const std::string &path, const json &o)
        : host_(host),
          base_url_(pv::normalise_base_url(o.at("base_url").get<std::string>(), join_path(path, "base_url"))),
          key_(pv::load_api_key(o, path, false)),
          max_tokens_field_(o.at("max_tokens_field").get<std::string>()),
          max_concurrent_(static_cast<size_t>(consilium::sdk::option_int(o, path, "max_concurrent", 1, 1024))),
          headers_(fixed_headers(o, path)),
          client_(HttpClientOptions{max_concurrent_, "consilium-openai-compatible/1.0"}) {
        if (max_tokens_field_ != "max_completion_tokens" && max_tokens_field_ != "max_tokens")
            throw Error(CS_E_INVALID, join_path(path, "max_tokens_field") +
                                          ": must be max_completion_tokens or max_tokens, got \"" +
                                          max_tokens_field_.substr(0, 64) + "\"");
        host_.info(std::string(kName) + ": ready, max_concurrent=" + std::to_string(max_concurrent_) +
                   (key_.empty() ? ", no API key (no Authorization header)" : ", API key loaded"));
    }

    std::unique_ptr<consilium::sdk::Stream> start(const json &request, consilium::sdk::StreamSink sink) override {
        json body = build_body(request, max_tokens_field_);
        HttpRequest rq;
        rq.url = base_url_ + "/chat/completions";
        rq.headers = headers_;
        if (!key_.empty()) rq.headers.push_back("authorization: Bearer " + key_);
        rq.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
        rq.connect_timeout_ms = pv::connect_timeout_ms(request, 10000);
        auto handler = std::make_shared<SseHttpStream>(StreamOut(host_, std::move(sink), kName, key_),
                                                       std::make_unique<ChatProtocol>(), "x-request-id");
        uint64_t id = client_.start(std::move(rq), std::move(handler));
        return std::make_unique<HttpStreamHandle>(client_.canceller(id));
    }

private:
    static std::vector<std::string> fixed_headers(const json &o, const std::string &path) {
        std::vector<std::string> h = {"content-type: application/json", "accept: text/event-stream"};
        std::string org = o.at("organization").get<std::string>();
        if (!org.empty()) {
            if (!pv::header_safe("OpenAI-Organization", org))
                throw Error(CS_E_INVALID, join_path(path, "organization") + ": not a valid header value");
            h.push_back("OpenAI-Organization: " + org);
        }
        std::string base = join_path(path, "extra_headers");
        for (auto it = o.at("extra_headers").begin(); it != o.at("extra_headers").end(); ++it) {
            std::string p = join_path(base, it.key());
            if (!it.value().is_string()) throw Error(CS_E_INVALID, p + ": expected a string");
            std::string name = lower(it.key());
            if (name == "authorization" || name == "api-key" || name == "x-api-key")
                throw Error(CS_E_INVALID, p + ": keys are never read from the configuration; set api_key_env or "
                                              "api_key_file");
            if (name == "content-type" || name == "content-length" || name == "host")
                throw Error(CS_E_INVALID, p + ": this header is set by the plugin");
            std::string value = it.value().get<std::string>();
            if (!pv::header_safe(it.key(), value)) throw Error(CS_E_INVALID, p + ": not a valid header");
            h.push_back(it.key() + ": " + value);
        }
        return h;
    }

    consilium::sdk::Host host_;
    std::string base_url_;
    std::string key_;
    std::string max_tokens_field_;
    size_t max_concurrent_;
    std::vector<std::string> headers_;
    HttpClient client_;  // last: destroyed first, ending every stream while the rest is alive
};

}  // namespace

CONSILIUM_PROVIDER_PLUGIN(OpenAiCompatibleProvider, "openai_compatible", "1.0.0",
                          "OpenAI Chat Completions and compatible servers (vLLM, Ollama, llama.cpp), streamed")
