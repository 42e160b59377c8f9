// The HTTP side of the Beast server, written the way Beast's examples write servers
// (advanced_server_flex): a Listener that accepts onto one strand per connection, an HttpSession
// owned by shared_from_this with do_x/on_x pairs and one fail(), limits and timeouts set before
// every read. Requests go to the engine through cs_front_api::http(); the engine's answer comes
// back from any thread and is posted to the session's strand. Static files are served here, and
// a WebSocket upgrade to /v1/chat (the chat channel) or /v1/voice/relay (a voice relay) is handed
// to websocket_session.cpp; the engine tells them apart by the target it gets in chat_open.
#include "core.hpp"
#include "server.hpp"

#include <consilium/sdk/core.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/file.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <array>
#include <future>

namespace consilium::beast_transport {

namespace {

// How long a connection we close after an error keeps draining what the client still sends, so
// that the client reads our response instead of a reset (nginx's lingering close).
constexpr std::chrono::milliseconds kLinger{2000};

std::string json_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                static constexpr char hex[] = "0123456789abcdef";
                out += "\\u00";
                out.push_back(hex[(c >> 4) & 0xf]);
                out.push_back(hex[c & 0xf]);
            } else {
                out.push_back(c);
            }
        }
    }
    return out;
}

// An error the transport itself answers, in the API's error shape.
http::response<http::string_body> error_response(http::status status, std::string_view code,
                                                 std::string_view message, unsigned version,
                                                 bool keep_alive) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = "{\"error\":{\"code\":\"" + json_escape(code) + "\",\"message\":\"" +
                 json_escape(message) + "\"}}";
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

// Header names and values the engine gives must not break the response apart.
bool header_is_safe(std::string_view name, std::string_view value) {
    if (name.empty()) return false;
    for (char c : name)
        if (c <= ' ' || c == ':' || c == 127) return false;
    for (char c : value)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

// Headers the transport owns: the engine cannot set them.
bool header_is_ours(http::field f) {
    return f == http::field::content_length || f == http::field::transfer_encoding ||
           f == http::field::connection || f == http::field::keep_alive ||
           f == http::field::upgrade || f == http::field::content_type;
}

bool is_http_parse_error(const beast::error_code &ec) {
    return ec.category() == beast::error_code(http::error::bad_target).category();
}

}  // namespace

std::string endpoint_string(const tcp::endpoint &ep) {
    auto addr = ep.address();
    std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
    return host + ":" + std::to_string(ep.port());
}

// ---------------------------------------------------------------------------------------------
// Core

Core::Core(const cs_host_api *host_api, ServerOptions options)
    : host(host_api), front(host_api->front), opt(std::move(options)),
      statics(opt.static_dir.empty() ? std::nullopt
                                     : std::optional<StaticFiles>(StaticFiles(opt.static_dir))),
      connections_gauge(host->metric(host->ctx, CS_METRIC_GAUGE, to_cs("transport_connections"),
                                     to_cs("Open client connections (HTTP and WebSocket)"))),
      websockets_gauge(host->metric(host->ctx, CS_METRIC_GAUGE, to_cs("transport_websockets"),
                                    to_cs("Open WebSocket chat connections"))),
      refused_counter(host->metric(host->ctx, CS_METRIC_COUNTER, to_cs("transport_refused_total"),
                                   to_cs("Connections refused with 503 over max_connections"))),
      ioc(static_cast<int>(opt.threads)) {}

void Core::log(cs_log_level level, const std::string &message) const {
    std::lock_guard<std::mutex> lock(host_mu_);
    if (!host_detached_) host->log(host->ctx, level, to_cs(message));
}

void Core::metric_add(cs_metric *m, double v) const {
    if (!m) return;
    std::lock_guard<std::mutex> lock(host_mu_);
    if (!host_detached_) host->metric_add(m, v);
}

void Core::detach_host() {
    std::lock_guard<std::mutex> lock(host_mu_);
    host_detached_ = true;
}

std::size_t Core::connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return connections_;
}

void Core::acquire_connection() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        ++connections_;
    }
    metric_add(connections_gauge, 1);
}

void Core::release_connection() noexcept {
    bool idle;
    {
        std::lock_guard<std::mutex> lock(mu_);
        idle = --connections_ == 0;
    }
    if (idle) idle_cv_.notify_all();
    metric_add(connections_gauge, -1);
}

bool Core::wait_idle(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return idle_cv_.wait_until(lock, deadline, [&] { return connections_ == 0; });
}

bool Core::track(Tracked *key, std::weak_ptr<Tracked> session) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_[key] = std::move(session);
    return !stopping_;
}

void Core::untrack(Tracked *key) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(key);
}

std::vector<std::shared_ptr<Tracked>> Core::begin_stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    return live_sessions();
}

std::vector<std::shared_ptr<Tracked>> Core::live_sessions() const {
    std::vector<std::shared_ptr<Tracked>> out;
    std::lock_guard<std::mutex> lock(mu_);
    out.reserve(sessions_.size());
    for (const auto &[key, weak] : sessions_)
        if (auto s = weak.lock()) out.push_back(std::move(s));
    return out;
}

void Core::end_running() {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
}

ConnectionSlot::ConnectionSlot(Core &core) : core_(&core) { core.acquire_connection(); }

ConnectionSlot &ConnectionSlot::operator=(ConnectionSlot &&other) noexcept {
    if (this != &other) {
        release();
        core_ = std::exchange(other.core_, nullptr);
    }
    return *this;
}

void ConnectionSlot::release() noexcept {
    if (core_) std::exchange(core_, nullptr)->release_connection();
}

// ---------------------------------------------------------------------------------------------
// HttpSession: one keep-alive HTTP connection, one request at a time.

// What the engine answered, copied out of the borrowed cs_http_response.
struct FrontResponse {
    int status = 500;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

class HttpSession : public Tracked, public std::enable_shared_from_this<HttpSession> {
public:
    // slot is empty for a connection that is only refused (see refuse()).
    HttpSession(tcp::socket &&socket, Core &core, ConnectionSlot slot)
        : core_(core), stream_(std::move(socket)), executor_(stream_.get_executor()),
          slot_(std::move(slot)) {
        beast::error_code ec;
        auto ep = stream_.socket().remote_endpoint(ec);
        peer_ = ec ? std::string("unknown") : endpoint_string(ep);
    }
    ~HttpSession() override { core_.untrack(this); }

    void run() {
        if (!core_.track(this, weak_from_this())) stopping_ = true;
        net::dispatch(executor_, beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
    }

    // Over max_connections: answer 503 at once, without reading the request, and close.
    void refuse() {
        net::dispatch(executor_, [self = shared_from_this()] {
            self->send_error(http::status::service_unavailable, "overloaded",
                             "the server has too many open connections; retry later", 11, true);
        });
    }

    void shutdown() override {
        net::post(executor_, [self = shared_from_this()] { self->on_shutdown(); });
    }
    void abandon() override {}

    const net::any_io_executor &executor() const { return executor_; }

    // On the strand: the engine's answer to the request we handed over.
    void on_front_response(FrontResponse r);

private:
    void do_read();
    void on_read_header(beast::error_code ec, std::size_t bytes);
    void on_continue(beast::error_code ec, std::size_t bytes);
    void read_body();
    void on_read(beast::error_code ec, std::size_t bytes);
    void handle_request();
    void call_front(Request &req);
    void serve_static(const Request &req);
    void send(http::message_generator msg, bool keep_alive);
    void on_write(bool keep_alive, beast::error_code ec, std::size_t bytes);
    // Writes a transport error in the API shape; linger: drain the rest of the request and
    // close (the request was not read to its end).
    void send_error(http::status status, std::string_view code, std::string_view message,
                    unsigned version, bool linger);
    void on_shutdown();
    void do_close();
    void do_linger();
    void on_linger(beast::error_code ec, std::size_t bytes);
    void fail(beast::error_code ec, const char *what);

    bool keep_alive_wanted(const Request &req) const {
        return req.keep_alive() && !stopping_ && core_.front->accepting(core_.front_ctx()) != 0;
    }

    Core &core_;
    beast::tcp_stream stream_;
    const net::any_io_executor executor_;  // the connection's strand; never changes
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    ConnectionSlot slot_;
    std::string peer_;
    std::unique_ptr<std::array<char, 4096>> drain_;  // lingering close only

    // Strand state.
    bool stopping_ = false;   // stop() asked: finish the request under way, then close
    bool reading_ = false;    // a request read is pending
    bool linger_ = false;     // close lingering after this write
    bool handed_off_ = false; // the stream went to a WebSocket session
    // The request being answered.
    unsigned version_ = 11;
    bool keep_alive_ = true;
    bool head_ = false;
};

// The respond_ctx handed to the engine with each request.
// LIFETIME: made by HttpSession::call_front, freed by respond() (the engine calls it exactly once,
// from any thread, possibly after stop()). It holds the Core so that the io_context and the
// session's socket stay valid however late the answer comes; session is declared after core so
// it is released first.
struct PendingResponse {
    std::shared_ptr<Core> core;
    std::shared_ptr<HttpSession> session;

    static void respond(void *ctx, const cs_http_response *response) noexcept {
        std::unique_ptr<PendingResponse> self(static_cast<PendingResponse *>(ctx));
        if (!self) return;
        try {
            FrontResponse r;
            if (response && response->struct_size >= sizeof(cs_http_response)) {
                r.status = response->status;
                r.content_type.assign(to_sv(response->content_type));
                r.body.assign(to_sv(response->body));
                for (size_t i = 0; response->headers && i < response->header_count; ++i)
                    r.headers.emplace_back(std::string(to_sv(response->headers[i].name)),
                                           std::string(to_sv(response->headers[i].value)));
            } else {
                r.status = 500;
                r.content_type = "application/json";
                r.body = R"({"error":{"code":"internal","message":"the engine gave no response"}})";
            }
            auto session = std::move(self->session);
            const auto &ex = session->executor();
            self->core->post_while_running(ex, [s = std::move(session), r = std::move(r)]() mutable {
                s->on_front_response(std::move(r));
            });
        } catch (...) {
            // Out of memory: the session is dropped and its connection closes.
        }
    }
};

void HttpSession::do_read() {
    if (stopping_) return do_close();
    // A fresh parser for every request, its limits set before the read.
    parser_.emplace();
    parser_->body_limit(core_.opt.body_limit);
    parser_->header_limit(core_.opt.header_limit);
    stream_.expires_after(core_.opt.read_timeout);
    reading_ = true;
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_read_header, shared_from_this()));
}

void HttpSession::on_read_header(beast::error_code ec, std::size_t bytes) {
    if (ec) return on_read(ec, bytes);
    // A client that waits for "100 Continue" before sending its body (curl does for large ones)
    // gets it once the header passed the limits.
    auto expect = parser_->get().find(http::field::expect);
    if (expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue") &&
        !parser_->is_done()) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        return net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                                beast::bind_front_handler(&HttpSession::on_continue, shared_from_this()));
    }
    read_body();
}

void HttpSession::on_continue(beast::error_code ec, std::size_t) {
    if (ec) {
        reading_ = false;
        return fail(ec, "write");
    }
    read_body();
}

void HttpSession::read_body() {
    if (parser_->is_done()) return on_read({}, 0);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
    reading_ = false;
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return do_close();
    if (ec == http::error::body_limit) {
        core_.log(CS_LOG_INFO, "request body over limit (413) from " + peer_);
        return send_error(http::status::payload_too_large, "body_too_large",
                          "the request body is larger than " + std::to_string(core_.opt.body_limit) +
                              " bytes",
                          version, true);
    }
    if (ec == http::error::header_limit) {
        core_.log(CS_LOG_INFO, "request header over limit (431) from " + peer_);
        return send_error(http::status::request_header_fields_too_large, "headers_too_large",
                          "the request header is larger than " +
                              std::to_string(core_.opt.header_limit) + " bytes",
                          version, true);
    }
    if (ec == beast::error::timeout) return;  // the stream closed itself
    if (ec && is_http_parse_error(ec)) {
        core_.log(CS_LOG_INFO, "malformed request (400) from " + peer_ + ": " + ec.message());
        return send_error(http::status::bad_request, "bad_request", "malformed HTTP request",
                          version, true);
    }
    if (ec) return fail(ec, "read");
    stream_.expires_never();
    handle_request();
}

void HttpSession::handle_request() {
    Request &req = parser_->get();
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    keep_alive_ = keep_alive_wanted(req);
    std::string_view path = target_path(req.target());

    if (beast::websocket::is_upgrade(req)) {
        if (path == "/v1/chat" || path == "/v1/voice/relay") {
            if (stopping_) {
                return send_error(http::status::service_unavailable, "shutting_down",
                                  "the server is shutting down", version_, false);
            }
            handed_off_ = true;
            start_websocket(core_, std::move(stream_), parser_->release(), std::move(slot_),
                            std::move(peer_));
            return;
        }
    }
    if (core_.statics && (req.method() == http::verb::get || head_) && is_static_path(path))
        return serve_static(req);
    call_front(req);
}

void HttpSession::call_front(Request &req) {
    std::vector<cs_header> headers;
    headers.reserve(16);
    for (const auto &field : req)
        headers.push_back(cs_header{to_cs(field.name_string()), to_cs(field.value())});
    cs_http_request creq{};
    creq.struct_size = sizeof(cs_http_request);
    creq.method = to_cs(req.method_string());
    creq.target = to_cs(req.target());
    creq.body = to_cs(req.body());
    creq.headers = headers.data();
    creq.header_count = headers.size();
    creq.peer = to_cs(peer_);

    auto pending = std::make_unique<PendingResponse>();
    pending->core = core_.shared_from_this();
    pending->session = shared_from_this();
    // The engine may answer from inside this call: respond() posts, so we are not re-entered.
    core_.front->http(core_.front_ctx(), &creq, &PendingResponse::respond, pending.release());
    parser_.reset();  // the request was borrowed for the call only
}

void HttpSession::on_front_response(FrontResponse r) {
    if (r.status < 100 || r.status > 599) {
        core_.log(CS_LOG_ERROR, "the engine answered with status " + std::to_string(r.status) +
                                    "; sending 500");
        r.status = 500;
    }
    http::response<http::string_body> res{static_cast<http::status>(r.status), version_};
    if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
    for (const auto &[name, value] : r.headers) {
        if (!header_is_safe(name, value) || header_is_ours(http::string_to_field(name))) {
            core_.log(CS_LOG_WARN, "dropped a response header the engine may not set");
            continue;
        }
        res.insert(name, value);
    }
    if (res.find(http::field::cache_control) == res.end())
        res.set(http::field::cache_control, "no-store");
    bool keep_alive = keep_alive_ && !stopping_;
    res.keep_alive(keep_alive);
    bool no_body = head_ || r.status == 204 || r.status == 304 || r.status < 200;
    if (no_body) {
        if (head_) res.content_length(r.body.size());
    } else {
        res.body() = std::move(r.body);
        res.prepare_payload();
    }
    send(http::message_generator(std::move(res)), keep_alive);
}

void HttpSession::serve_static(const Request &req) {
    StaticLookup found = core_.statics->resolve(req.target());
    if (found.kind == StaticLookup::Kind::bad_request)
        return send_error(http::status::bad_request, "bad_request", "invalid path", version_, false);
    if (found.kind == StaticLookup::Kind::not_found)
        return send_error(http::status::not_found, "not_found", "no such file", version_, false);

    beast::error_code ec;
    http::file_body::value_type body;
    body.open(found.file.c_str(), beast::file_mode::scan, ec);
    if (ec) {
        core_.log(CS_LOG_WARN, "static file unreadable: " + ec.message());
        return send_error(http::status::not_found, "not_found", "no such file", version_, false);
    }
    auto size = body.size();
    std::string_view type = mime_type(found.file.filename().string());
    // index.html (and the single-page-app fallback) must be revalidated so new releases show.
    bool is_index = found.fallback || found.file.filename() == "index.html";
    if (head_) {
        http::response<http::string_body> res{http::status::ok, version_};
        res.set(http::field::content_type, type);
        if (is_index) res.set(http::field::cache_control, "no-cache");
        res.content_length(size);
        res.keep_alive(keep_alive_);
        return send(http::message_generator(std::move(res)), keep_alive_);
    }
    http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(body)),
                                        std::make_tuple(http::status::ok, version_)};
    res.set(http::field::content_type, type);
    if (is_index) res.set(http::field::cache_control, "no-cache");
    res.content_length(size);
    res.keep_alive(keep_alive_);
    send(http::message_generator(std::move(res)), keep_alive_);
}

void HttpSession::send_error(http::status status, std::string_view code, std::string_view message,
                             unsigned version, bool linger) {
    // A request we could not read to its end leaves the connection unusable: close it.
    bool keep_alive = !linger && keep_alive_ && !stopping_;
    linger_ = linger;
    send(http::message_generator(error_response(status, code, message, version, keep_alive)),
         keep_alive);
}

void HttpSession::send(http::message_generator msg, bool keep_alive) {
    stream_.expires_after(core_.opt.read_timeout);
    beast::async_write(stream_, std::move(msg),
                       beast::bind_front_handler(&HttpSession::on_write, shared_from_this(),
                                                 keep_alive));
}

void HttpSession::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
    if (ec) return fail(ec, "write");
    if (linger_) return do_linger();
    if (!keep_alive || stopping_) return do_close();
    do_read();
}

void HttpSession::on_shutdown() {
    stopping_ = true;
    if (handed_off_) return;
    // Idle between requests: close now. Otherwise the request under way finishes first.
    if (reading_) {
        beast::error_code ignored;
        stream_.socket().close(ignored);
    }
}

void HttpSession::do_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    // The session (and the socket) go when the last handler holding it returns.
}

void HttpSession::do_linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    drain_ = std::make_unique<std::array<char, 4096>>();
    stream_.expires_after(kLinger);
    stream_.async_read_some(net::buffer(*drain_),
                            beast::bind_front_handler(&HttpSession::on_linger, shared_from_this()));
}

void HttpSession::on_linger(beast::error_code ec, std::size_t) {
    if (ec) return;  // end of stream, timeout or error: the connection is done
    stream_.async_read_some(net::buffer(*drain_),
                            beast::bind_front_handler(&HttpSession::on_linger, shared_from_this()));
}

void HttpSession::fail(beast::error_code ec, const char *what) {
    if (ec == net::error::operation_aborted || ec == beast::error::timeout) return;
    core_.log(CS_LOG_DEBUG, std::string("http ") + what + " from " + peer_ + ": " + ec.message());
}

// ---------------------------------------------------------------------------------------------
// Listener: accepts connections, each onto its own strand.

class Listener : public std::enable_shared_from_this<Listener> {
public:
    explicit Listener(Core &core)
        : core_(core), acceptor_(net::make_strand(core.ioc)), retry_(acceptor_.get_executor()) {}

    // Opens, binds and listens; returns the bound endpoint. Throws sdk::Error.
    tcp::endpoint open(const tcp::endpoint &ep) {
        auto check = [&](beast::error_code ec, const char *step) {
            if (!ec) return;
            throw sdk::Error(CS_E_IO, "cannot listen on " + endpoint_string(ep) + " (" + step +
                                          ": " + ec.message() +
                                          "); choose another address or port in `listen`");
        };
        beast::error_code ec;
        acceptor_.open(ep.protocol(), ec);
        check(ec, "open");
        acceptor_.set_option(net::socket_base::reuse_address(true), ec);
        check(ec, "SO_REUSEADDR");
        acceptor_.bind(ep, ec);
        check(ec, "bind");
        acceptor_.listen(net::socket_base::max_listen_connections, ec);
        check(ec, "listen");
        return acceptor_.local_endpoint();
    }

    void run() {
        net::dispatch(acceptor_.get_executor(),
                      beast::bind_front_handler(&Listener::do_accept, shared_from_this()));
    }

    // Closes the acceptor on its strand and waits for that (so that no connection is accepted
    // once this returns). Only from a thread that is not one of the io threads.
    void close() {
        std::promise<void> done;
        auto future = done.get_future();
        net::post(acceptor_.get_executor(), [self = shared_from_this(), &done] {
            self->closed_ = true;
            beast::error_code ignored;
            self->acceptor_.close(ignored);
            self->retry_.cancel();
            done.set_value();
        });
        future.wait();
    }

    // Without io threads (never started, or already joined).
    void close_now() {
        closed_ = true;
        beast::error_code ignored;
        acceptor_.close(ignored);
    }

private:
    void do_accept() {
        if (closed_) return;
        acceptor_.async_accept(net::make_strand(core_.ioc),
                               beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
    }

    void on_accept(beast::error_code ec, tcp::socket socket) {
        if (closed_) return;  // accepted just before close(): drop it
        if (ec) {
            if (ec == net::error::operation_aborted) return;
            // Out of descriptors and the like: back off instead of spinning.
            core_.log(CS_LOG_WARN, "accept failed: " + ec.message());
            retry_.expires_after(std::chrono::milliseconds(100));
            retry_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
                if (!wait_ec) self->do_accept();
            });
            return;
        }
        if (core_.connections() >= core_.opt.max_connections) {
            core_.metric_add(core_.refused_counter, 1);
            core_.log(CS_LOG_WARN, "over max_connections (" +
                                       std::to_string(core_.opt.max_connections) +
                                       "); refusing a connection with 503");
            std::make_shared<HttpSession>(std::move(socket), core_, ConnectionSlot())->refuse();
        } else {
            std::make_shared<HttpSession>(std::move(socket), core_, ConnectionSlot(core_))->run();
        }
        do_accept();
    }

    Core &core_;
    tcp::acceptor acceptor_;
    net::steady_timer retry_;
    bool closed_ = false;  // strand
};

// ---------------------------------------------------------------------------------------------
// Server

struct WorkGuard {
    net::executor_work_guard<net::io_context::executor_type> guard;
};

Server::Server(const cs_host_api *host, ServerOptions options)
    : core_(std::make_shared<Core>(host, std::move(options))) {}

Server::~Server() {
    stop();
    listener_.reset();
    core_->detach_host();
    core_.reset();  // the Core lives on while the engine still owes HTTP responses
}

std::string Server::start() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (started_ || stopped_) throw sdk::Error(CS_E_INVALID, "the transport was already started");
    beast::error_code ec;
    auto address = net::ip::make_address(core_->opt.host, ec);
    if (ec) throw sdk::Error(CS_E_INVALID, "listen: not an IP address: " + core_->opt.host);

    listener_ = std::make_shared<Listener>(*core_);
    tcp::endpoint bound = listener_->open(tcp::endpoint(address, core_->opt.port));
    listener_->run();
    work_ = std::make_unique<WorkGuard>(WorkGuard{net::make_work_guard(core_->ioc)});
    threads_.reserve(core_->opt.threads);
    for (unsigned i = 0; i < core_->opt.threads; ++i) {
        threads_.emplace_back([core = core_.get()] {
            for (;;) {
                try {
                    core->ioc.run();
                    return;
                } catch (const std::exception &e) {
                    core->log(CS_LOG_ERROR, std::string("io thread caught: ") + e.what());
                }
            }
        });
    }
    started_ = true;
    std::string where = endpoint_string(bound);
    core_->log(CS_LOG_INFO, "listening on " + where + " with " +
                                std::to_string(core_->opt.threads) + " io thread(s)");
    return where;
}

void Server::stop_accepting() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!started_ || stopped_ || !listener_) return;
    listener_->close();
    core_->log(CS_LOG_INFO, "stopped accepting new connections");
}

void Server::stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!started_) {
        core_->end_running();
        return;
    }
    listener_->close();

    // Ask every connection to end, and give them the WebSocket closing handshake's time.
    auto sessions = core_->begin_stop();
    for (auto &s : sessions) s->shutdown();
    sessions.clear();
    auto deadline = std::chrono::steady_clock::now() + core_->opt.ws_handshake_timeout +
                    std::chrono::seconds(1);
    std::size_t left = core_->wait_idle(deadline) ? 0 : core_->connections();

    // From here on, late engine callbacks post nothing; the io threads end.
    core_->end_running();
    work_.reset();
    core_->ioc.stop();
    for (auto &t : threads_) t.join();
    threads_.clear();

    // Whatever is still alive sits in handlers that will never run: end its chats now, on this
    // thread, before returning (the engine is promised no call from us after stop()).
    for (auto &s : core_->live_sessions()) s->abandon();
    core_->log(CS_LOG_INFO, left == 0 ? std::string("stopped")
                                      : "stopped; " + std::to_string(left) +
                                            " connection(s) did not close in time");
}

}  // namespace consilium::beast_transport
