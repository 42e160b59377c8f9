// providers/common/http_client.hpp: the HTTP client every HTTP provider plugin shares.
//
// libcurl's MULTI interface driven by one event-loop thread per client (curl_multi_poll, woken by
// curl_multi_wakeup): never a thread per request. A request's response head (status, headers)
// reaches its handler before any body byte, and the body streams to the handler as it arrives.
// Requests beyond `max_concurrent` wait in a FIFO queue. cancel() works from any thread: it wakes
// the loop, which removes the transfer at once. The destructor ends every transfer (each handler
// gets its on_end) and joins the thread.
//
// Curl-free header: plugins and tests include it without <curl/curl.h>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace consilium::providers {

// One request. LIFETIME: moved into the client, which keeps it until the transfer ends.
struct HttpRequest {
    std::string method = "POST";
    std::string url;
    std::vector<std::string> headers;  // "Name: value" lines, sent as given
    std::string body;
    int64_t connect_timeout_ms = 10000;  // TCP + TLS connect; 0 = libcurl's default
};

// The response head: final status and headers (names in lower case, in arrival order).
struct HttpHead {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    // The first value of a header (name in any case), or "".
    std::string header(std::string_view name) const;
};

// How a transfer ended.
enum class HttpEnd {
    complete,           // the whole response arrived (any status)
    cancelled,          // cancel() was called
    aborted,            // the handler's on_body returned false
    shutdown,           // the client was destroyed first
    connect_timeout,    // no connection within connect_timeout_ms
    connection_failed,  // refused, reset, closed early, TLS or DNS failure
    failed              // anything else libcurl reported
};

struct HttpResult {
    HttpEnd end = HttpEnd::complete;
    int curl_code = 0;
    std::string message;  // libcurl's description of a failure (no header values, no body)
    int64_t body_bytes = 0;
    bool head_received = false;
};

// Receives one transfer's response. Every call runs on the client's loop thread, one at a time:
// on_head once (if a final status arrived), on_body per chunk, then on_end exactly once. Handlers
// must not block; they may call HttpClient::cancel/start (both only queue work).
class HttpHandler {
public:
    virtual ~HttpHandler() = default;
    virtual void on_head(const HttpHead &head) = 0;
    // Returns false to abort the transfer (it then ends with HttpEnd::aborted).
    virtual bool on_body(std::string_view bytes) = 0;
    virtual void on_end(const HttpResult &result) = 0;
};

struct HttpClientOptions {
    size_t max_concurrent = 16;  // transfers in flight; more wait in a queue
    std::string user_agent = "consilium";
};

// LIFETIME: owned by one provider instance. Handlers are kept alive (shared_ptr) until their
// on_end returned. Cancellers may outlive the client; they then do nothing.
class HttpClient {
public:
    explicit HttpClient(HttpClientOptions options);
    ~HttpClient();
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    // Queues a transfer and returns its id. Events may reach the handler before this returns.
    uint64_t start(HttpRequest request, std::shared_ptr<HttpHandler> handler);
    // Ends a transfer (queued or running) with HttpEnd::cancelled; a no-op once it ended.
    void cancel(uint64_t id);

    struct Core;
    // Cancels one transfer; safe to keep after the client is gone.
    class Canceller {
    public:
        Canceller() = default;
        Canceller(std::weak_ptr<Core> core, uint64_t id) : core_(std::move(core)), id_(id) {}
        void cancel() const;

    private:
        std::weak_ptr<Core> core_;
        uint64_t id_ = 0;
    };
    Canceller canceller(uint64_t id) const;

    // For tests and metrics.
    size_t in_flight() const;
    size_t peak_in_flight() const;

private:
    std::shared_ptr<Core> core_;
};

}  // namespace consilium::providers
