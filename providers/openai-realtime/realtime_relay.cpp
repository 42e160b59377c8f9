// providers/openai-realtime/realtime_relay.cpp: RelayClient on Boost.Beast (the only Beast code of
// the plugin). Written the way Beast's own websocket client examples are: a session object owned
// by shared_from_this, one strand per connection, do_x/on_x pairs, and one finish() through which
// every ending passes, so that the sink hears exactly one close whatever happens first (a close()
// from any thread, an upstream close, a failure, a timeout, the queue limit, the instance going).
//
// Threads: the I/O thread runs every handler. send() and close() come from any thread: they
// touch only the mutex-guarded outbox and then post to the session's strand. The sink is called
// on the I/O thread only.
#include "realtime_relay.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

namespace consilium::providers::realtime {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Strand = net::strand<net::io_context::executor_type>;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

constexpr size_t kMaxReason = 123;  // what fits a WebSocket close frame

// Upstream text for a reason or a log line: printable ASCII only, clipped.
std::string printable(std::string_view s, size_t max) {
    std::string out;
    for (char c : s) {
        if (out.size() >= max) break;
        auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '?';
    }
    return out;
}

std::string clip(std::string s) {
    if (s.size() > kMaxReason) s.resize(kMaxReason);
    return s;
}

// An upstream close code as the engine may pass it on: codes that describe the upstream link
// (or OpenAI's own 4xxx application codes) would mislead a browser, so they become 1011.
int forwarded_code(int code) {
    switch (code) {
    case 1000:
    case 1005: return 1000;  // 1005: closed without a code
    case 1001: return 1001;
    case 1012: return 1012;
    case 1013: return 1013;
    default: return 1011;
    }
}

int64_t ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

class SessionBase;

struct RelayClient::Core {
    Core(sdk::Host h, std::string n) : host(h), name(std::move(n)) {
        ssl_ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        ssl_ctx.set_verify_mode(ssl::verify_peer);
        beast::error_code ec;
        ssl_ctx.set_default_verify_paths(ec);
        if (ec) host.warn(name + ": the system CA store could not be loaded; wss:// connections will fail");
    }

    void run() {
        for (;;) {
            try {
                ioc.run();
                return;
            } catch (const std::exception &e) {
                host.error(name + ": relay I/O thread caught an exception: " + printable(e.what(), 200));
            } catch (...) {
                host.error(name + ": relay I/O thread caught an unknown exception");
            }
        }
    }

    sdk::Host host;
    std::string name;
    mutable std::mutex mu;
    std::map<uint64_t, std::weak_ptr<SessionBase>> sessions;  // every session alive, by id
    uint64_t next_id = 0;
    std::atomic<size_t> open{0};
    // Declared before the io_context: the TLS streams it still holds die with it, before this.
    ssl::context ssl_ctx{ssl::context::tls_client};
    net::io_context ioc{1};
    net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
    std::thread thread;
};

// What every relay has, whatever its stream type: the thread-safe front (send/close) and the
// outbox. LIFETIME: shared by its pending handlers (and briefly by a caller of send/close);
// destroyed with the io_context at the latest.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
public:
    enum class How { polite, hard };  // polite: a close handshake upstream; hard: drop the socket

    SessionBase(RelayClient::Core &core, uint64_t id, std::string first, sdk::RelaySink sink, const RelayOptions &options)
        : core_(core), id_(id), strand_(net::make_strand(core.ioc)), sink_(std::move(sink)), options_(options),
          first_(std::move(first)) {}
    virtual ~SessionBase() {
        std::lock_guard<std::mutex> lock(core_.mu);
        core_.sessions.erase(id_);
    }
    SessionBase(const SessionBase &) = delete;
    SessionBase &operator=(const SessionBase &) = delete;

    // On the strand.
    virtual void start() = 0;
    virtual void finish(int code, std::string reason, How how) = 0;
    virtual void pump() = 0;

    // Any thread.
    void send(std::string_view frame) {
        bool overflow = false;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (closing_) return;
            if (queued_ + frame.size() > options_.send_queue_limit) {
                closing_ = true;
                overflow = true;
            } else {
                outbox_.emplace_back(frame);
                queued_ += frame.size();
            }
        }
        auto self = shared_from_this();
        if (overflow) net::post(strand_, [self] { self->finish(1008, "send queue full", How::polite); });
        else net::post(strand_, [self] { self->pump(); });
    }

    void close() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            closing_ = true;
        }
        auto self = shared_from_this();
        net::post(strand_, [self] { self->finish(1000, "closed", How::polite); });
    }

    const Strand &strand() const { return strand_; }

protected:
    // Stops accepting frames and forgets the queued ones.
    void stop_sending() {
        std::lock_guard<std::mutex> lock(mu_);
        closing_ = true;
        outbox_.clear();
        queued_ = 0;
    }

    // The next client frame to write (first_ before all), or false.
    bool next_frame(std::string &out, bool &counted) {
        if (!first_sent_) {
            first_sent_ = true;
            out = std::move(first_);
            counted = false;
            return true;
        }
        std::lock_guard<std::mutex> lock(mu_);
        if (outbox_.empty()) return false;
        out = std::move(outbox_.front());
        outbox_.pop_front();
        counted = true;
        return true;
    }

    void written(size_t bytes) {
        std::lock_guard<std::mutex> lock(mu_);
        queued_ -= std::min(queued_, bytes);
    }

    RelayClient::Core &core_;
    const uint64_t id_;
    Strand strand_;
    sdk::RelaySink sink_;
    const RelayOptions options_;

private:
    std::mutex mu_;
    bool closing_ = false;
    std::deque<std::string> outbox_;
    size_t queued_ = 0;
    std::string first_;
    bool first_sent_ = false;
};

// One relay over ws:// (Tls = false) or wss:// (Tls = true).
template <bool Tls>
class Session final : public SessionBase {
    using Next = std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

public:
    Session(RelayClient::Core &core, uint64_t id, WsTarget target, Headers headers, std::string first,
            sdk::RelaySink sink, const RelayOptions &options)
        : SessionBase(core, id, std::move(first), std::move(sink), options), target_(std::move(target)),
          headers_(std::move(headers)), resolver_(strand_), timer_(strand_), ws_(make_ws(strand_, core.ssl_ctx)) {}

    void start() override {
        started_ = std::chrono::steady_clock::now();
        phase_ = Phase::connecting;
        timer_.expires_after(std::chrono::milliseconds(options_.connect_timeout_ms));
        timer_.async_wait(beast::bind_front_handler(&Session::on_timeout, self()));
        resolver_.async_resolve(target_.host, target_.port, beast::bind_front_handler(&Session::on_resolve, self()));
    }

    void finish(int code, std::string reason, How how) override {
        if (phase_ == Phase::closing || phase_ == Phase::done) return;
        Phase was = phase_;
        stop_sending();
        reason = clip(std::move(reason));
        log_end(code, reason);
        sink_.close(code, reason);
        core_.open.fetch_sub(1);
        timer_.cancel();
        if (was != Phase::open || how == How::hard) {
            phase_ = Phase::done;
            resolver_.cancel();
            drop();
            return;
        }
        phase_ = Phase::closing;
        close_code_ = code == 1011 ? websocket::close_code::protocol_error : websocket::close_code::normal;
        if (!writing_) do_close();
    }

    void pump() override {
        if (phase_ != Phase::open || writing_) return;
        if (!next_frame(current_, current_counted_)) return;
        writing_ = true;
        ws_.async_write(net::buffer(current_), beast::bind_front_handler(&Session::on_write, self()));
    }

private:
    enum class Phase { idle, connecting, open, closing, done };

    static websocket::stream<Next> make_ws(const Strand &strand, ssl::context &ctx) {
        if constexpr (Tls) {
            return websocket::stream<Next>(strand, ctx);
        } else {
            (void)ctx;
            return websocket::stream<Next>(strand);
        }
    }

    std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }

    void drop() {
        beast::error_code ec;
        auto &socket = beast::get_lowest_layer(ws_).socket();
        socket.shutdown(tcp::socket::shutdown_both, ec);
        socket.close(ec);
    }

    void on_timeout(beast::error_code ec) {
        if (ec || phase_ != Phase::connecting) return;
        finish(1013, "upstream connect timeout (" + std::to_string(options_.connect_timeout_ms) + " ms)", How::hard);
    }

    void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
        if (phase_ != Phase::connecting) return;
        if (ec) return finish(1013, "upstream host not found", How::hard);
        beast::get_lowest_layer(ws_).async_connect(results, beast::bind_front_handler(&Session::on_connect, self()));
    }

    void on_connect(beast::error_code ec, const tcp::endpoint &) {
        if (phase_ != Phase::connecting) return;
        if (ec) return finish(1013, "upstream unreachable", How::hard);
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
        if constexpr (Tls) {
            // SNI, and the certificate must name the host (the CA store is the system's).
            if (!SSL_set_tlsext_host_name(ws_.next_layer().native_handle(), target_.host.c_str()))
                return finish(1011, "TLS setup failed", How::hard);
            ws_.next_layer().set_verify_callback(ssl::host_name_verification(target_.host));
            ws_.next_layer().async_handshake(ssl::stream_base::client,
                                             beast::bind_front_handler(&Session::on_tls, self()));
        } else {
            do_upgrade();
        }
    }

    void on_tls(beast::error_code ec) {
        if (phase_ != Phase::connecting) return;
        if (ec) return finish(1011, "TLS handshake with upstream failed", How::hard);
        do_upgrade();
    }

    void do_upgrade() {
        websocket::stream_base::timeout t{};
        t.handshake_timeout = std::chrono::milliseconds(options_.connect_timeout_ms);  // the close handshake too
        if (options_.idle_timeout_ms > 0) {
            t.idle_timeout = std::chrono::milliseconds(options_.idle_timeout_ms);
            t.keep_alive_pings = true;
        } else {
            t.idle_timeout = websocket::stream_base::none();
            t.keep_alive_pings = false;
        }
        ws_.set_option(t);
        ws_.set_option(websocket::stream_base::decorator([h = headers_](websocket::request_type &req) {
            req.set(http::field::user_agent, "consilium-openai-realtime/1.0");
            for (const auto &[name, value] : h) req.set(name, value);
        }));
        ws_.read_message_max(options_.max_frame_bytes);
        ws_.auto_fragment(false);
        ws_.async_handshake(res_, target_.host_header, target_.target,
                            beast::bind_front_handler(&Session::on_upgrade, self()));
    }

    void on_upgrade(beast::error_code ec) {
        if (phase_ != Phase::connecting) return;
        request_id_ = printable(res_["x-request-id"], 80);
        if (ec == websocket::error::upgrade_declined) {
            status_ = res_.result_int();
            std::string s = std::to_string(status_);
            if (status_ == 401 || status_ == 403)
                return finish(1011, "upstream refused the operator's credentials (HTTP " + s + ")", How::hard);
            if (status_ == 429) return finish(1013, "upstream rate limit (HTTP 429)", How::hard);
            if (status_ >= 500) return finish(1013, "upstream unavailable (HTTP " + s + ")", How::hard);
            return finish(1011, "upstream refused the upgrade (HTTP " + s + ")", How::hard);
        }
        if (ec == beast::error::timeout)
            return finish(1013, "upstream connect timeout (" + std::to_string(options_.connect_timeout_ms) + " ms)",
                          How::hard);
        if (ec) return finish(1011, "upstream upgrade failed", How::hard);
        status_ = 101;
        res_ = {};
        timer_.cancel();
        phase_ = Phase::open;
        core_.host.log(CS_LOG_DEBUG, core_.name + ": relay " + std::to_string(id_) + " open upgrade_ms=" +
                                         std::to_string(ms_since(started_)) +
                                         (request_id_.empty() ? "" : " request_id=" + request_id_));
        do_read();
        pump();
    }

    void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&Session::on_read, self())); }

    void on_read(beast::error_code ec, size_t bytes) {
        if (phase_ != Phase::open) return;
        if (ec == websocket::error::closed) {
            const websocket::close_reason &r = ws_.reason();
            int code = static_cast<int>(r.code);
            std::string why = "upstream closed (" + std::to_string(code);
            std::string text = printable(std::string_view(r.reason.data(), r.reason.size()), 80);
            if (!text.empty()) why += " " + text;
            return finish(forwarded_code(code), why + ")", How::hard);
        }
        if (ec == websocket::error::message_too_big)
            return finish(1011, "upstream frame over " + std::to_string(options_.max_frame_bytes) + " bytes", How::hard);
        if (ec == beast::error::timeout) return finish(1011, "upstream stopped answering (idle timeout)", How::hard);
        if (ec) return finish(1011, "upstream connection lost", How::hard);
        if (!ws_.got_text()) return finish(1011, "binary frame from upstream", How::polite);
        const char *data = static_cast<const char *>(buffer_.data().data());
        std::string_view text(data, buffer_.size());
        if (!sdk::json::accept(text.begin(), text.end()))
            return finish(1011, "malformed frame from upstream", How::polite);
        ++frames_in_;
        bytes_in_ += static_cast<int64_t>(bytes);
        sink_.frame(text);
        buffer_.consume(buffer_.size());
        do_read();
    }

    void on_write(beast::error_code ec, size_t bytes) {
        writing_ = false;
        if (current_counted_) written(current_.size());
        current_.clear();
        if (phase_ == Phase::closing) return do_close();
        if (phase_ != Phase::open) return;
        if (ec) return finish(1011, "upstream connection lost", How::hard);
        ++frames_out_;
        bytes_out_ += static_cast<int64_t>(bytes);
        pump();
    }

    void do_close() {
        ws_.async_close(websocket::close_reason(close_code_), beast::bind_front_handler(&Session::on_closed, self()));
    }

    void on_closed(beast::error_code) {
        phase_ = Phase::done;
        drop();
    }

    void log_end(int code, const std::string &reason) {
        std::string line = core_.name + ": relay " + std::to_string(id_) + " closed code=" + std::to_string(code) +
                           " reason=\"" + reason + "\" status=" + std::to_string(status_) +
                           " frames_in=" + std::to_string(frames_in_) + " frames_out=" + std::to_string(frames_out_) +
                           " bytes_in=" + std::to_string(bytes_in_) + " bytes_out=" + std::to_string(bytes_out_) +
                           " ms=" + std::to_string(ms_since(started_));
        if (!request_id_.empty()) line += " request_id=" + request_id_;
        bool clean = code == 1000 || code == 1001;
        core_.host.log(clean ? CS_LOG_INFO : CS_LOG_WARN, line);
    }

    WsTarget target_;
    Headers headers_;
    tcp::resolver resolver_;
    net::steady_timer timer_;
    websocket::stream<Next> ws_;
    websocket::response_type res_;
    beast::flat_buffer buffer_;
    Phase phase_ = Phase::idle;
    bool writing_ = false;
    std::string current_;
    bool current_counted_ = false;
    websocket::close_code close_code_ = websocket::close_code::normal;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    unsigned status_ = 0;
    std::string request_id_;
    int64_t frames_in_ = 0, frames_out_ = 0, bytes_in_ = 0, bytes_out_ = 0;
};

namespace {

// The handle the host holds. LIFETIME: may outlive the session and the client; then it does
// nothing.
class RelayHandle final : public sdk::Relay {
public:
    explicit RelayHandle(std::weak_ptr<SessionBase> s) : session_(std::move(s)) {}
    ~RelayHandle() override { close(); }
    void send(std::string_view frame) override {
        if (auto s = session_.lock()) s->send(frame);
    }
    void close() override {
        if (auto s = session_.lock()) s->close();
    }

private:
    std::weak_ptr<SessionBase> session_;
};

}  // namespace

RelayClient::RelayClient(sdk::Host host, std::string name) : core_(std::make_shared<Core>(host, std::move(name))) {
    core_->thread = std::thread([c = core_.get()] { c->run(); });
}

RelayClient::~RelayClient() {
    // Every live relay ends with 1001 on its strand; wait for that (bounded: a sink callback
    // could be stuck), then stop the loop. Handlers left pending die with the io_context.
    std::vector<std::shared_ptr<SessionBase>> live;
    {
        std::lock_guard<std::mutex> lock(core_->mu);
        for (auto &[id, w] : core_->sessions)
            if (auto s = w.lock()) live.push_back(std::move(s));
    }
    struct Latch {
        std::mutex mu;
        std::condition_variable cv;
        size_t left = 0;
    };
    auto latch = std::make_shared<Latch>();
    latch->left = live.size();
    for (auto &s : live)
        net::post(s->strand(), [s, latch] {
            s->finish(1001, "going away", SessionBase::How::hard);
            std::lock_guard<std::mutex> lock(latch->mu);
            --latch->left;
            latch->cv.notify_all();
        });
    {
        std::unique_lock<std::mutex> lock(latch->mu);
        if (!latch->cv.wait_for(lock, std::chrono::seconds(5), [&] { return latch->left == 0; }))
            core_->host.error(core_->name + ": relays did not close within 5 s at shutdown");
    }
    core_->work.reset();
    core_->ioc.stop();
    if (core_->thread.joinable()) core_->thread.join();
    live.clear();
}

std::unique_ptr<sdk::Relay> RelayClient::open(const WsTarget &target, Headers headers, std::string first_frame,
                                              sdk::RelaySink sink, const RelayOptions &options) {
    uint64_t id = 0;
    {
        std::lock_guard<std::mutex> lock(core_->mu);
        id = ++core_->next_id;
    }
    std::shared_ptr<SessionBase> s;
    if (target.tls)
        s = std::make_shared<Session<true>>(*core_, id, target, std::move(headers), std::move(first_frame),
                                            std::move(sink), options);
    else
        s = std::make_shared<Session<false>>(*core_, id, target, std::move(headers), std::move(first_frame),
                                             std::move(sink), options);
    {
        std::lock_guard<std::mutex> lock(core_->mu);
        core_->sessions[id] = s;
    }
    core_->open.fetch_add(1);
    net::post(s->strand(), [s] { s->start(); });
    return std::make_unique<RelayHandle>(s);
}

size_t RelayClient::open_relays() const { return core_->open.load(); }

}  // namespace consilium::providers::realtime
