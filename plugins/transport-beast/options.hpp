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
    std::chrono::milliseconds ws_idle_timeout{300000};      // 0 = none; pings at half of it
    uint64_t write_queue_limit = 8388608; // bytes queued per WebSocket; above it close with 1008
    std::string static_dir;               // "" = no static files; else an absolute, canonical path
    std::size_t max_connections = 10000;  // above it new connections get 503
};

}  // namespace consilium::beast_transport
