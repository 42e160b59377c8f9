// Load generation for the channel benchmarks (bench_channel.cpp): many WebSocket client
// connections driven by one thread, and a bare Boost.Beast WebSocket server used as the
// throughput baseline. Beast-free header; all the Beast code is in ws_load.cpp, the one
// translation unit of the benchmarks that instantiates Beast templates.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace consilium::bench {

using Clock = std::chrono::steady_clock;

// Many WebSocket connections on one io_context that only the caller's thread runs (inside
// run_until / run_for): no thread per connection. Every message is timestamped as soon as Beast
// has read it, before the handler runs.
class WsLoad {
public:
    struct Handlers {
        // A message (text or binary) arrived on connection `conn`.
        std::function<void(size_t conn, std::string_view text, Clock::time_point at)> on_message;
        // The connection failed or closed (handshake error, read error, close frame).
        std::function<void(size_t conn, const std::string &why)> on_closed;
    };

    // Every connection goes to ws://host:port<target>.
    WsLoad(std::string host, uint16_t port, std::string target = "/v1/chat");
    ~WsLoad();
    WsLoad(const WsLoad &) = delete;
    WsLoad &operator=(const WsLoad &) = delete;

    void set_handlers(Handlers h);
    // Adds a connection (not yet opened); bearer non-empty: sent as `Authorization: Bearer` on the
    // upgrade. Returns its index.
    size_t add(std::string bearer);
    size_t size() const;
    // Starts opening every added connection not started yet, at most `parallel` TCP connects +
    // upgrades at once. They progress while the loop runs.
    void connect_all(size_t parallel);
    size_t opened() const;   // upgrades that succeeded
    size_t failed() const;   // connections that failed or closed
    const std::string &first_error() const;

    // Queues a text frame; frames of one connection are written in order.
    void send(size_t conn, std::string text);
    // Calls fn on the loop at (or soon after) `when`, unless close_all() comes first.
    void at(Clock::time_point when, std::function<void()> fn);

    // Runs the loop until pred() holds (checked after every handler) or the deadline passes;
    // returns pred().
    bool run_until(const std::function<bool()> &pred, Clock::time_point deadline);
    void run_for(std::chrono::milliseconds d);

    // While the loop runs, a timer every 10 ms records how late it fired: how far behind the
    // client itself is (the noise floor of every latency it measures). Returns and clears the
    // samples, in microseconds.
    std::vector<double> take_loop_lag_us();

    // Closes every open connection: with the closing handshake (waits up to `timeout`), or by
    // dropping the sockets. Timers of at() not yet fired are cancelled, and the handlers are
    // never called again.
    void close_all(bool graceful, std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// One frame of a scripted answer for the baseline server: its JSON "type" and its exact size.
struct ScriptFrame {
    std::string type;
    size_t bytes;
};

// A bare Boost.Beast WebSocket server (one I/O thread, the CppCon2018 chat-server pattern: one
// read pending, a write queue with one async_write at a time) in a child process of its own, as
// the host is. On accept it sends {"type":"ready"}. A frame containing "ping" is answered with
// {"type":"pong"}; any other frame with the scripted frames, of the same types and sizes the
// engine sent for one turn. Nothing else: no parsing, no storage, no engine.
class BaselineServer {
public:
    explicit BaselineServer(std::vector<ScriptFrame> script);
    ~BaselineServer();
    BaselineServer(const BaselineServer &) = delete;
    BaselineServer &operator=(const BaselineServer &) = delete;

    // Forks the server (call while the process has no other threads) and waits for its port.
    bool start();
    void stop();
    uint16_t port() const { return port_; }
    int pid() const { return pid_; }

private:
    std::vector<ScriptFrame> script_;
    int pid_ = -1;
    uint16_t port_ = 0;
};

}  // namespace consilium::bench
