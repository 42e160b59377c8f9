// The test clients of net_client.hpp, on Boost.Beast. Each client owns an io_context that only
// its caller's thread runs, one operation at a time, until the operation completes or its
// deadline passes. Completion handlers share their state through shared_ptrs, so a handler left
// pending after a timeout never writes to a dead stack frame. Every client reads and writes a
// FlexStream: a TCP socket with TLS on top when asked for.
#include "net_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <deque>
#include <limits>

namespace consilium::test::net {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace ssl = asio::ssl;
using Clock = std::chrono::steady_clock;

// A TCP socket, with TLS on top once enable_tls() was called: an AsyncStream for Beast's HTTP
// and WebSocket code either way. Not movable (the TLS layer refers to the socket).
class FlexStream {
public:
    using executor_type = tcp::socket::executor_type;

    explicit FlexStream(asio::io_context &io) : io_(io), socket_(io) {}
    FlexStream(const FlexStream &) = delete;
    FlexStream &operator=(const FlexStream &) = delete;

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    tcp::socket &next_layer() noexcept { return socket_; }
    ssl::stream<tcp::socket &> *tls() noexcept { return tls_.get(); }

    void enable_tls(ssl::context &ctx) { tls_ = std::make_unique<ssl::stream<tcp::socket &>>(socket_, ctx); }
    // A fresh, closed socket without TLS.
    void reset() {
        tls_.reset();
        socket_ = tcp::socket(io_);
    }

    template <class MutableBufferSequence, class ReadHandler>
    void async_read_some(const MutableBufferSequence &buffers, ReadHandler &&handler) {
        if (tls_) tls_->async_read_some(buffers, std::forward<ReadHandler>(handler));
        else socket_.async_read_some(buffers, std::forward<ReadHandler>(handler));
    }
    template <class ConstBufferSequence, class WriteHandler>
    void async_write_some(const ConstBufferSequence &buffers, WriteHandler &&handler) {
        if (tls_) tls_->async_write_some(buffers, std::forward<WriteHandler>(handler));
        else socket_.async_write_some(buffers, std::forward<WriteHandler>(handler));
    }

private:
    asio::io_context &io_;
    tcp::socket socket_;
    std::unique_ptr<ssl::stream<tcp::socket &>> tls_;
};

// The WebSocket closing handshake's teardown, found by argument-dependent lookup.
void teardown(beast::role_type role, FlexStream &s, beast::error_code &ec) {
    if (s.tls()) beast::teardown(role, *s.tls(), ec);  // Beast's overload for TLS streams
    else beast::websocket::teardown(role, s.next_layer(), ec);
}

template <class TeardownHandler>
void async_teardown(beast::role_type role, FlexStream &s, TeardownHandler &&handler) {
    if (s.tls()) beast::async_teardown(role, *s.tls(), std::forward<TeardownHandler>(handler));
    else beast::websocket::async_teardown(role, s.next_layer(), std::forward<TeardownHandler>(handler));
}

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

// A client TLS context: TLS 1.2 or newer, no certificate verification (test certificates are
// self-signed).
std::unique_ptr<ssl::context> client_tls_context() {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
}

// Puts TLS on a connected stream and performs the client handshake within the deadline.
bool tls_handshake(asio::io_context &io, FlexStream &stream, ssl::context &ctx, const ClientTls &tls,
                   Clock::time_point deadline, std::string &error) {
    stream.enable_tls(ctx);
    if (!tls.server_name.empty())
        SSL_set_tlsext_host_name(stream.tls()->native_handle(), tls.server_name.c_str());
    struct State {
        bool done = false;
        beast::error_code ec;
    };
    auto st = std::make_shared<State>();
    stream.tls()->async_handshake(ssl::stream_base::client, [st](beast::error_code ec) {
        st->done = true;
        st->ec = ec;
    });
    if (!run_until(io, [&] { return st->done; }, deadline)) {
        error = "TLS handshake timed out";
        return false;
    }
    if (st->ec) {
        error = "TLS handshake failed: " + st->ec.message();
        return false;
    }
    return true;
}

}  // namespace

bool write_self_signed_cert(const std::string &cert_file, const std::string &key_file, std::string &error) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    bool ok = false;
    do {
        if (!key || !cert) {
            error = "cannot make a key";
            break;
        }
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -60);
        X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
        X509_set_pubkey(cert, key);
        X509_NAME *name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char *>("localhost"), -1, -1, 0);
        X509_set_issuer_name(cert, name);
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
        X509_EXTENSION *san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name,
                                                  "DNS:localhost,IP:127.0.0.1");
        if (!san || !X509_add_ext(cert, san, -1)) {
            X509_EXTENSION_free(san);
            error = "cannot add subjectAltName";
            break;
        }
        X509_EXTENSION_free(san);
        if (!X509_sign(cert, key, EVP_sha256())) {
            error = "cannot sign";
            break;
        }
        FILE *f = std::fopen(key_file.c_str(), "wb");
        if (!f || !PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr)) {
            if (f) std::fclose(f);
            error = "cannot write " + key_file;
            break;
        }
        std::fclose(f);
        f = std::fopen(cert_file.c_str(), "wb");
        if (!f || !PEM_write_X509(f, cert)) {
            if (f) std::fclose(f);
            error = "cannot write " + cert_file;
            break;
        }
        std::fclose(f);
        ok = true;
    } while (false);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

std::string HttpResponse::header(std::string_view name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? std::string() : it->second;
}

// ---------------------------------------------------------------------------------------------
// HttpClient

struct HttpClient::Impl {
    asio::io_context io;
    FlexStream stream{io};
    beast::flat_buffer buffer;
    std::string host;
    uint16_t port = 0;
    bool connected = false;
    ClientTls tls;
    std::unique_ptr<ssl::context> tls_ctx;

    void disconnect() {
        beast::error_code ignored;
        stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
        stream.next_layer().close(ignored);
        stream.reset();
        buffer.clear();
        connected = false;
        // Let handlers of the old socket finish.
        io.restart();
        io.poll();
    }
};

HttpClient::HttpClient(std::string host, uint16_t port, Millis timeout)
    : HttpClient(std::move(host), port, ClientTls{}, timeout) {}

HttpClient::HttpClient(std::string host, uint16_t port, ClientTls tls, Millis timeout)
    : impl_(std::make_unique<Impl>()), timeout_(timeout) {
    impl_->host = std::move(host);
    impl_->port = port;
    impl_->tls = std::move(tls);
    if (impl_->tls.enabled) impl_->tls_ctx = client_tls_context();
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
            if (!connect_socket(im.io, im.stream.next_layer(), ep, deadline, out.error) ||
                (im.tls.enabled && !tls_handshake(im.io, im.stream, *im.tls_ctx, im.tls, deadline, out.error))) {
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
        http::async_write(im.stream, *req, [st, req](beast::error_code ec, std::size_t) {
            st->wrote = true;
            st->write_ec = ec;
        });
        http::async_read(im.stream, im.buffer, st->parser, [st](beast::error_code ec, std::size_t) {
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
    websocket::stream<FlexStream> ws{io};
    std::unique_ptr<ssl::context> tls_ctx;

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
    if (im.options.tls.enabled) {
        if (!im.tls_ctx) im.tls_ctx = client_tls_context();
        if (!tls_handshake(im.io, im.ws.next_layer(), *im.tls_ctx, im.options.tls, deadline, error_)) {
            im.drop_socket();
            return false;
        }
    }

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
WsCloseInfo close_info_of(websocket::stream<FlexStream> &ws, const beast::error_code &ec) {
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

bool write_frame(websocket::stream<FlexStream> &ws, asio::io_context &io, std::string_view data,
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

// ---------------------------------------------------------------------------------------------
// SseClient

namespace consilium::test::net {

struct SseClient::Impl {
    asio::io_context io;
    FlexStream stream{io};
    std::unique_ptr<ssl::context> tls_ctx;
    std::string host;
    uint16_t port = 0;
    ClientTls tls;

    // The one body read that may be pending; what it read lands in text.
    struct ReadState {
        beast::flat_buffer buffer;
        http::response_parser<http::buffer_body> parser;
        std::array<char, 4096> chunk{};
        bool pending = false;
        bool failed = false;  // ended, cut or broken: no more reads
        bool done = false;    // the parser saw the whole body
        beast::error_code ec;
        std::string text;     // unparsed event text
    };
    std::shared_ptr<ReadState> reader = std::make_shared<ReadState>();

    void start_read() {
        auto r = reader;
        if (r->pending || r->failed) return;
        if (r->parser.is_done()) {
            r->failed = r->done = true;
            return;
        }
        r->pending = true;
        r->parser.get().body().data = r->chunk.data();
        r->parser.get().body().size = r->chunk.size();
        http::async_read_some(stream, r->buffer, r->parser, [r](beast::error_code ec, std::size_t) {
            r->pending = false;
            if (ec == http::error::need_buffer) ec = {};
            r->text.append(r->chunk.data(), r->chunk.size() - r->parser.get().body().size);
            if (ec) {
                r->failed = true;
                r->ec = ec;
            } else if (r->parser.is_done()) {
                r->failed = r->done = true;
            }
        });
    }

    void drop_socket() {
        beast::error_code ignored;
        stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
        stream.next_layer().close(ignored);
        io.restart();
        io.poll();
    }
};

SseClient::SseClient(std::string host, uint16_t port, ClientTls tls) : impl_(std::make_unique<Impl>()) {
    impl_->host = std::move(host);
    impl_->port = port;
    impl_->tls = std::move(tls);
}

SseClient::~SseClient() { impl_->drop_socket(); }

std::string SseClient::header(std::string_view name) const {
    auto it = headers_.find(lower(name));
    return it == headers_.end() ? std::string() : it->second;
}

bool SseClient::open(const std::string &target, const Headers &headers, Millis timeout) {
    auto &im = *impl_;
    auto deadline = Clock::now() + timeout;
    error_.clear();
    tcp::endpoint ep;
    if (!resolve(im.io, im.host, im.port, ep, error_)) return false;
    if (!connect_socket(im.io, im.stream.next_layer(), ep, deadline, error_)) return false;
    if (im.tls.enabled) {
        im.tls_ctx = client_tls_context();
        if (!tls_handshake(im.io, im.stream, *im.tls_ctx, im.tls, deadline, error_)) return false;
    }
    auto req = std::make_shared<http::request<http::empty_body>>(http::verb::get, target, 11);
    req->set(http::field::host, im.host + ":" + std::to_string(im.port));
    req->set(http::field::accept, "text/event-stream");
    for (const auto &[name, value] : headers) req->insert(name, value);
    struct State {
        bool wrote = false, read = false;
        beast::error_code ec;
    };
    auto st = std::make_shared<State>();
    auto r = im.reader;
    r->parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::async_write(im.stream, *req, [st, req](beast::error_code ec, std::size_t) {
        st->wrote = true;
        if (ec) st->ec = ec;
    });
    http::async_read_header(im.stream, r->buffer, r->parser, [st](beast::error_code ec, std::size_t) {
        st->read = true;
        if (ec) st->ec = ec;
    });
    if (!run_until(im.io, [&] { return (st->wrote && st->read) || st->ec; }, deadline)) {
        error_ = "no response head in time";
        im.drop_socket();
        return false;
    }
    if (st->ec) {
        error_ = "request failed: " + st->ec.message();
        im.drop_socket();
        return false;
    }
    const auto &res = r->parser.get();
    status_ = static_cast<int>(res.result_int());
    for (const auto &field : res) headers_[lower(field.name_string())] = std::string(field.value());
    if (status_ == 200 && header("content-type").rfind("text/event-stream", 0) == 0) return true;
    // Not a stream: read the body whole.
    while (!r->failed) {
        im.start_read();
        if (!run_until(im.io, [&] { return !r->pending; }, deadline)) break;
    }
    body_ = std::move(r->text);
    r->text.clear();
    error_ = "HTTP " + std::to_string(status_);
    return false;
}

std::optional<SseEvent> SseClient::next(Millis timeout) {
    auto &im = *impl_;
    auto r = im.reader;
    auto deadline = Clock::now() + timeout;
    for (;;) {
        // One complete event (or comment block) is text up to a blank line.
        std::size_t end = r->text.find("\n\n");
        while (end != std::string::npos) {
            std::string block = r->text.substr(0, end);
            r->text.erase(0, end + 2);
            SseEvent ev;
            bool any = false;
            std::size_t pos = 0;
            while (pos <= block.size()) {
                std::size_t eol = block.find('\n', pos);
                std::string line = block.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
                pos = eol == std::string::npos ? block.size() + 1 : eol + 1;
                if (line.empty()) continue;
                if (line[0] == ':') {
                    ++comments_;
                    continue;
                }
                std::size_t colon = line.find(':');
                std::string field = line.substr(0, colon);
                std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
                if (!value.empty() && value[0] == ' ') value.erase(0, 1);
                if (field == "data") {
                    if (any && !ev.data.empty()) ev.data += "\n";
                    ev.data += value;
                    any = true;
                } else if (field == "id") {
                    ev.id = value;
                    any = true;
                } else if (field == "event") {
                    ev.event = value;
                    any = true;
                }
            }
            if (any) return ev;
            end = r->text.find("\n\n");
        }
        if (r->failed) {
            ended_ = true;
            ended_cleanly_ = r->done;
            return std::nullopt;
        }
        im.start_read();
        if (!run_until(im.io, [&] { return !r->pending; }, deadline)) return std::nullopt;
    }
}

void SseClient::drop() {
    impl_->drop_socket();
    ended_ = true;
}

}  // namespace consilium::test::net
