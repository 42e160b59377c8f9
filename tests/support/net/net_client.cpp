// The test clients of net_client.hpp, on Boost.Beast. Each client owns an io_context that only
// its caller's thread runs, one operation at a time, until the operation completes or its
// deadline passes. Completion handlers share their state through shared_ptrs, so a handler left
// pending after a timeout never writes to a dead stack frame.
#include "net_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cctype>
#include <deque>
#include <limits>

namespace consilium::test::net {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Runs io until done() or the deadline; true when done() holds.
template <class Done>
bool run_until(asio::io_context &io, Done done, Clock::time_point deadline) {
    while (!done()) {
        if (Clock::now() >= deadline) return false;
        if (io.stopped()) io.restart();
        if (io.run_one_until(deadline) == 0 && io.stopped() && !done()) {
            // Out of work: nothing can make done() true any more.
            return false;
        }
    }
    return true;
}

// Resolves host (an IP literal or a name) and port to one endpoint.
bool resolve(asio::io_context &io, const std::string &host, uint16_t port, tcp::endpoint &out,
             std::string &error) {
    beast::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (!ec) {
        out = tcp::endpoint(addr, port);
        return true;
    }
    tcp::resolver resolver(io);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
        error = "cannot resolve " + host + ": " + ec.message();
        return false;
    }
    out = *results.begin();
    return true;
}

// Connects socket within the deadline (the socket may already be open with options set).
bool connect_socket(asio::io_context &io, tcp::socket &socket, const tcp::endpoint &ep,
                    Clock::time_point deadline, std::string &error) {
    struct State {
        bool done = false;
        beast::error_code ec;
    };
    auto st = std::make_shared<State>();
    socket.async_connect(ep, [st](beast::error_code ec) {
        st->done = true;
        st->ec = ec;
    });
    if (!run_until(io, [&] { return st->done; }, deadline)) {
        beast::error_code ignored;
        socket.close(ignored);
        error = "connect timed out";
        return false;
    }
    if (st->ec) {
        error = "connect failed: " + st->ec.message();
        return false;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    return true;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? std::string() : it->second;
}

// ---------------------------------------------------------------------------------------------
// HttpClient

struct HttpClient::Impl {
    asio::io_context io;
    tcp::socket socket{io};
    beast::flat_buffer buffer;
    std::string host;
    uint16_t port = 0;
    bool connected = false;

    void disconnect() {
        beast::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        socket = tcp::socket(io);
        buffer.clear();
        connected = false;
        // Let handlers of the old socket finish.
        io.restart();
        io.poll();
    }
};

HttpClient::HttpClient(std::string host, uint16_t port, Millis timeout)
    : impl_(std::make_unique<Impl>()), timeout_(timeout) {
    impl_->host = std::move(host);
    impl_->port = port;
}

HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
    if (impl_->connected) impl_->disconnect();
}

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 std::string_view body, const Headers &headers) {
    auto &im = *impl_;
    HttpResponse out;
    auto deadline = Clock::now() + timeout_;
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool reused = im.connected;
        if (!im.connected) {
            tcp::endpoint ep;
            if (!resolve(im.io, im.host, im.port, ep, out.error)) return out;
            if (!connect_socket(im.io, im.socket, ep, deadline, out.error)) {
                im.disconnect();
                return out;
            }
            im.connected = true;
        }

        auto req = std::make_shared<http::request<http::string_body>>();
        req->version(11);
        req->method_string(method);
        req->target(target);
        req->set(http::field::host, im.host + ":" + std::to_string(im.port));
        for (const auto &[name, value] : headers) req->insert(name, value);
        req->body() = std::string(body);
        if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
            req->content_length(body.size());

        struct State {
            http::response_parser<http::string_body> parser;
            bool wrote = false, read = false;
            beast::error_code write_ec, read_ec;
        };
        auto st = std::make_shared<State>();
        st->parser.body_limit(std::numeric_limits<std::uint64_t>::max());
        st->parser.header_limit(1u << 20);
        if (method == "HEAD") st->parser.skip(true);

        // Write and read at once: a server may answer (413) before it read the whole request.
        http::async_write(im.socket, *req, [st, req](beast::error_code ec, std::size_t) {
            st->wrote = true;
            st->write_ec = ec;
        });
        http::async_read(im.socket, im.buffer, st->parser, [st](beast::error_code ec, std::size_t) {
            st->read = true;
            st->read_ec = ec;
        });
        bool in_time = run_until(im.io, [&] { return st->read && (st->wrote || st->read_ec); },
                                 deadline);
        if (!in_time || !st->wrote) {
            // Timed out, or the response came before the request was fully written.
            im.disconnect();
        }
        if (!in_time) {
            out.error = "timed out after " + std::to_string(timeout_.count()) + " ms";
            return out;
        }
        if (st->read_ec) {
            bool nothing_read = !st->parser.got_some();
            im.disconnect();
            // A kept-alive connection the server had closed: try once on a fresh one.
            if (reused && nothing_read && attempt == 0) continue;
            out.error = "read failed: " + st->read_ec.message();
            if (st->write_ec) out.error += " (write: " + st->write_ec.message() + ")";
            return out;
        }
        auto &res = st->parser.get();
        out.status = static_cast<int>(res.result_int());
        for (const auto &field : res) {
            std::string name = lower(field.name_string());
            auto [it, inserted] = out.headers.emplace(name, std::string(field.value()));
            if (!inserted) it->second += ", " + std::string(field.value());
        }
        out.body = std::move(res.body());
        if (im.connected && !res.keep_alive()) im.disconnect();
        return out;
    }
    out.error = "no response";
    return out;
}

std::string raw_exchange(const std::string &host, uint16_t port, std::string_view bytes, Millis timeout) {
    asio::io_context io;
    tcp::socket socket(io);
    std::string error;
    tcp::endpoint ep;
    auto deadline = Clock::now() + timeout;
    if (!resolve(io, host, port, ep, error) || !connect_socket(io, socket, ep, deadline, error))
        return {};
    struct State {
        std::string data;
        std::string in;
        bool wrote = false, read = false;
    };
    auto st = std::make_shared<State>();
    st->data.assign(bytes);
    asio::async_write(socket, asio::buffer(st->data), [st](beast::error_code, std::size_t) {
        st->wrote = true;
    });
    asio::async_read(socket, asio::dynamic_buffer(st->in), [st](beast::error_code, std::size_t) {
        st->read = true;  // end of stream or error: either way we are done
    });
    run_until(io, [&] { return st->read; }, deadline);
    beast::error_code ignored;
    socket.close(ignored);
    io.restart();
    io.poll();
    return st->in;
}

// ---------------------------------------------------------------------------------------------
// WsClient

struct WsClient::Impl {
    explicit Impl(WsOptions o) : options(o) {}

    WsOptions options;
    asio::io_context io;
    websocket::stream<tcp::socket> ws{io};

    // The one read that may be pending; its result lands here.
    struct ReadState {
        beast::flat_buffer buffer;
        bool pending = false;
        bool failed = false;
        beast::error_code ec;
        std::deque<std::string> inbox;
    };
    std::shared_ptr<ReadState> reader = std::make_shared<ReadState>();

    void start_read() {
        if (reader->pending || reader->failed) return;
        reader->pending = true;
        auto r = reader;
        ws.async_read(r->buffer, [r](beast::error_code ec, std::size_t) {
            r->pending = false;
            if (ec) {
                r->failed = true;
                r->ec = ec;
                return;
            }
            r->inbox.push_back(beast::buffers_to_string(r->buffer.data()));
            r->buffer.consume(r->buffer.size());
        });
    }

    void drop_socket() {
        beast::error_code ignored;
        auto &s = beast::get_lowest_layer(ws);
        s.shutdown(tcp::socket::shutdown_both, ignored);
        s.close(ignored);
        io.restart();
        io.poll();
    }
};

WsClient::WsClient() : WsClient(WsOptions{}) {}
WsClient::WsClient(WsOptions options) : impl_(std::make_unique<Impl>(options)) {}

WsClient::~WsClient() {
    if (is_open()) close(1000, {}, std::chrono::seconds(1));
    impl_->drop_socket();
}

bool WsClient::is_open() const {
    return impl_->ws.is_open() && !impl_->reader->failed && !close_info_;
}

bool WsClient::connect(const std::string &host, uint16_t port, const std::string &target,
                       const Headers &headers, Millis timeout) {
    auto &im = *impl_;
    auto deadline = Clock::now() + timeout;
    error_.clear();
    handshake_status_ = 0;
    tcp::endpoint ep;
    if (!resolve(im.io, host, port, ep, error_)) return false;
    auto &socket = beast::get_lowest_layer(im.ws);
    beast::error_code ec;
    socket.open(ep.protocol(), ec);
    if (!ec && im.options.receive_buffer_bytes > 0)
        socket.set_option(asio::socket_base::receive_buffer_size(im.options.receive_buffer_bytes), ec);
    if (ec) {
        error_ = "socket: " + ec.message();
        return false;
    }
    if (!connect_socket(im.io, socket, ep, deadline, error_)) return false;

    im.ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type &req) {
        for (const auto &[name, value] : headers) req.set(name, value);
    }));
    im.ws.read_message_max(64u << 20);
    struct State {
        websocket::response_type res;
        bool done = false;
        beast::error_code ec;
    };
    auto st = std::make_shared<State>();
    im.ws.async_handshake(st->res, host + ":" + std::to_string(port), target,
                          [st](beast::error_code e) {
                              st->done = true;
                              st->ec = e;
                          });
    if (!run_until(im.io, [&] { return st->done; }, deadline)) {
        im.drop_socket();
        error_ = "handshake timed out";
        return false;
    }
    if (st->ec) {
        handshake_status_ = static_cast<int>(st->res.result_int());
        error_ = "handshake failed: " + st->ec.message();
        if (handshake_status_) error_ += " (HTTP " + std::to_string(handshake_status_) + ")";
        im.drop_socket();
        return false;
    }
    handshake_status_ = static_cast<int>(st->res.result_int());
    return true;
}

namespace {

// After a read failed: the close code and reason the server sent, or 1006.
WsCloseInfo close_info_of(websocket::stream<tcp::socket> &ws, const beast::error_code &ec) {
    WsCloseInfo info;
    if (ec == websocket::error::closed) {
        info.code = ws.reason().code;
        info.reason = std::string(ws.reason().reason.data(), ws.reason().reason.size());
    } else {
        info.code = 1006;
        info.reason = ec.message();
    }
    return info;
}

bool write_frame(websocket::stream<tcp::socket> &ws, asio::io_context &io, std::string_view data,
                 bool text, Millis timeout, std::string &error) {
    struct State {
        std::string data;
        bool done = false;
        beast::error_code ec;
    };
    auto st = std::make_shared<State>();
    st->data.assign(data);
    ws.text(text);
    ws.async_write(asio::buffer(st->data), [st](beast::error_code ec, std::size_t) {
        st->done = true;
        st->ec = ec;
    });
    if (!run_until(io, [&] { return st->done; }, Clock::now() + timeout)) {
        error = "send timed out";
        return false;
    }
    if (st->ec) {
        error = "send failed: " + st->ec.message();
        return false;
    }
    return true;
}

}  // namespace

bool WsClient::send_text(std::string_view text, Millis timeout) {
    if (!is_open()) return false;
    return write_frame(impl_->ws, impl_->io, text, true, timeout, error_);
}

bool WsClient::send_binary(std::string_view bytes, Millis timeout) {
    if (!is_open()) return false;
    return write_frame(impl_->ws, impl_->io, bytes, false, timeout, error_);
}

std::optional<std::string> WsClient::receive_text(Millis timeout) {
    auto &im = *impl_;
    auto r = im.reader;
    if (r->inbox.empty() && !r->failed && !close_info_) {
        im.start_read();
        run_until(im.io, [&] { return !r->inbox.empty() || r->failed; }, Clock::now() + timeout);
    }
    if (!r->inbox.empty()) {
        std::string msg = std::move(r->inbox.front());
        r->inbox.pop_front();
        return msg;
    }
    if (r->failed && !close_info_) close_info_ = close_info_of(im.ws, r->ec);
    return std::nullopt;
}

bool WsClient::wait_closed(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    while (!closed()) {
        auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        if (left.count() <= 0) break;
        receive_text(left);
    }
    return closed();
}

bool WsClient::close(int code, std::string_view reason, Millis timeout) {
    auto &im = *impl_;
    if (closed()) return true;
    if (!im.ws.is_open() || im.reader->failed) {
        if (im.reader->failed) close_info_ = close_info_of(im.ws, im.reader->ec);
        return closed();
    }
    struct State {
        bool done = false;
        beast::error_code ec;
    };
    auto st = std::make_shared<State>();
    im.ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                      [st](beast::error_code ec) {
                          st->done = true;
                          st->ec = ec;
                      });
    bool ok = run_until(im.io, [&] { return st->done; }, Clock::now() + timeout);
    if (!ok || st->ec) {
        if (!ok) error_ = "close timed out";
        else error_ = "close failed: " + st->ec.message();
        im.drop_socket();
    }
    WsCloseInfo info;
    info.code = im.ws.reason().code ? static_cast<int>(im.ws.reason().code) : 1006;
    info.reason = std::string(im.ws.reason().reason.data(), im.ws.reason().reason.size());
    close_info_ = info;
    return ok && !st->ec;
}

void WsClient::drop() {
    impl_->drop_socket();
    if (!close_info_) close_info_ = WsCloseInfo{1006, "dropped by the client"};
}

}  // namespace consilium::test::net
