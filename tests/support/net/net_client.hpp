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
//
// Every client speaks TLS on request (ClientTls / WsOptions::tls), without verifying the
// server's certificate (tests use self-signed ones, see write_self_signed_cert):
//
//   HttpClient https("127.0.0.1", port, ClientTls{true});
//   SseClient sse("127.0.0.1", port);
//   ASSERT_TRUE(sse.open("/v1/chat/sessions/<id>/events")) << sse.error();
//   auto event = sse.next(std::chrono::seconds(5));          // nullopt: timeout or ended
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

// TLS for a client: TLS 1.2 or newer, the server's certificate not verified.
struct ClientTls {
    ClientTls() = default;
    explicit ClientTls(bool on, std::string sni = {}) : enabled(on), server_name(std::move(sni)) {}
    bool enabled = false;
    std::string server_name;  // SNI; empty = none
};

// Writes a fresh self-signed certificate (CN and subjectAltName localhost and 127.0.0.1, valid
// for a day) and its P-256 private key as PEM files. False (and error says why) on failure.
bool write_self_signed_cert(const std::string &cert_file, const std::string &key_file,
                            std::string &error);

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
    HttpClient(std::string host, uint16_t port, ClientTls tls, Millis timeout = std::chrono::seconds(10));
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
    ClientTls tls;  // wss
};

// One WebSocket connection. Reading happens only inside receive_text()/wait_closed()/close(): a
// client that stops calling them stops reading (backpressure tests), its socket buffers fill up
// and the server's queue grows. Pings are answered only while reading too (Beast answers them
// inside a read), so a client that does not read does not answer pings (keep-alive tests).
// Not thread-safe: one client per thread.
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

// One Server-Sent Events stream (GET with Accept: text/event-stream), read as it arrives. Like
// WsClient, it reads only inside next(): a client that does not call it stops reading.
struct SseEvent {
    std::string id;     // the id: line, or "" when none
    std::string event;  // the event: line, or "" (a plain message)
    std::string data;   // the data: lines joined with "\n"
};

class SseClient {
public:
    SseClient(std::string host, uint16_t port, ClientTls tls = {});
    ~SseClient();
    SseClient(const SseClient &) = delete;
    SseClient &operator=(const SseClient &) = delete;

    // Connects, sends the request and reads the response head. True for a 200 event stream;
    // otherwise status() and body() hold what the server answered (the whole body is read).
    bool open(const std::string &target, const Headers &headers = {},
              Millis timeout = std::chrono::seconds(10));
    int status() const { return status_; }
    const std::string &body() const { return body_; }
    const std::string &error() const { return error_; }
    // The response header's value, or "" (name in any case).
    std::string header(std::string_view name) const;

    // The next event; nullopt when the timeout passes (the read stays pending) or the stream
    // ended (ended() tells). Comment lines are not events: comments() counts them.
    std::optional<SseEvent> next(Millis timeout = std::chrono::seconds(10));
    bool ended() const { return ended_; }
    // Whether the stream ended with the last chunk of a chunked body (not cut off).
    bool ended_cleanly() const { return ended_cleanly_; }
    int comments() const { return comments_; }
    // Drops the connection.
    void drop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int status_ = 0;
    std::string body_, error_;
    std::map<std::string, std::string> headers_;
    bool ended_ = false;
    bool ended_cleanly_ = false;
    int comments_ = 0;
};

}  // namespace consilium::test::net
