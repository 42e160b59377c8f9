// What the Beast server's sessions share: the io_context, options, the front API, connection
// accounting (in total and per client address), the TLS context, the fallback sessions, the
// registry of sessions that stop() reaches, and the lifeline that late HTTP responses check.
// Internal to the plugin: it includes Beast, so only server.cpp, websocket_session.cpp and
// fallback.cpp include it.
#pragma once

#include "options.hpp"
#include "static_files.hpp"

#include <consilium/abi.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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
namespace ssl = net::ssl;

// The two kinds of connection: plain TCP, and TLS over TCP (both with Beast's timeouts).
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

inline std::string_view to_sv(cs_str s) noexcept {
    return s.data ? std::string_view(s.data, s.size) : std::string_view();
}
inline cs_str to_cs(std::string_view s) noexcept { return cs_str{s.data(), s.size()}; }

// "ip:port" of an endpoint ("[v6]:port" for IPv6).
std::string endpoint_string(const tcp::endpoint &ep);
// The address connections are counted by: IPv4-mapped IPv6 addresses as their IPv4 form.
std::string address_key(const net::ip::address &address);

// The API's error shape: {"error": {"code": ..., "message": ...}}.
std::string error_json(std::string_view code, std::string_view message);
// s escaped for the inside of a JSON string (no quotes added).
std::string json_escape(std::string_view s);
// The token of "Authorization: Bearer <token>", or empty.
std::string_view bearer_token(std::string_view authorization);

// An HTTP answer produced off the connection's strand (by the engine or the fallback
// transports), copied out of whatever it was borrowed from.
struct FrontResponse {
    int status = 500;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    static FrontResponse json(int status, std::string body) {
        FrontResponse r;
        r.status = status;
        r.content_type = "application/json";
        r.body = std::move(body);
        return r;
    }
    static FrontResponse error(int status, std::string_view code, std::string_view message) {
        return json(status, error_json(code, message));
    }
};

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
class Fallback;

// One connection counted against max_connections and max_connections_per_ip (see Core::admit).
// Moves from the HTTP session to the WebSocket session on upgrade; an empty slot (refused
// connections) counts nothing. A fallback session holds one too while it lives.
// LIFETIME: borrows the Core, which outlives every session (see Core).
class ConnectionSlot {
public:
    ConnectionSlot() = default;
    ConnectionSlot(ConnectionSlot &&other) noexcept
        : core_(std::exchange(other.core_, nullptr)), address_(std::move(other.address_)) {}
    ConnectionSlot &operator=(ConnectionSlot &&other) noexcept;
    ConnectionSlot(const ConnectionSlot &) = delete;
    ConnectionSlot &operator=(const ConnectionSlot &) = delete;
    ~ConnectionSlot() { release(); }

    explicit operator bool() const { return core_ != nullptr; }
    void release() noexcept;

private:
    friend class Core;
    Core *core_ = nullptr;
    std::string address_;  // address_key() of the client
};

// Why a new connection (or fallback session) was not admitted.
enum class Admission { admitted, over_total, over_address };

// LIFETIME: owned by the Server and by every HTTP response the engine still owes (so a late
// respond() finds it alive); sessions borrow it by reference. The io_context is its last member:
// it is destroyed first, together with the pending handlers and the sessions they own, while the
// rest of the Core is still alive for their destructors.
class Core : public std::enable_shared_from_this<Core> {
public:
    Core(const cs_host_api *host_api, ServerOptions options);
    Core(const Core &) = delete;
    Core &operator=(const Core &) = delete;

    ~Core();

    const cs_host_api *const host;
    const cs_front_api *const front;
    const ServerOptions opt;
    const std::optional<StaticFiles> statics;
    // Set when the options name a certificate and key (loaded at construction; throws
    // sdk::Error naming the option when they do not load).
    const std::unique_ptr<ssl::context> tls;
    // Whether the front API is new enough to have chat_drained (ABI 1.1 fronts).
    const bool front_has_drained;

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
    cs_metric *const refused_per_ip_counter;
    cs_metric *const fallback_sessions_gauge;
    cs_metric *const ws_queued_bytes_gauge;
    void metric_add(cs_metric *m, double v) const;

    // Counts a new connection from address (an address_key()) into slot, unless that would
    // exceed max_connections or max_connections_per_ip; logs and counts refusals.
    Admission admit(const std::string &address, ConnectionSlot &slot);
    // The 503 a refused connection gets.
    static FrontResponse refusal(Admission why);

    std::size_t connections() const;
    std::size_t connections_from(const std::string &address) const;
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

    // The SSE / long-polling sessions (fallback.cpp).
    Fallback &fallback() { return *fallback_; }

private:
    friend class ConnectionSlot;
    void release_connection(const std::string &address) noexcept;

    mutable std::mutex host_mu_;  // guards host_detached_ around every log and metric call
    bool host_detached_ = false;

    mutable std::mutex mu_;
    std::condition_variable idle_cv_;
    std::size_t connections_ = 0;
    std::unordered_map<std::string, std::size_t> per_address_;
    std::unordered_map<Tracked *, std::weak_ptr<Tracked>> sessions_;
    bool stopping_ = false;
    bool running_ = true;

    // Emptied by Server::stop() once no io thread runs (its sessions own timers of ioc).
    std::unique_ptr<Fallback> fallback_;

public:
    net::io_context ioc;  // keep last (see LIFETIME)
};

// websocket_session.cpp: takes over a connection whose request is a WebSocket upgrade to the
// chat endpoint (or the voice relay). Runs on the connection's strand.
void start_websocket(Core &core, PlainStream &&stream, Request &&upgrade, ConnectionSlot &&slot,
                     std::string peer);
void start_websocket(Core &core, TlsStream &&stream, Request &&upgrade, ConnectionSlot &&slot,
                     std::string peer);

// tls.cpp: the server's TLS context from tls_cert_file and tls_key_file: TLS 1.2 and 1.3 only,
// forward-secret AEAD cipher suites. Throws sdk::Error naming the option that does not load.
std::unique_ptr<ssl::context> make_tls_context(const ServerOptions &opt);

}  // namespace consilium::beast_transport
