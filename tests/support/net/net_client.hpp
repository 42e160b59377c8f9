// HTTP and WebSocket clients for tests: synchronous, every call bounded by a timeout, no
// exceptions. Beast-free header; all the Beast code is in net_client.cpp (target
// consilium_test_net).
//
//   HttpClient http("127.0.0.1", port);
//   auto r = http.request("POST", "/v1/auth/guest", "{}", {{"Content-Type", "application/json"}});
//   EXPECT_EQ(r.status, 201) << r.error;
//
//   WsClient ws;
//   ASSERT_TRUE(ws.connect("127.0.0.1", port, "/v1/chat", {{"Authorization", "Bearer t"}}))
//       << ws.error();
//   ws.send_text(R"({"type":"ping"})");
//   auto frame = ws.receive_text(std::chrono::seconds(5));   // nullopt: timeout or closed
//   ws.close();
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace consilium::test::net {

using Headers = std::vector<std::pair<std::string, std::string>>;
using Millis = std::chrono::milliseconds;

struct HttpResponse {
    int status = 0;                             // 0 when no response was read (see error)
    std::map<std::string, std::string> headers; // names in lower case; repeated ones joined by ", "
    std::string body;
    std::string error;                          // why there is no response, or empty

    bool ok() const { return status != 0; }
    // The header's value, or "" (name in any case).
    std::string header(std::string_view name) const;
};

// One keep-alive HTTP/1.1 connection, opened on first use and reopened when the server closed
// it. Not thread-safe: one client per thread.
class HttpClient {
public:
    HttpClient(std::string host, uint16_t port, Millis timeout = std::chrono::seconds(10));
    ~HttpClient();
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    // Sends one request (the target is sent verbatim, so "/../x" reaches the server as is) and
    // reads the response. Content-Length is set from body. A response that arrives while the
    // request is still being written (413 before the whole body was sent) is still returned.
    HttpResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                         const Headers &headers = {});
    HttpResponse get(std::string_view target, const Headers &headers = {}) {
        return request("GET", target, {}, headers);
    }

    void set_timeout(Millis timeout) { timeout_ = timeout; }
    // Closes the connection; the next request opens a new one.
    void close();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    Millis timeout_;
};

// Writes raw bytes to host:port and returns everything read until the server closes or the
// timeout passes: for malformed requests that no well-behaved client sends.
std::string raw_exchange(const std::string &host, uint16_t port, std::string_view bytes,
                         Millis timeout = std::chrono::seconds(5));

struct WsCloseInfo {
    int code = 0;        // close code the server sent; 1006 when the connection dropped without one
    std::string reason;
};

struct WsOptions {
    // SO_RCVBUF for the client socket (0 = system default). Small values make server-side write
    // queues fill quickly in backpressure tests.
    int receive_buffer_bytes = 0;
};

// One WebSocket connection. Reading happens only inside receive_text()/wait_closed()/close(): a
// client that stops calling them stops reading (backpressure tests), its socket buffers fill up
// and the server's queue grows. Not thread-safe: one client per thread.
class WsClient {
public:
    WsClient();
    explicit WsClient(WsOptions options);
    ~WsClient();  // closes gracefully (1 s at most), else drops the connection
    WsClient(const WsClient &) = delete;
    WsClient &operator=(const WsClient &) = delete;

    // Connects and performs the upgrade. On failure returns false; error() says why and
    // handshake_status() gives the HTTP status the server answered (0 if none).
    bool connect(const std::string &host, uint16_t port, const std::string &target = "/v1/chat",
                 const Headers &headers = {}, Millis timeout = std::chrono::seconds(10));
    const std::string &error() const { return error_; }
    int handshake_status() const { return handshake_status_; }
    bool is_open() const;

    bool send_text(std::string_view text, Millis timeout = std::chrono::seconds(10));
    bool send_binary(std::string_view bytes, Millis timeout = std::chrono::seconds(10));

    // The next message (text or binary) from the server; nullopt when the timeout passes (the
    // read stays pending for the next call) or the connection closed (closed() tells).
    std::optional<std::string> receive_text(Millis timeout = std::chrono::seconds(10));
    // Reads (and discards messages) until the server closes; true when it did in time.
    bool wait_closed(Millis timeout = std::chrono::seconds(10));
    bool closed() const { return close_info_.has_value(); }
    // What the server's close frame said, once closed.
    const std::optional<WsCloseInfo> &close_info() const { return close_info_; }

    // Closing handshake initiated by the client; returns true when it completed in time.
    bool close(int code = 1000, std::string_view reason = {}, Millis timeout = std::chrono::seconds(5));
    // Drops the TCP connection without a closing handshake.
    void drop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string error_;
    int handshake_status_ = 0;
    std::optional<WsCloseInfo> close_info_;
};

}  // namespace consilium::test::net
