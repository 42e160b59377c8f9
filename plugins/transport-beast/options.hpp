// The Beast transport's options, validated (plugin.cpp) and handed to the server. Beast-free so
// that the SDK glue and the static file code compile without Boost.Beast.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace consilium::beast_transport {

struct ServerOptions {
    std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal
    uint16_t port = 8080;            // 0 = any free port
    unsigned threads = 1;
    uint64_t body_limit = 1048576;        // larger request bodies get 413
    uint32_t header_limit = 16384;        // larger request heads get 431
    std::chrono::milliseconds read_timeout{30000};  // one HTTP request (and one response write)
    uint64_t ws_max_message = 1048576;    // larger client messages close with 1009
    std::chrono::milliseconds ws_handshake_timeout{10000};  // opening and closing handshakes
    std::chrono::milliseconds ws_ping_interval{20000};  // 0 = never; ping after this much silence
    std::chrono::milliseconds ws_pong_timeout{20000};   // after a ping: close when nothing came
    uint64_t write_queue_limit = 8388608; // bytes queued per chat; above it close with 1008
    uint64_t queue_high_water = 262144;   // a queue that grew past it ...
    uint64_t queue_low_water = 65536;     // ... and drained below it: chat_drained()
    std::string static_dir;               // "" = no static files; else an absolute, canonical path
    std::size_t max_connections = 10000;  // above it new connections get 503 overloaded
    std::size_t max_connections_per_ip = 256;  // above it: 503 too_many_connections

    // TLS: both files set = the listener speaks TLS (PEM: certificate chain, private key).
    std::string tls_cert_file;
    std::string tls_key_file;
    bool tls_also_plain = false;  // with TLS on, also serve plain HTTP on the same port
    bool tls() const { return !tls_cert_file.empty(); }

    // The fallback transports (SSE and long-polling, fallback.cpp).
    std::chrono::milliseconds fallback_session_idle{60000};  // kept this long with no client
    uint64_t fallback_buffer_bytes = 1048576;  // delivered frames kept for replay
    std::chrono::milliseconds fallback_ping_interval{15000};  // ": ping" comments on SSE
    std::chrono::milliseconds fallback_max_wait{25000};       // longest long-poll wait

    // Where the options came from ("transports.http"), for messages that name one.
    std::string config_path;
};

}  // namespace consilium::beast_transport
