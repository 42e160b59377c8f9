// providers/openai-realtime/openai_realtime_provider.cpp: the "openai_realtime" provider plugin,
// OpenAI's Realtime API (GA) for voice consultations. Two ways in (docs/providers.md):
//
//  - voice_session: POST {base_url}/realtime/client_secrets mints a short-lived client secret
//    with which the browser opens its own WebRTC session at {base_url}/realtime/calls. Blocking
//    (the ABI wants the answer before the call returns), bounded by request_timeout_ms. The HTTP
//    side is providers/common's libcurl client.
//  - open_relay: a server-side WebSocket to {base_url as ws[s]}/realtime?model=..., session.update
//    first, then JSON text frames both ways (realtime_relay.cpp, Boost.Beast).
//
// There is no text chat here: stream_start is refused with CS_E_UNSUPPORTED.
#include "provider_support.hpp"
#include "realtime_relay.hpp"
#include "realtime_session.hpp"

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace {

using consilium::providers::HttpClient;
using consilium::providers::HttpClientOptions;
using consilium::providers::HttpEnd;
using consilium::providers::HttpHandler;
using consilium::providers::HttpHead;
using consilium::providers::HttpRequest;
using consilium::providers::HttpResult;
using consilium::sdk::Error;
using consilium::sdk::join_path;
using consilium::sdk::json;
namespace pv = consilium::providers;
namespace rt = consilium::providers::realtime;

constexpr const char *kName = "openai_realtime";
constexpr size_t kMaxResponseBody = 1u << 20;

// Names from the wire go into messages only when they look like names.
std::string safe_name(const std::string &s) {
    if (s.empty() || s.size() > 64) return "";
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
            return "";
    return s;
}

// Collects one response; the caller waits for on_end.
class Collect : public HttpHandler {
public:
    void on_head(const HttpHead &head) override { head_ = head; }
    bool on_body(std::string_view bytes) override {
        if (body_.size() + bytes.size() > kMaxResponseBody) return false;  // ends as `aborted`
        body_.append(bytes);
        return true;
    }
    void on_end(const HttpResult &result) override {
        std::lock_guard<std::mutex> lock(mu_);
        result_ = result;
        done_ = true;
        cv_.notify_all();
    }
    bool wait(std::chrono::milliseconds d) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, d, [this] { return done_; });
    }
    // Valid after wait() returned true (on_end happened-before it).
    const HttpHead &head() const { return head_; }
    const std::string &body() const { return body_; }
    const HttpResult &result() const { return result_; }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    HttpHead head_;
    std::string body_;
    HttpResult result_;
};

class OpenAiRealtimeProvider : public consilium::sdk::Provider {
public:
    static json defaults() {
        return {{"base_url", "https://api.openai.com/v1"},
                {"api_key_env", "OPENAI_API_KEY"},
                {"api_key_file", ""},
                {"api_key", pv::api_key_refusal_default()},
                {"transcription_model", "gpt-4o-transcribe"},
                {"expires_after_s", 600},
                {"vad_threshold", 0.5},
                {"vad_prefix_padding_ms", 300},
                {"vad_silence_duration_ms", 500},
                {"connect_timeout_ms", 5000},
                {"request_timeout_ms", 20000},
                {"send_queue_limit", 4194304},
                {"beta", false}};
    }

    OpenAiRealtimeProvider(consilium::sdk::Host host, const std::string &path, const json &o)
        : host_(host),
          base_url_(pv::normalise_base_url(o.at("base_url").get<std::string>(), join_path(path, "base_url"))),
          key_(pv::load_api_key(o, path, true)),
          key_source_(o.value("api_key_file", "").empty() ? "api_key_env " + o.value("api_key_env", "")
                                                           : std::string("api_key_file")),
          defaults_(session_defaults(o, path)),
          connect_timeout_ms_(consilium::sdk::option_int(o, path, "connect_timeout_ms", 100, 120000)),
          request_timeout_ms_(consilium::sdk::option_int(o, path, "request_timeout_ms", 1000, 600000)),
          beta_(o.at("beta").get<bool>()),
          target_check_(rt::ws_target(base_url_, "m")),
          http_(HttpClientOptions{8, "consilium-openai-realtime/1.0"}),
          relays_(host, kName) {
        relay_options_.connect_timeout_ms = connect_timeout_ms_;
        relay_options_.send_queue_limit =
            static_cast<size_t>(consilium::sdk::option_int(o, path, "send_queue_limit", 1024, int64_t(1) << 30));
        host_.info(std::string(kName) + ": ready, " + (target_check_.tls ? "wss" : "ws (no TLS)") + " relay" +
                   (beta_ ? ", beta protocol (OpenAI-Beta: realtime=v1)" : ", GA protocol") + ", API key loaded");
    }

    std::unique_ptr<consilium::sdk::Stream> start(const json &, consilium::sdk::StreamSink) override {
        throw Error(CS_E_UNSUPPORTED, std::string(kName) +
                                          ": this provider carries realtime voice only (voice sessions and relays); "
                                          "point text models at another provider (claude, openai_compatible)");
    }

    json voice_session(const json &request) override {
        rt::VoiceRequest rq = rt::parse_voice_request(request, defaults_);
        HttpRequest http;
        http.url = base_url_ + "/realtime/client_secrets";
        http.headers = {"content-type: application/json", "accept: application/json", "authorization: Bearer " + key_};
        http.body = rt::client_secret_body(rq).dump(-1, ' ', false, json::error_handler_t::replace);
        http.connect_timeout_ms = connect_timeout_ms_;
        auto collect = std::make_shared<Collect>();
        uint64_t id = http_.start(std::move(http), collect);
        if (!collect->wait(std::chrono::milliseconds(request_timeout_ms_))) {
            http_.cancel(id);
            collect->wait(std::chrono::seconds(10));
            fail(CS_E_IO, "no answer to the client secret request within " + std::to_string(request_timeout_ms_) + " ms");
        }
        const HttpResult &r = collect->result();
        const HttpHead &head = collect->head();
        std::string rid = safe_name(head.header("x-request-id"));
        std::string tail = rid.empty() ? "" : " (request-id " + rid + ")";
        switch (r.end) {
        case HttpEnd::complete: break;
        case HttpEnd::connect_timeout:
            fail(CS_E_IO, "connect timeout minting a voice session (" + std::to_string(connect_timeout_ms_) + " ms)");
        case HttpEnd::aborted: fail(CS_E_IO, "the client secret response is over 1 MiB" + tail);
        case HttpEnd::shutdown: fail(CS_E_IO, "the provider instance is shutting down");
        case HttpEnd::cancelled:
        case HttpEnd::connection_failed:
        case HttpEnd::failed: fail(CS_E_IO, "connection failed minting a voice session (" + r.message + ")");
        }
        int status = head.status;
        if (status == 200 || status == 201) {
            json body = json::parse(collect->body(), nullptr, false);
            try {
                json out = rt::map_client_secret_response(body, rq, base_url_);
                host_.log(CS_LOG_DEBUG, std::string(kName) + ": voice session minted status=" + std::to_string(status) +
                                            (rid.empty() ? "" : " request_id=" + rid));
                return out;
            } catch (const Error &e) {
                std::string m = pv::redact(e.what() + tail, key_);
                host_.warn(m);
                throw Error(e.status(), m);
            }
        }
        // An error: only the status, OpenAI's error code and param (names) go into the message.
        json err = json::parse(collect->body(), nullptr, false);
        std::string code, param;
        if (err.is_object() && err.contains("error") && err["error"].is_object()) {
            const json &e = err["error"];
            if (e.contains("code") && e["code"].is_string()) code = safe_name(e["code"].get<std::string>());
            if (code.empty() && e.contains("type") && e["type"].is_string()) code = safe_name(e["type"].get<std::string>());
            if (e.contains("param") && e["param"].is_string()) param = safe_name(e["param"].get<std::string>());
        }
        std::string what = "HTTP " + std::to_string(status) + (code.empty() ? "" : " " + code) +
                           (param.empty() ? "" : " (param " + param + ")") + tail;
        if (status == 401 || status == 403)
            fail(CS_E_INVALID, "the operator's OpenAI credentials were refused (" + what + "); check the key in " +
                                   key_source_);
        if (status == 429) {
            int64_t retry = pv::parse_retry_after_ms(head.header("retry-after"), host_.now_unix_ms());
            fail(CS_E_BUSY, "rate limited minting a voice session (" + what + ")" +
                                (retry >= 0 ? "; retry after " + std::to_string(retry) + " ms" : ""));
        }
        if (status >= 500) fail(CS_E_IO, "OpenAI failed to mint a voice session (" + what + ")");
        if (status == 404) fail(CS_E_NOT_FOUND, "OpenAI does not know this endpoint or model (" + what + ")");
        fail(CS_E_INVALID, "OpenAI refused the voice session request (" + what + ")");
    }

    std::unique_ptr<consilium::sdk::Relay> open_relay(const json &request, consilium::sdk::RelaySink sink) override {
        rt::VoiceRequest rq = rt::parse_voice_request(request, defaults_);
        rt::WsTarget target = rt::ws_target(base_url_, rq.model);
        std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + key_}};
        if (beta_) headers.emplace_back("OpenAI-Beta", "realtime=v1");
        std::string first = rt::session_update(rq, beta_).dump(-1, ' ', false, json::error_handler_t::replace);
        return relays_.open(target, std::move(headers), std::move(first), std::move(sink), relay_options_);
    }

private:
    static rt::SessionDefaults session_defaults(const json &o, const std::string &path) {
        rt::SessionDefaults d;
        d.transcription_model = o.at("transcription_model").get<std::string>();
        d.expires_after_s = consilium::sdk::option_int(o, path, "expires_after_s", 10, 7200);
        d.vad_threshold = consilium::sdk::option_number(o, path, "vad_threshold", 0.0, 1.0);
        d.vad_prefix_padding_ms = consilium::sdk::option_int(o, path, "vad_prefix_padding_ms", 0, 10000);
        d.vad_silence_duration_ms = consilium::sdk::option_int(o, path, "vad_silence_duration_ms", 0, 10000);
        return d;
    }

    // Every message is scrubbed of the key, though nothing should ever put it there.
    [[noreturn]] void fail(cs_status status, const std::string &message) const {
        std::string m = pv::redact(std::string(kName) + ": " + message, key_);
        host_.warn(m);
        throw Error(status, m);
    }

    consilium::sdk::Host host_;
    std::string base_url_;
    std::string key_;
    std::string key_source_;
    rt::SessionDefaults defaults_;
    int64_t connect_timeout_ms_;
    int64_t request_timeout_ms_;
    bool beta_;
    rt::WsTarget target_check_;  // base_url parsed once at start, so a bad one fails create()
    rt::RelayOptions relay_options_;
    HttpClient http_;     // destroyed second: ends the transfers still running
    rt::RelayClient relays_;  // destroyed first: every open relay gets 1001
};

}  // namespace

CONSILIUM_PROVIDER_PLUGIN(OpenAiRealtimeProvider, "openai_realtime", "1.0.0",
                          "OpenAI Realtime API for voice (client secrets for WebRTC, WebSocket relay)")
