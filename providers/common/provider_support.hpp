// providers/common/provider_support.hpp: what the HTTP provider plugins share above the HTTP
// client: API key loading, retry-hint parsing, and the glue that turns one streamed HTTP
// response into the events of one provider stream (SseHttpStream), leaving only the provider's
// own protocol (StreamProtocol) to each plugin.
//
// PHI and secrets: the only text that leaves this layer for logs is status codes, error kinds,
// request ids, sizes and counts. Every error message is scrubbed of the API key before it goes
// out (StreamOut::fail), even though no code path should ever put it there.
#pragma once

#include "http_client.hpp"
#include "sse_parser.hpp"

#include <consilium/sdk/provider.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace consilium::providers {

using sdk::json;

// ---- API keys -------------------------------------------------------------------------------

// Loads the API key for the instance at `path` from the options `api_key_file` (a file whose
// content, trimmed, is the key) or else `api_key_env` (an environment variable's name). Refuses
// an `api_key` option (keys never live in the configuration). When `required`, a missing key is
// an error naming the variable or file; otherwise it yields "". Throws sdk::Error(CS_E_INVALID).
// Messages never contain the key.
std::string load_api_key(const json &options, const std::string &path, bool required);

// The defaults() entry that lets load_api_key() refuse `api_key` with a helpful message instead
// of the SDK's generic "unknown key": a null default accepts any value, load_api_key refuses it.
inline json api_key_refusal_default() { return nullptr; }

// ---- Small parsing helpers ------------------------------------------------------------------

// Retry-After: delay-seconds (integer or decimal) or an HTTP-date, relative to now_unix_ms.
// Returns milliseconds (>= 0), or -1 when the value is not understood.
int64_t parse_retry_after_ms(std::string_view value, int64_t now_unix_ms);
// Go-style durations as OpenAI's x-ratelimit-reset-* headers send them: "1s", "6m0s", "12ms",
// "1.574s", "1h2m3s". Returns milliseconds, or -1.
int64_t parse_duration_ms(std::string_view value);
// base_url without trailing slashes; throws sdk::Error when it is not http:// or https://.
std::string normalise_base_url(const std::string &url, const std::string &option_path);
// request["timeouts"]["connect_ms"] when given, else fallback.
int64_t connect_timeout_ms(const json &request, int64_t fallback);
// Replaces every occurrence of secret in text (no-op for an empty secret).
std::string redact(std::string text, const std::string &secret);
// Refuses header names/values that could split a header line (CR, LF, NUL) or are empty.
bool header_safe(std::string_view name, std::string_view value);

// ---- One stream's output --------------------------------------------------------------------

// The event side of one stream: the SDK's StreamSink plus the scrubbing of error messages, a
// one-line log at the end (kind, status, request id, sizes), and the counters it reports.
// LIFETIME: owned by the stream's SseHttpStream; used on the HTTP loop thread only.
class StreamOut {
public:
    StreamOut(sdk::Host host, sdk::StreamSink sink, std::string provider, std::string secret)
        : host_(host), sink_(std::move(sink)), provider_(std::move(provider)), secret_(std::move(secret)) {}

    void text(std::string_view delta);
    void citation(const json &c);
    void model(std::string_view m);
    void usage(int64_t input_tokens, int64_t output_tokens);
    void end(cs_stop_reason reason);
    void fail(cs_error_kind kind, const std::string &message, int http_status = 0, int64_t retry_after_ms = -1);

    bool finished() const { return finished_; }
    const std::string &provider() const { return provider_; }
    const sdk::Host &host() const { return host_; }
    void set_request_id(std::string id) { request_id_ = std::move(id); }
    const std::string &request_id() const { return request_id_; }
    void count_body_bytes(int64_t n) { body_bytes_ += n; }

private:
    sdk::Host host_;
    sdk::StreamSink sink_;
    std::string provider_;
    std::string secret_;
    std::string request_id_;
    bool finished_ = false;
    int64_t text_bytes_ = 0;
    int64_t body_bytes_ = 0;
};

// A provider's protocol over SSE: what each event means, how an error response maps.
// Implementations send events through `out` and end the stream with out.end()/out.fail().
// Called on the HTTP loop thread only, one call at a time.
class StreamProtocol {
public:
    virtual ~StreamProtocol() = default;
    // One event of a successful (2xx, text/event-stream) response.
    virtual void on_event(const SseEvent &event, StreamOut &out) = 0;
    // The body ended cleanly and the protocol has not ended the stream: decide (complete or
    // truncated).
    virtual void on_eof(StreamOut &out) = 0;
    // A response that is not an event stream: an error status, or a 2xx with another content
    // type. body holds at most the first 64 KiB.
    virtual void on_error_response(const HttpHead &head, std::string_view body, StreamOut &out) = 0;
};

// Turns one HTTP transfer into one provider stream: SSE parsing for event streams, collecting
// error bodies, and mapping transport failures (connect timeout -> TIMEOUT, refused / reset /
// closed early -> CONNECTION, cancel -> END CANCELLED, client shutdown -> CONNECTION).
// LIFETIME: shared by the HTTP client (until on_end) and nobody else.
class SseHttpStream : public HttpHandler {
public:
    SseHttpStream(StreamOut out, std::unique_ptr<StreamProtocol> protocol, std::string request_id_header);

    void on_head(const HttpHead &head) override;
    bool on_body(std::string_view bytes) override;
    void on_end(const HttpResult &result) override;

private:
    StreamOut out_;
    std::unique_ptr<StreamProtocol> protocol_;
    std::string request_id_header_;
    HttpHead head_;
    bool streaming_ = false;
    std::string error_body_;
    SseParser parser_;
};

// The handle the host holds for a stream: cancelling only. The stream's state lives in the
// HTTP client until the transfer ends. LIFETIME: may outlive the provider instance.
class HttpStreamHandle : public sdk::Stream {
public:
    explicit HttpStreamHandle(HttpClient::Canceller c) : canceller_(std::move(c)) {}
    void cancel() override { canceller_.cancel(); }

private:
    HttpClient::Canceller canceller_;
};

// Parses JSON the way the stream protocols want: discarded (not thrown) on error.
inline json parse_json(std::string_view text) { return json::parse(text, nullptr, false); }

}  // namespace consilium::providers
