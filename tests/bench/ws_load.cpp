// The Beast side of the channel benchmarks (see ws_load.hpp). Client and baseline server both use
// websocket::stream<tcp::socket>, so Beast's WebSocket templates are instantiated once, here.
#include "ws_load.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>

namespace consilium::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Ws = websocket::stream<tcp::socket>;

// ---- client -----------------------------------------------------------------------------------

namespace {

struct Conn {
    explicit Conn(asio::io_context &io, std::string token) : ws(io), bearer(std::move(token)) {}
    Ws ws;
    beast::flat_buffer buf;
    std::deque<std::string> out;
    std::string bearer;
    bool started = false;
    bool open = false;
    bool dead = false;
    bool writing = false;
};

}  // namespace

struct WsLoad::Impl {
    Impl(std::string h, uint16_t p, std::string t)
        : host(std::move(h)), port(p), target(std::move(t)),
          endpoint(asio::ip::make_address(host), port), guard(asio::make_work_guard(io)), lag_timer(io) {
        arm_lag_timer();
    }

    ~Impl() {
        // Let every pending handler finish (aborted) while the connections still exist; nothing
        // calls back into the caller any more.
        handlers = {};
        closing_all = true;
        guard.reset();
        lag_timer.cancel();
        for (auto &t : timers) t->cancel();
        for (auto &c : conns) {
            beast::error_code ec;
            c->ws.next_layer().close(ec);
        }
        io.restart();
        io.run_for(std::chrono::seconds(2));
        conns.clear();
    }

    std::string host;
    uint16_t port;
    std::string target;
    asio::io_context io{1};
    tcp::endpoint endpoint;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    std::vector<std::unique_ptr<Conn>> conns;
    Handlers handlers;
    size_t next_start = 0;
    size_t in_flight = 0;
    size_t parallel = 1;
    size_t opened = 0;
    size_t failed = 0;
    bool closing_all = false;
    std::string first_error;

    std::vector<std::shared_ptr<asio::steady_timer>> timers;  // at()
    asio::steady_timer lag_timer;
    Clock::time_point run_started{};
    std::vector<double> lag_us;

    void arm_lag_timer() {
        lag_timer.expires_after(std::chrono::milliseconds(10));
        lag_timer.async_wait([this](beast::error_code ec) {
            if (ec) return;
            const auto due = lag_timer.expiry();
            if (due >= run_started)
                lag_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - due).count());
            arm_lag_timer();
        });
    }

    void pump() {
        while (in_flight < parallel && next_start < conns.size()) {
            size_t i = next_start++;
            if (conns[i]->started) continue;
            start(i);
        }
    }

    void start(size_t i) {
        Conn &c = *conns[i];
        c.started = true;
        ++in_flight;
        c.ws.next_layer().async_connect(endpoint, [this, i](beast::error_code ec) {
            if (ec) return connect_failed(i, "connect: " + ec.message());
            Conn &cc = *conns[i];
            beast::error_code ignored;
            cc.ws.next_layer().set_option(tcp::no_delay(true), ignored);
            websocket::stream_base::timeout t{};
            t.handshake_timeout = std::chrono::seconds(30);
            t.idle_timeout = websocket::stream_base::none();
            t.keep_alive_pings = false;
            cc.ws.set_option(t);
            cc.ws.text(true);
            if (!cc.bearer.empty()) {
                cc.ws.set_option(websocket::stream_base::decorator([token = cc.bearer](websocket::request_type &req) {
                    req.set(http::field::authorization, "Bearer " + token);
                }));
            }
            cc.ws.async_handshake(host + ":" + std::to_string(port), target, [this, i](beast::error_code ec2) {
                if (ec2) return connect_failed(i, "handshake: " + ec2.message());
                Conn &c3 = *conns[i];
                c3.open = true;
                ++opened;
                --in_flight;
                pump();
                read(i);
                if (!c3.out.empty() && !c3.writing) write(i);
            });
        });
    }

    void connect_failed(size_t i, const std::string &why) {
        --in_flight;
        mark_dead(i, why);
        pump();
    }

    void mark_dead(size_t i, const std::string &why) {
        Conn &c = *conns[i];
        if (c.dead) return;
        c.dead = true;
        if (closing_all) return;
        ++failed;
        if (first_error.empty()) first_error = why;
        beast::error_code ignored;
        c.ws.next_layer().close(ignored);
        if (handlers.on_closed) handlers.on_closed(i, why);
    }

    void read(size_t i) {
        Conn &c = *conns[i];
        c.ws.async_read(c.buf, [this, i](beast::error_code ec, std::size_t) {
            Conn &cc = *conns[i];
            if (ec) {
                std::string why = ec.message();
                if (ec == websocket::error::closed)
                    why = "closed by the server: " + std::to_string(cc.ws.reason().code) + " " +
                          std::string(cc.ws.reason().reason.c_str());
                return mark_dead(i, why);
            }
            const auto at = Clock::now();
            auto data = cc.buf.cdata();
            if (handlers.on_message)
                handlers.on_message(i, std::string_view(static_cast<const char *>(data.data()), data.size()), at);
            cc.buf.consume(cc.buf.size());
            read(i);
        });
    }

    void write(size_t i) {
        Conn &c = *conns[i];
        c.writing = true;
        c.ws.async_write(asio::buffer(c.out.front()), [this, i](beast::error_code ec, std::size_t) {
            Conn &cc = *conns[i];
            cc.writing = false;
            cc.out.pop_front();
            if (ec) return mark_dead(i, "write: " + ec.message());
            if (!cc.out.empty() && !cc.dead) write(i);
        });
    }
};

WsLoad::WsLoad(std::string host, uint16_t port, std::string target)
    : impl_(std::make_unique<Impl>(std::move(host), port, std::move(target))) {}

WsLoad::~WsLoad() = default;

void WsLoad::set_handlers(Handlers h) { impl_->handlers = std::move(h); }

size_t WsLoad::add(std::string bearer) {
    impl_->conns.push_back(std::make_unique<Conn>(impl_->io, std::move(bearer)));
    return impl_->conns.size() - 1;
}

size_t WsLoad::size() const { return impl_->conns.size(); }

void WsLoad::connect_all(size_t parallel) {
    impl_->parallel = std::max<size_t>(parallel, 1);
    asio::post(impl_->io, [im = impl_.get()] { im->pump(); });
}

size_t WsLoad::opened() const { return impl_->opened; }
size_t WsLoad::failed() const { return impl_->failed; }
const std::string &WsLoad::first_error() const { return impl_->first_error; }

void WsLoad::send(size_t conn, std::string text) {
    Conn &c = *impl_->conns[conn];
    if (c.dead) return;
    c.out.push_back(std::move(text));
    if (c.open && !c.writing) impl_->write(conn);
}

void WsLoad::at(Clock::time_point when, std::function<void()> fn) {
    auto &timers = impl_->timers;
    timers.erase(std::remove_if(timers.begin(), timers.end(),
                                [](const auto &t) { return t.use_count() == 1; }),  // fired: only we hold it
                 timers.end());
    auto timer = std::make_shared<asio::steady_timer>(impl_->io, when);
    timers.push_back(timer);
    timer->async_wait([timer, fn = std::move(fn)](beast::error_code ec) {
        if (!ec) fn();
    });
}

bool WsLoad::run_until(const std::function<bool()> &pred, Clock::time_point deadline) {
    impl_->run_started = Clock::now();
    if (impl_->io.stopped()) impl_->io.restart();
    while (!pred()) {
        auto now = Clock::now();
        if (now >= deadline) return pred();
        impl_->io.run_one_until(std::min(deadline, now + std::chrono::milliseconds(50)));
    }
    return true;
}

void WsLoad::run_for(std::chrono::milliseconds d) {
    const auto until = Clock::now() + d;
    run_until([until] { return Clock::now() >= until; }, until);
}

std::vector<double> WsLoad::take_loop_lag_us() {
    std::vector<double> out;
    out.swap(impl_->lag_us);
    return out;
}

void WsLoad::close_all(bool graceful, std::chrono::milliseconds timeout) {
    Impl &im = *impl_;
    im.closing_all = true;
    // Timers of at() that have not fired never will, and no handler runs after this call.
    for (auto &t : im.timers) t->cancel();
    im.timers.clear();
    im.handlers = {};
    size_t pending = 0;
    auto done = std::make_shared<size_t>(0);
    for (auto &cp : im.conns) {
        Conn &c = *cp;
        if (!c.open || c.dead) continue;
        if (graceful && !c.writing) {
            ++pending;
            // The pending read completes as well (websocket::error::closed).
            c.ws.async_close(websocket::close_code::normal, [done](beast::error_code) { ++*done; });
        } else {
            beast::error_code ignored;
            c.ws.next_layer().close(ignored);
        }
    }
    run_until([&] { return *done >= pending; }, Clock::now() + timeout);
    for (auto &cp : im.conns) {
        beast::error_code ignored;
        cp->ws.next_layer().close(ignored);
    }
    run_for(std::chrono::milliseconds(50));
}

// ---- baseline server --------------------------------------------------------------------------

namespace {

std::string make_frame(const std::string &type, size_t bytes) {
    std::string f = "{\"type\":\"" + type + "\",\"pad\":\"";
    const size_t closing = 2;  // "}
    if (bytes > f.size() + closing) f.append(bytes - f.size() - closing, 'x');
    f += "\"}";
    return f;
}

class BaseSession : public std::enable_shared_from_this<BaseSession> {
public:
    BaseSession(tcp::socket socket, const std::vector<ScriptFrame> &script) : ws_(std::move(socket)), script_(script) {}

    void run() {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.text(true);
        ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
            if (ec) return;
            self->enqueue(std::make_shared<const std::string>("{\"type\":\"ready\"}"));
            self->read();
        });
    }

private:
    void read() {
        ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return;
            auto data = self->buf_.cdata();
            std::string_view text(static_cast<const char *>(data.data()), data.size());
            if (text.find("\"ping\"") != std::string_view::npos) {
                self->enqueue(std::make_shared<const std::string>("{\"type\":\"pong\"}"));
            } else {
                for (const auto &f : self->script_) self->enqueue(std::make_shared<const std::string>(make_frame(f.type, f.bytes)));
            }
            self->buf_.consume(self->buf_.size());
            self->read();
        });
    }

    void enqueue(std::shared_ptr<const std::string> frame) {
        queue_.push_back(std::move(frame));
        if (queue_.size() == 1) write();
    }

    void write() {
        ws_.async_write(asio::buffer(*queue_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return;
            self->queue_.pop_front();
            if (!self->queue_.empty()) self->write();
        });
    }

    Ws ws_;
    const std::vector<ScriptFrame> &script_;
    beast::flat_buffer buf_;
    std::deque<std::shared_ptr<const std::string>> queue_;
};

void accept_loop(tcp::acceptor &acceptor, const std::vector<ScriptFrame> &script) {
    acceptor.async_accept([&acceptor, &script](beast::error_code ec, tcp::socket socket) {
        if (!ec) std::make_shared<BaseSession>(std::move(socket), script)->run();
        accept_loop(acceptor, script);
    });
}

[[noreturn]] void serve_baseline(int port_fd, const std::vector<ScriptFrame> &script) {
    try {
        asio::io_context io{1};
        tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        uint16_t port = acceptor.local_endpoint().port();
        if (::write(port_fd, &port, sizeof port) != static_cast<ssize_t>(sizeof port)) ::_exit(2);
        ::close(port_fd);
        accept_loop(acceptor, script);
        io.run();
    } catch (...) {
    }
    ::_exit(1);
}

}  // namespace

BaselineServer::BaselineServer(std::vector<ScriptFrame> script) : script_(std::move(script)) {}

BaselineServer::~BaselineServer() { stop(); }

bool BaselineServer::start() {
    int fds[2];
    if (::pipe(fds) != 0) return false;
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
        ::close(fds[0]);
        serve_baseline(fds[1], script_);
    }
    ::close(fds[1]);
    pid_ = pid;
    uint16_t port = 0;
    ssize_t n = ::read(fds[0], &port, sizeof port);
    ::close(fds[0]);
    if (n != static_cast<ssize_t>(sizeof port)) {
        stop();
        return false;
    }
    port_ = port;
    return true;
}

void BaselineServer::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

}  // namespace consilium::bench
