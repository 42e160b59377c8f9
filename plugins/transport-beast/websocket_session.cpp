// One WebSocket chat connection (GET /v1/chat), written after Beast's CppCon2018 chat server: a
// session owned by shared_from_this on the connection's strand, one read always pending, a write
// queue with one async_write at a time, and every frame from the engine posted to the strand.
//
// The engine talks back through a cs_chat_sink whose ctx is this session. The ABI promises:
// ctx stays valid until chat_close() returns, and after that the engine never calls the sink.
// How we keep it:
//  - chat_close() is called exactly once, from finish() (the read loop ended: client close,
//    error, timeout, our own close) or, for sessions whose handlers will never run again, from
//    abandon() in Server::stop() after the io threads are joined. Both run while a shared_ptr to
//    the session is held, so the session outlives the call.
//  - send()/close() from the engine's threads touch only atomics and post to the strand with a
//    shared_ptr taken from weak_from_this(): they never run session code off the strand.
//
// Backpressure: send() returns the bytes queued; once the queue went over queue_high_water, the
// write that brings it under queue_low_water calls chat_drained (once per crossing); over
// write_queue_limit the connection closes with 1008.
//
// Keep-alive: a connection from which nothing (no frame, no pong) came for ws_ping_interval_ms
// is pinged; if still nothing came ws_pong_timeout_ms later it is closed with 1008 "ping
// timeout" (and cut shortly after, as such a peer rarely answers the closing handshake). Beast's
// own idle timeout cannot say this when the two differ (it pings at half its timeout), so the
// session keeps the timer itself and sees every incoming byte: messages are read piecewise
// (async_read_some) and control frames through the control callback.
//
// One template for plain and TLS streams (wss), instantiated at the bottom of this file.
#include "core.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <atomic>
#include <deque>
#include <vector>

namespace consilium::beast_transport {

namespace websocket = beast::websocket;

namespace {

// RFC 6455 section 7.4: codes an endpoint may send.
bool sendable_close_code(int code) {
    return code == 1000 || code == 1001 || code == 1002 || code == 1003 ||
           (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

// A close frame's reason is at most 123 bytes; cut at a UTF-8 character boundary.
std::string_view short_reason(std::string_view reason) {
    constexpr std::size_t max = 123;
    if (reason.size() <= max) return reason;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
    return reason.substr(0, n);
}

// After a ping timeout: how long the closing handshake may take before the connection is cut.
constexpr std::chrono::milliseconds kPingTimeoutGrace{1000};

}  // namespace

template <class Stream>
class WsSession : public Tracked, public std::enable_shared_from_this<WsSession<Stream>> {
public:
    WsSession(Core &core, Stream &&stream, ConnectionSlot &&slot, std::string peer)
        : core_(core), ws_(std::move(stream)), executor_(ws_.get_executor()),
          slot_(std::move(slot)), peer_(std::move(peer)), close_timer_(executor_),
          ping_timer_(executor_) {}

    ~WsSession() override {
        core_.untrack(this);
        // Never reached with an open chat (see the file comment); kept as a last guard.
        end_chat();
    }

    // On the strand: accept the upgrade, then open the chat.
    void run(Request &&upgrade) {
        if (!core_.track(this, this->weak_from_this())) shutdown_pending_ = true;
        upgrade_ = std::move(upgrade);
        // The websocket stream has its own timers; the tcp_stream's must be off.
        beast::get_lowest_layer(ws_).expires_never();
        // Beast times the opening and closing handshakes; keep-alive is ours (see above).
        websocket::stream_base::timeout timeouts{};
        timeouts.handshake_timeout = core_.opt.ws_handshake_timeout;
        timeouts.idle_timeout = websocket::stream_base::none();
        timeouts.keep_alive_pings = false;
        ws_.set_option(timeouts);
        ws_.read_message_max(core_.opt.ws_max_message);
        ws_.text(true);
        // Called inside our reads, on the strand; the stream (and so the callback) is ours.
        ws_.control_callback([this](websocket::frame_type, beast::string_view) { note_activity(); });
        ws_.async_accept(upgrade_,
                         beast::bind_front_handler(&WsSession::on_accept, this->shared_from_this()));
    }

    void shutdown() override {
        closing_.store(true);
        post_close(websocket::close_reason(websocket::close_code::going_away, "going away"), false);
    }

    void abandon() override {
        closing_.store(true);
        end_chat();
    }

private:
    // ---- The sink: any thread, never concurrently for one chat (ABI). ----

    static int64_t sink_send(void *ctx, cs_str frame) noexcept {
        try {
            return static_cast<WsSession *>(ctx)->enqueue(to_sv(frame));
        } catch (...) {
            return -1;
        }
    }

    static void sink_close(void *ctx, int code, cs_str reason) noexcept {
        try {
            auto *self = static_cast<WsSession *>(ctx);
            if (self->closing_.exchange(true)) return;  // already closing
            if (!sendable_close_code(code)) {
                self->core_.log(CS_LOG_WARN, "engine asked to close with code " +
                                                 std::to_string(code) + "; using 1000");
                code = 1000;
            }
            self->post_close(websocket::close_reason(static_cast<websocket::close_code>(code),
                                                     short_reason(to_sv(reason))),
                             false);
        } catch (...) {
        }
    }

    int64_t enqueue(std::string_view frame) {
        if (closing_.load()) return -1;
        auto self = this->weak_from_this().lock();
        if (!self) return -1;
        auto buffer = std::make_shared<const std::string>(frame);
        const auto size = static_cast<int64_t>(frame.size());
        const int64_t queued = queue_add(size) + size;
        if (static_cast<uint64_t>(queued) > core_.opt.write_queue_limit) {
            queue_sub(size);
            if (!closing_.exchange(true)) {
                core_.log(CS_LOG_WARN, "websocket send queue over " +
                                           std::to_string(core_.opt.write_queue_limit) +
                                           " bytes; closing 1008 for " + peer_);
                post_close(websocket::close_reason(websocket::close_code::policy_error,
                                                   "send queue full"),
                           true);
            }
            return -1;
        }
        if (static_cast<uint64_t>(queued) > core_.opt.queue_high_water) above_high_.store(true);
        try {
            net::post(executor_, [self = std::move(self), buffer = std::move(buffer)]() mutable {
                self->on_send(std::move(buffer));
            });
        } catch (...) {
            queue_sub(size);
            throw;
        }
        return queued;
    }

    // Any thread: close on the strand. drop_queue: discard frames not yet being written.
    void post_close(websocket::close_reason reason, bool drop_queue) {
        net::post(executor_, [self = this->shared_from_this(), reason, drop_queue] {
            self->start_close(reason, drop_queue);
        });
    }

    // ---- Strand. ----

    void on_accept(beast::error_code ec) {
        if (ec) return fail(ec, "handshake");
        accepted_ = true;
        if (shutdown_pending_) {
            closing_.store(true);
            return start_close(websocket::close_reason(websocket::close_code::going_away, "going away"),
                               true);
        }
        open_chat();
        arm_keepalive();
        do_read();
    }

    void open_chat() {
        std::string_view origin, authorization;
        if (auto it = upgrade_.find(http::field::origin); it != upgrade_.end()) origin = it->value();
        if (auto it = upgrade_.find(http::field::authorization); it != upgrade_.end())
            authorization = it->value();
        cs_chat_open_params params{};
        params.struct_size = sizeof(cs_chat_open_params);
        params.bearer_token = to_cs(bearer_token(authorization));
        params.peer = to_cs(peer_);
        params.origin = to_cs(origin);
        params.transport = to_cs("websocket");
        std::string target(upgrade_.target());
        std::vector<std::string> owned;
        std::vector<cs_header> headers;
        for (const auto &f : upgrade_.base()) {
            owned.emplace_back(f.name_string());
            owned.emplace_back(f.value());
        }
        for (size_t i = 0; i + 1 < owned.size(); i += 2) headers.push_back({to_cs(owned[i]), to_cs(owned[i + 1])});
        params.target = to_cs(target);
        params.headers = headers.data();
        params.header_count = headers.size();
        sink_.struct_size = sizeof(cs_chat_sink);
        sink_.ctx = this;
        sink_.send = &WsSession::sink_send;
        sink_.close = &WsSession::sink_close;
        chat_ = core_.front->chat_open(core_.front_ctx(), &params, &sink_);
        upgrade_ = {};
        if (!chat_) {
            core_.log(CS_LOG_ERROR, "chat_open returned no chat; closing 1011");
            closing_.store(true);
            return start_close(websocket::close_reason(websocket::close_code::internal_error,
                                                       "internal error"),
                               true);
        }
        core_.metric_add(core_.websockets_gauge, 1);
    }

    // Piecewise, so that every incoming piece counts as activity (see the file comment); the
    // message size limit holds across the pieces of one message.
    void do_read() {
        reading_ = true;
        ws_.async_read_some(buffer_, 0,
                            beast::bind_front_handler(&WsSession::on_read, this->shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t) {
        reading_ = false;
        if (ec) return finish(ec);
        note_activity();
        if (!ws_.is_message_done()) return do_read();
        // Text and binary alike go to the engine (it answers a binary frame with an error frame);
        // once a close is under way the engine wants no more.
        if (chat_ && !closing_.load()) {
            auto data = buffer_.cdata();
            core_.front->chat_frame(chat_, cs_str{static_cast<const char *>(data.data()), data.size()});
        }
        buffer_.consume(buffer_.size());
        do_read();
    }

    void on_send(std::shared_ptr<const std::string> frame) {
        if (finished_ || close_started_ || drop_queue_) {
            queue_sub(static_cast<int64_t>(frame->size()));
            return;
        }
        queue_.push_back(std::move(frame));
        if (!writing_) do_write();
    }

    void do_write() {
        writing_ = true;
        ws_.async_write(net::buffer(*queue_.front()),
                        beast::bind_front_handler(&WsSession::on_write, this->shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t) {
        writing_ = false;
        const auto size = static_cast<int64_t>(queue_.front()->size());
        const int64_t left = queue_sub(size) - size;
        queue_.pop_front();
        // Backpressure eased: once per crossing of the high-water mark.
        if (left < static_cast<int64_t>(core_.opt.queue_low_water) && above_high_.load() && chat_ &&
            !chat_closed_ && !finished_ && core_.front_has_drained && above_high_.exchange(false))
            core_.front->chat_drained(chat_, left);
        if (ec) {
            fail(ec, "write");
            return close_socket();  // the pending read fails and finish() follows
        }
        if (finished_) return drop_queue();
        if (!queue_.empty()) return do_write();
        if (close_requested_ && !close_started_) do_close();
    }

    // grace: how long the closing handshake may take before the connection is cut.
    void start_close(websocket::close_reason reason, bool drop,
                     std::chrono::milliseconds grace = std::chrono::milliseconds(0)) {
        if (finished_ || close_requested_) return;
        if (!accepted_) {
            shutdown_pending_ = true;  // on_accept closes right after the handshake
            return;
        }
        close_requested_ = true;
        close_reason_ = reason;
        if (drop) {
            drop_queue_ = true;
            drop_queue();
        }
        // If the peer does not take part in the closing handshake (or does not read what is still
        // queued), cut the connection.
        ping_timer_.cancel();
        close_timer_.expires_after(grace.count() > 0 ? std::min(grace, core_.opt.ws_handshake_timeout)
                                                     : core_.opt.ws_handshake_timeout);
        close_timer_.async_wait(
            beast::bind_front_handler(&WsSession::on_close_timeout, this->shared_from_this()));
        if (!writing_) do_close();
    }

    void do_close() {
        close_started_ = true;
        ws_.async_close(close_reason_,
                        beast::bind_front_handler(&WsSession::on_close, this->shared_from_this()));
    }

    void on_close(beast::error_code ec) {
        if (ec) fail(ec, "close");
        // With a read pending, it completes too (websocket::error::closed) and calls finish().
        if (!reading_) finish(ec);
    }

    void on_close_timeout(beast::error_code ec) {
        if (ec || finished_) return;
        core_.log(CS_LOG_DEBUG, "websocket closing handshake timed out for " + peer_);
        close_socket();
    }

    // The read loop ended: the connection is over, whatever the reason.
    void finish(beast::error_code ec) {
        if (finished_) return;
        finished_ = true;
        closing_.store(true);
        if (ec == websocket::error::message_too_big)
            core_.log(CS_LOG_INFO, "websocket message over " + std::to_string(core_.opt.ws_max_message) +
                                       " bytes from " + peer_ + "; closed 1009");
        else
            fail(ec, "read");
        close_timer_.cancel();
        ping_timer_.cancel();
        close_socket();
        drop_queue();
        end_chat();
    }

    // ---- Keep-alive (strand). ----

    void note_activity() { last_rx_ = std::chrono::steady_clock::now(); }

    void arm_keepalive() {
        if (core_.opt.ws_ping_interval.count() <= 0) return;
        note_activity();
        wait_keepalive(last_rx_ + core_.opt.ws_ping_interval);
    }

    void wait_keepalive(std::chrono::steady_clock::time_point at) {
        ping_timer_.expires_at(at);
        ping_timer_.async_wait(beast::bind_front_handler(&WsSession::on_keepalive, this->shared_from_this()));
    }

    void on_keepalive(beast::error_code ec) {
        if (ec || finished_ || close_requested_) return;
        const auto now = std::chrono::steady_clock::now();
        if (ping_outstanding_) {
            if (last_rx_ >= ping_at_) {
                ping_outstanding_ = false;  // a pong (or anything) came: silent again from there
            } else if (now >= ping_at_ + core_.opt.ws_pong_timeout) {
                core_.log(CS_LOG_INFO, "websocket from " + peer_ + " did not answer a ping within " +
                                           std::to_string(core_.opt.ws_pong_timeout.count()) +
                                           " ms; closing 1008");
                closing_.store(true);
                return start_close(websocket::close_reason(websocket::close_code::policy_error, "ping timeout"),
                                   true, kPingTimeoutGrace);
            } else {
                return wait_keepalive(ping_at_ + core_.opt.ws_pong_timeout);
            }
        }
        if (now - last_rx_ < core_.opt.ws_ping_interval) return wait_keepalive(last_rx_ + core_.opt.ws_ping_interval);
        // Silent for the interval: ping (unless the last ping is still stuck behind a write).
        if (!pinging_) {
            pinging_ = true;
            ws_.async_ping({}, [self = this->shared_from_this()](beast::error_code) { self->pinging_ = false; });
        }
        ping_outstanding_ = true;
        ping_at_ = now;
        wait_keepalive(now + core_.opt.ws_pong_timeout);
    }

    // Drops queued frames except the one being written.
    void drop_queue() {
        std::size_t keep = writing_ ? 1 : 0;
        while (queue_.size() > keep) {
            queue_sub(static_cast<int64_t>(queue_.back()->size()));
            queue_.pop_back();
        }
    }

    void end_chat() {
        if (!chat_ || chat_closed_) return;
        chat_closed_ = true;
        core_.front->chat_close(chat_);
        core_.metric_add(core_.websockets_gauge, -1);
    }

    void close_socket() {
        beast::get_lowest_layer(ws_).close();
    }

    void fail(beast::error_code ec, const char *what) {
        if (ec == net::error::operation_aborted || ec == websocket::error::closed) return;
        core_.log(CS_LOG_DEBUG, std::string("websocket ") + what + " from " + peer_ + ": " + ec.message());
    }

    Core &core_;
    websocket::stream<Stream> ws_;
    const net::any_io_executor executor_;  // the connection's strand; never changes
    ConnectionSlot slot_;
    const std::string peer_;
    Request upgrade_;  // until the chat is open
    beast::flat_buffer buffer_;
    net::steady_timer close_timer_;
    net::steady_timer ping_timer_;
    cs_chat_sink sink_{};

    // Shared with the engine's threads.
    std::atomic<bool> closing_{false};        // send() now returns -1
    std::atomic<int64_t> queued_bytes_{0};    // frames accepted by send() and not yet written
    // Change queued_bytes_ (and the gauge of all connections' queues); return the old value.
    int64_t queue_add(int64_t n) {
        core_.metric_add(core_.ws_queued_bytes_gauge, static_cast<double>(n));
        return queued_bytes_.fetch_add(n);
    }
    int64_t queue_sub(int64_t n) {
        core_.metric_add(core_.ws_queued_bytes_gauge, -static_cast<double>(n));
        return queued_bytes_.fetch_sub(n);
    }
    std::atomic<bool> above_high_{false};     // queued_bytes_ went over queue_high_water

    // Keep-alive (strand).
    std::chrono::steady_clock::time_point last_rx_{};  // when something last came in
    std::chrono::steady_clock::time_point ping_at_{};  // when the outstanding ping went out
    bool ping_outstanding_ = false;
    bool pinging_ = false;  // an async_ping is under way

    // Strand state (and abandon(), once no io thread runs).
    cs_chat *chat_ = nullptr;
    bool chat_closed_ = false;
    bool accepted_ = false;
    bool shutdown_pending_ = false;
    bool close_requested_ = false;
    bool close_started_ = false;
    bool drop_queue_ = false;
    bool writing_ = false;
    bool reading_ = false;
    bool finished_ = false;
    websocket::close_reason close_reason_;
    std::deque<std::shared_ptr<const std::string>> queue_;
};

void start_websocket(Core &core, PlainStream &&stream, Request &&upgrade, ConnectionSlot &&slot,
                     std::string peer) {
    std::make_shared<WsSession<PlainStream>>(core, std::move(stream), std::move(slot), std::move(peer))
        ->run(std::move(upgrade));
}

void start_websocket(Core &core, TlsStream &&stream, Request &&upgrade, ConnectionSlot &&slot,
                     std::string peer) {
    std::make_shared<WsSession<TlsStream>>(core, std::move(stream), std::move(slot), std::move(peer))
        ->run(std::move(upgrade));
}

}  // namespace consilium::beast_transport
