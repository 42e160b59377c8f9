// What the Beast server's sessions share: the io_context, options, the front API, connection
// accounting, the registry of sessions that stop() reaches, and the lifeline that late HTTP
// responses check. Internal to the plugin: it includes Beast, so only server.cpp and
// websocket_session.cpp include it.
#pragma once

#include "options.hpp"
#include "static_files.hpp"

#include <consilium/abi.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace consilium::beast_transport {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using Request = http::request<http::string_body>;

inline std::string_view to_sv(cs_str s) noexcept {
    return s.data ? std::string_view(s.data, s.size) : std::string_view();
}
inline cs_str to_cs(std::string_view s) noexcept { return cs_str{s.data(), s.size()}; }

// "ip:port" of an endpoint ("[v6]:port" for IPv6).
std::string endpoint_string(const tcp::endpoint &ep);

// A session that stop() can reach.
class Tracked {
public:
    virtual ~Tracked() = default;
    // Any thread: posts to the session's strand a graceful end (WebSocket 1001 "going away").
    virtual void shutdown() = 0;
    // Called once from stop() after the io threads are joined, for sessions still alive: give
    // back what they hold in the engine (chat_close). No io thread runs at that point.
    virtual void abandon() = 0;
};

class Core;

// One connection counted against max_connections. Moves from the HTTP session to the WebSocket
// session on upgrade; an empty slot (refused connections) counts nothing.
// LIFETIME: borrows the Core, which outlives every session (see Core).
class ConnectionSlot {
public:
    ConnectionSlot() = default;
    explicit ConnectionSlot(Core &core);
    ConnectionSlot(ConnectionSlot &&other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
    ConnectionSlot &operator=(ConnectionSlot &&other) noexcept;
    ConnectionSlot(const ConnectionSlot &) = delete;
    ConnectionSlot &operator=(const ConnectionSlot &) = delete;
    ~ConnectionSlot() { release(); }

private:
    void release() noexcept;
    Core *core_ = nullptr;
};

// LIFETIME: owned by the Server and by every HTTP response the engine still owes (so a late
// respond() finds it alive); sessions borrow it by reference. The io_context is its last member:
// it is destroyed first, together with the pending handlers and the sessions they own, while the
// rest of the Core is still alive for their destructors.
class Core : public std::enable_shared_from_this<Core> {
public:
    Core(const cs_host_api *host_api, ServerOptions options);
    Core(const Core &) = delete;
    Core &operator=(const Core &) = delete;

    const cs_host_api *const host;
    const cs_front_api *const front;
    const ServerOptions opt;
    const std::optional<StaticFiles> statics;

    cs_host_ctx *front_ctx() const { return host->ctx; }
    // Logs through the host: codes, sizes and peers only, never bodies or frames.
    void log(cs_log_level level, const std::string &message) const;
    // The plugin instance is going away: from now on log() and metric_add() do nothing (a late
    // HTTP response may release a session after the host's table is gone).
    void detach_host();

    // Metrics (each may be null when the host refused it).
    cs_metric *const connections_gauge;
    cs_metric *const websockets_gauge;
    cs_metric *const refused_counter;
    void metric_add(cs_metric *m, double v) const;

    std::size_t connections() const;
    // Waits until every connection slot is released or the deadline passes; true when idle.
    bool wait_idle(std::chrono::steady_clock::time_point deadline);

    // Registers a session so stop() reaches it. Returns false when the server is already
    // stopping: the caller then ends itself.
    bool track(Tracked *key, std::weak_ptr<Tracked> session);
    void untrack(Tracked *key) noexcept;
    // Marks the server stopping and returns every live session.
    std::vector<std::shared_ptr<Tracked>> begin_stop();
    std::vector<std::shared_ptr<Tracked>> live_sessions() const;

    // Posts fn to ex unless stop() has ended the io threads' service (then fn is dropped and
    // false returned). For callbacks that come from the engine's threads at any time.
    template <class Fn>
    bool post_while_running(const net::any_io_executor &ex, Fn &&fn) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!running_) return false;
        net::post(ex, std::forward<Fn>(fn));
        return true;
    }
    void end_running();

private:
    friend class ConnectionSlot;
    void acquire_connection();
    void release_connection() noexcept;

    mutable std::mutex host_mu_;  // guards host_detached_ around every log and metric call
    bool host_detached_ = false;

    mutable std::mutex mu_;
    std::condition_variable idle_cv_;
    std::size_t connections_ = 0;
    std::unordered_map<Tracked *, std::weak_ptr<Tracked>> sessions_;
    bool stopping_ = false;
    bool running_ = true;

public:
    net::io_context ioc;  // keep last (see LIFETIME)
};

// websocket_session.cpp: takes over a connection whose request is a WebSocket upgrade to the
// chat endpoint. Runs on the connection's strand.
void start_websocket(Core &core, beast::tcp_stream &&stream, Request &&upgrade,
                     ConnectionSlot &&slot, std::string peer);

}  // namespace consilium::beast_transport
