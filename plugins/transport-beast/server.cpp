// The HTTP side of the Beast server, written the way Beast's examples write servers
// (advanced_server_flex): a Listener that accepts onto one strand per connection, a
// DetectSession that tells TLS from plain when TLS is on, an HttpSession (one template for plain
// and TLS streams) owned by shared_from_this with do_x/on_x pairs and one fail(), limits and
// timeouts set before every read. Requests go to the engine through cs_front_api::http(); the
// engine's answer comes back from any thread and is posted to the session's strand. Static files
// are served here; a WebSocket upgrade to /v1/chat (the chat channel) or /v1/voice/relay (a
// voice relay) is handed to websocket_session.cpp (the engine tells them apart by the target it
// gets in chat_open); /v1/chat/sessions... go to the fallback transports (fallback.cpp), whose
// SSE streams this file writes.
#include "core.hpp"
#include "fallback.hpp"
#include "server.hpp"

#include <consilium/sdk/core.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/core/file.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <array>
#include <deque>
#include <future>
#include <sstream>
#include <type_traits>

namespace consilium::beast_transport {

namespace {

// How long a connection we close after an error keeps draining what the client still sends, so
// that the client reads our response instead of a reset (nginx's lingering close).
constexpr std::chrono::milliseconds kLinger{2000};

// An error the transport itself answers, in the API's error shape.
http::response<http::string_body> error_response(http::status status, std::string_view code,
                                                 std::string_view message, unsigned version,
                                                 bool keep_alive) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = error_json(code, message);
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

std::string hex(std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    do {
        out.insert(out.begin(), digits[n & 15]);
        n >>= 4;
    } while (n != 0);
    return out;
}

}  // namespace

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
                static constexpr char digits[] = "0123456789abcdef";
                out += "\\u00";
                out.push_back(digits[(c >> 4) & 0xf]);
                out.push_back(digits[c & 0xf]);
            } else {
                out.push_back(c);
            }
        }
    }
    return out;
}

std::string error_json(std::string_view code, std::string_view message) {
    return "{\"error\":{\"code\":\"" + json_escape(code) + "\",\"message\":\"" + json_escape(message) +
           "\"}}";
}

std::string_view bearer_token(std::string_view authorization) {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size()) return {};
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        char c = authorization[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != scheme[i]) return {};
    }
    std::string_view token = authorization.substr(scheme.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    return token;
}

std::string endpoint_string(const tcp::endpoint &ep) {
    auto addr = ep.address();
    std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
    return host + ":" + std::to_string(ep.port());
}

std::string address_key(const net::ip::address &address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6()).to_string();
    return address.to_string();
}

// ---------------------------------------------------------------------------------------------
// Core

namespace {

bool has_chat_drained(const cs_front_api *front) {
    return front->struct_size >= offsetof(cs_front_api, chat_drained) + sizeof(front->chat_drained) &&
           front->chat_drained != nullptr;
}

}  // namespace

Core::Core(const cs_host_api *host_api, ServerOptions options)
    : host(host_api), front(host_api->front), opt(std::move(options)),
      statics(opt.static_dir.empty() ? std::nullopt
                                     : std::optional<StaticFiles>(StaticFiles(opt.static_dir))),
      tls(opt.tls() ? make_tls_context(opt) : nullptr),
      front_has_drained(has_chat_drained(host_api->front)),
      connections_gauge(host->metric(host->ctx, CS_METRIC_GAUGE, to_cs("transport_connections"),
                                     to_cs("Open client connections (HTTP and WebSocket)"))),
      websockets_gauge(host->metric(host->ctx, CS_METRIC_GAUGE, to_cs("transport_websockets"),
                                    to_cs("Open WebSocket chat connections"))),
      refused_counter(host->metric(host->ctx, CS_METRIC_COUNTER, to_cs("transport_refused_total"),
                                   to_cs("Connections refused with 503 over max_connections"))),
      refused_per_ip_counter(host->metric(host->ctx, CS_METRIC_COUNTER,
                                          to_cs("transport_refused_per_ip_total"),
                                          to_cs("Connections refused with 503 over max_connections_per_ip"))),
      fallback_sessions_gauge(host->metric(host->ctx, CS_METRIC_GAUGE, to_cs("transport_fallback_sessions"),
                                           to_cs("Open SSE / long-polling chat sessions"))),
      ws_queued_bytes_gauge(host->metric(host->ctx, CS_METRIC_GAUGE, to_cs("transport_websocket_queued_bytes"),
                                         to_cs("Bytes of frames queued for WebSocket clients and not yet written"))),
      fallback_(std::make_unique<Fallback>(*this)), ioc(static_cast<int>(opt.threads)) {}

Core::~Core() {
    // Normally empty already (Server::stop); its sessions own timers of ioc, which goes first.
    fallback_->clear();
}

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

std::size_t Core::connections_from(const std::string &address) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = per_address_.find(address);
    return it == per_address_.end() ? 0 : it->second;
}

Admission Core::admit(const std::string &address, ConnectionSlot &slot) {
    Admission why = Admission::admitted;
    {
        std::lock_guard<std::mutex> lock(mu_);
        std::size_t &from = per_address_[address];
        if (connections_ >= opt.max_connections) why = Admission::over_total;
        else if (from >= opt.max_connections_per_ip) why = Admission::over_address;
        if (why == Admission::admitted) {
            ++connections_;
            ++from;
        } else if (from == 0) {
            per_address_.erase(address);
        }
    }
    switch (why) {
    case Admission::admitted:
        slot.release();
        slot.core_ = this;
        slot.address_ = address;
        metric_add(connections_gauge, 1);
        break;
    case Admission::over_total:
        metric_add(refused_counter, 1);
        log(CS_LOG_WARN, "over max_connections (" + std::to_string(opt.max_connections) +
                             "); refusing a connection with 503");
        break;
    case Admission::over_address:
        metric_add(refused_per_ip_counter, 1);
        log(CS_LOG_WARN, "over max_connections_per_ip (" + std::to_string(opt.max_connections_per_ip) +
                             ") from " + address + "; refusing a connection with 503");
        break;
    }
    return why;
}

FrontResponse Core::refusal(Admission why) {
    if (why == Admission::over_address)
        return FrontResponse::error(503, "too_many_connections",
                                    "too many open connections from your address; close some or retry later");
    return FrontResponse::error(503, "overloaded", "the server has too many open connections; retry later");
}

void Core::release_connection(const std::string &address) noexcept {
    bool idle;
    {
        std::lock_guard<std::mutex> lock(mu_);
        idle = --connections_ == 0;
        auto it = per_address_.find(address);
        if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
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

ConnectionSlot &ConnectionSlot::operator=(ConnectionSlot &&other) noexcept {
    if (this != &other) {
        release();
        core_ = std::exchange(other.core_, nullptr);
        address_ = std::move(other.address_);
    }
    return *this;
}

void ConnectionSlot::release() noexcept {
    if (core_) std::exchange(core_, nullptr)->release_connection(address_);
}

// ---------------------------------------------------------------------------------------------
// HttpSession: one keep-alive HTTP connection, one request at a time; plain or TLS.

// What an answer from off the strand needs of the session it goes to.
class Responder {
public:
    virtual ~Responder() = default;
    virtual const net::any_io_executor &executor() const = 0;
    // On the strand: the answer to the request we handed over.
    virtual void on_front_response(FrontResponse r) = 0;
};

template <class Stream>
class HttpSession : public Tracked,
                    public Responder,
                    public SseSink,
                    public std::enable_shared_from_this<HttpSession<Stream>> {
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

public:
    // buffer: bytes already read from the connection (TLS detection).
    HttpSession(Stream &&stream, beast::flat_buffer &&buffer, Core &core, ConnectionSlot slot,
                std::string peer)
        : core_(core), stream_(std::move(stream)), executor_(stream_.get_executor()),
          buffer_(std::move(buffer)), slot_(std::move(slot)), peer_(std::move(peer)) {}

    ~HttpSession() override {
        core_.untrack(this);
        if (source_) source_->detach_sse(this);
    }

    // refused: answer 503 at once, without reading a request, and close (after the TLS
    // handshake on a TLS connection).
    void start(std::optional<Admission> refused) {
        refused_ = refused;
        net::dispatch(executor_, beast::bind_front_handler(&HttpSession::on_start, this->shared_from_this()));
    }

    void shutdown() override {
        net::post(executor_, [self = this->shared_from_this()] { self->on_shutdown(); });
    }
    void abandon() override {}

    const net::any_io_executor &executor() const override { return executor_; }
    void on_front_response(FrontResponse r) override;

    // SseSink: from the fallback session's strand.
    void sse_write(std::shared_ptr<const std::string> bytes, uint64_t last_id) override {
        net::post(executor_, [self = this->shared_from_this(), bytes = std::move(bytes), last_id]() mutable {
            self->queue_sse(SseOut{SseOut::data, std::move(bytes), last_id});
        });
    }
    void sse_end(std::shared_ptr<const std::string> bytes) override {
        net::post(executor_, [self = this->shared_from_this(), bytes = std::move(bytes)]() mutable {
            self->queue_sse(SseOut{SseOut::end, std::move(bytes), 0});
        });
    }

private:
    struct SseOut {
        enum Kind { header, data, end } kind;
        std::shared_ptr<const std::string> bytes;  // data; end: may be null
        uint64_t last_id;                          // data: reported once written
    };

    void on_start();
    void on_handshake(beast::error_code ec, std::size_t used);
    void send_refusal();
    void do_read();
    void on_read_header(beast::error_code ec, std::size_t bytes);
    void on_continue(beast::error_code ec, std::size_t bytes);
    void read_body();
    void on_read(beast::error_code ec, std::size_t bytes);
    void handle_request();
    void call_front(Request &req);
    void handle_fallback(Request &req, std::string_view path);
    void serve_static(const Request &req);
    void send(http::message_generator msg, bool keep_alive);
    void on_write(bool keep_alive, beast::error_code ec, std::size_t bytes);
    // Writes a transport error in the API shape; linger: drain the rest of the request and
    // close (the request was not read to its end).
    void send_error(http::status status, std::string_view code, std::string_view message,
                    unsigned version, bool linger);
    void on_shutdown();
    void do_close();
    void on_tls_shutdown(beast::error_code ec);
    void do_linger();
    void on_linger(beast::error_code ec, std::size_t bytes);
    void fail(beast::error_code ec, const char *what);

    // SSE (GET /v1/chat/sessions/<id>/events): the response is a stream the fallback session
    // writes to through sse_write/sse_end; the connection serves nothing else afterwards.
    void start_sse(std::shared_ptr<SseSource> source, uint64_t after);
    void queue_sse(SseOut out);
    void write_sse();
    void on_sse_write(beast::error_code ec, std::size_t bytes);
    void do_sse_read();
    void on_sse_read(beast::error_code ec, std::size_t bytes);
    // The stream is over: graceful (the last chunk went out) or not (error, client gone).
    void end_sse(bool graceful);

    beast::tcp_stream &tcp() { return beast::get_lowest_layer(stream_); }

    bool keep_alive_wanted(const Request &req) const {
        return req.keep_alive() && !stopping_ && core_.front->accepting(core_.front_ctx()) != 0;
    }

    Core &core_;
    Stream stream_;
    const net::any_io_executor executor_;  // the connection's strand; never changes
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    ConnectionSlot slot_;
    std::string peer_;
    std::unique_ptr<std::array<char, 4096>> drain_;  // lingering close and SSE only
    std::unique_ptr<net::steady_timer> cut_timer_;   // SSE: stopping while a write is under way
    std::optional<Admission> refused_;

    // Strand state.
    bool stopping_ = false;   // stop() asked: finish the request under way, then close
    bool reading_ = false;    // a request read is pending
    bool linger_ = false;     // close lingering after this write
    bool handed_off_ = false; // the stream went to a WebSocket session
    // The request being answered.
    unsigned version_ = 11;
    bool keep_alive_ = true;
    bool head_ = false;
    // SSE.
    bool streaming_ = false;
    bool sse_chunked_ = false;
    bool sse_writing_ = false;
    bool sse_done_ = false;
    std::shared_ptr<SseSource> source_;
    std::deque<SseOut> sse_queue_;
    std::string sse_header_;  // the response header, written first
    std::string sse_prefix_;  // the chunk size line of the write under way
};

// The respond_ctx handed to the engine with each request.
// LIFETIME: made by HttpSession::call_front, freed by respond() (the engine calls it exactly once,
// from any thread, possibly after stop()). It holds the Core so that the io_context and the
// session's socket stay valid however late the answer comes; session is declared after core so
// it is released first.
struct PendingResponse {
    std::shared_ptr<Core> core;
    std::shared_ptr<Responder> session;

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
                r = FrontResponse::error(500, "internal", "the engine gave no response");
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

template <class Stream>
void HttpSession<Stream>::on_start() {
    if (!core_.track(this, this->weak_from_this())) stopping_ = true;
    if constexpr (kTls) {
        tcp().expires_after(core_.opt.read_timeout);
        stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                                beast::bind_front_handler(&HttpSession::on_handshake, this->shared_from_this()));
    } else {
        if (refused_) return send_refusal();
        do_read();
    }
}

template <class Stream>
void HttpSession<Stream>::on_handshake(beast::error_code ec, std::size_t used) {
    if (ec) return fail(ec, "tls handshake");  // the connection closes with the session
    buffer_.consume(used);
    if (refused_) return send_refusal();
    do_read();
}

template <class Stream>
void HttpSession<Stream>::send_refusal() {
    FrontResponse r = Core::refusal(*refused_);
    http::response<http::string_body> res{http::status::service_unavailable, 11};
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(r.body);
    res.keep_alive(false);
    res.prepare_payload();
    linger_ = true;
    send(http::message_generator(std::move(res)), false);
}

template <class Stream>
void HttpSession<Stream>::do_read() {
    if (stopping_) return do_close();
    // A fresh parser for every request, its limits set before the read.
    parser_.emplace();
    parser_->body_limit(core_.opt.body_limit);
    parser_->header_limit(core_.opt.header_limit);
    tcp().expires_after(core_.opt.read_timeout);
    reading_ = true;
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_read_header, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::on_read_header(beast::error_code ec, std::size_t bytes) {
    if (ec) return on_read(ec, bytes);
    // A client that waits for "100 Continue" before sending its body (curl does for large ones)
    // gets it once the header passed the limits.
    auto expect = parser_->get().find(http::field::expect);
    if (expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue") &&
        !parser_->is_done()) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        return net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                                beast::bind_front_handler(&HttpSession::on_continue, this->shared_from_this()));
    }
    read_body();
}

template <class Stream>
void HttpSession<Stream>::on_continue(beast::error_code ec, std::size_t) {
    if (ec) {
        reading_ = false;
        return fail(ec, "write");
    }
    read_body();
}

template <class Stream>
void HttpSession<Stream>::read_body() {
    if (parser_->is_done()) return on_read({}, 0);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::on_read(beast::error_code ec, std::size_t) {
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
    tcp().expires_never();
    handle_request();
}

template <class Stream>
void HttpSession<Stream>::handle_request() {
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
    if (Fallback::owns(path)) return handle_fallback(req, path);
    if (core_.statics && (req.method() == http::verb::get || head_) && is_static_path(path))
        return serve_static(req);
    call_front(req);
}

template <class Stream>
void HttpSession<Stream>::call_front(Request &req) {
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
    pending->session = this->shared_from_this();
    // The engine may answer from inside this call: respond() posts, so we are not re-entered.
    core_.front->http(core_.front_ctx(), &creq, &PendingResponse::respond, pending.release());
    parser_.reset();  // the request was borrowed for the call only
}

template <class Stream>
void HttpSession<Stream>::handle_fallback(Request &req, std::string_view path) {
    std::vector<cs_header> headers;
    headers.reserve(16);
    for (const auto &field : req)
        headers.push_back(cs_header{to_cs(field.name_string()), to_cs(field.value())});
    beast::error_code ignored;
    auto remote = tcp().socket().remote_endpoint(ignored);
    std::string address = ignored ? std::string("unknown") : address_key(remote.address());
    FallbackRequest fr;
    fr.method = req.method_string();
    fr.target = req.target();
    fr.body = req.body();
    fr.peer = peer_;
    fr.address = address;
    fr.authorization = req[http::field::authorization];
    fr.origin = req[http::field::origin];
    fr.last_event_id = req["Last-Event-ID"];
    fr.headers = headers.data();
    fr.header_count = headers.size();

    if (Fallback::is_events(fr.method, path)) {
        FrontResponse error;
        uint64_t after = 0;
        auto source = core_.fallback().find_for_events(fr, error, after);
        parser_.reset();
        if (!source) return on_front_response(std::move(error));
        return start_sse(std::move(source), after);
    }
    // The session answers from an io thread while this Core lives: a raw pointer suffices (and
    // a shared one would keep the Core alive from inside its own io_context).
    Core *core = &core_;
    std::shared_ptr<Responder> self = this->shared_from_this();
    core_.fallback().handle(fr, [core, self](FrontResponse r) {
        core->post_while_running(self->executor(), [self, r = std::move(r)]() mutable {
            self->on_front_response(std::move(r));
        });
    });
    parser_.reset();
}

template <class Stream>
void HttpSession<Stream>::on_front_response(FrontResponse r) {
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

template <class Stream>
void HttpSession<Stream>::serve_static(const Request &req) {
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

template <class Stream>
void HttpSession<Stream>::send_error(http::status status, std::string_view code,
                                     std::string_view message, unsigned version, bool linger) {
    // A request we could not read to its end leaves the connection unusable: close it.
    bool keep_alive = !linger && keep_alive_ && !stopping_;
    linger_ = linger;
    send(http::message_generator(error_response(status, code, message, version, keep_alive)),
         keep_alive);
}

template <class Stream>
void HttpSession<Stream>::send(http::message_generator msg, bool keep_alive) {
    tcp().expires_after(core_.opt.read_timeout);
    beast::async_write(stream_, std::move(msg),
                       beast::bind_front_handler(&HttpSession::on_write, this->shared_from_this(),
                                                 keep_alive));
}

template <class Stream>
void HttpSession<Stream>::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
    if (ec) return fail(ec, "write");
    if (linger_) return do_linger();
    if (!keep_alive || stopping_) return do_close();
    do_read();
}

template <class Stream>
void HttpSession<Stream>::on_shutdown() {
    stopping_ = true;
    if (handed_off_) return;
    if (streaming_) {
        // The fallback session ends the stream (with its close event); cut it if that lags.
        if (sse_done_) return;
        if (!sse_writing_) {
            tcp().expires_after(kLinger);
            return;
        }
        // A write is under way next to the read: basic_stream takes no new deadline while both
        // are pending, so a timer of our own cuts the socket instead.
        cut_timer_ = std::make_unique<net::steady_timer>(executor_, kLinger);
        cut_timer_->async_wait([self = this->shared_from_this()](beast::error_code ec) {
            if (ec) return;
            beast::error_code ignored;
            self->tcp().socket().close(ignored);
        });
        return;
    }
    // Idle between requests: close now. Otherwise the request under way finishes first.
    if (reading_) {
        beast::error_code ignored;
        tcp().socket().close(ignored);
    }
}

template <class Stream>
void HttpSession<Stream>::do_close() {
    if constexpr (kTls) {
        // close_notify, then the TCP close; a peer that does not answer gets cut after kLinger.
        tcp().expires_after(kLinger);
        stream_.async_shutdown(beast::bind_front_handler(&HttpSession::on_tls_shutdown, this->shared_from_this()));
    } else {
        beast::error_code ignored;
        tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
        // The session (and the socket) go when the last handler holding it returns.
    }
}

template <class Stream>
void HttpSession<Stream>::on_tls_shutdown(beast::error_code) {
    beast::error_code ignored;
    tcp().socket().close(ignored);
}

template <class Stream>
void HttpSession<Stream>::do_linger() {
    // Over TLS the shutdown reads (and drops) what the client still sends until its close_notify.
    if constexpr (kTls) return do_close();
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    drain_ = std::make_unique<std::array<char, 4096>>();
    tcp().expires_after(kLinger);
    tcp().async_read_some(net::buffer(*drain_),
                          beast::bind_front_handler(&HttpSession::on_linger, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::on_linger(beast::error_code ec, std::size_t) {
    if (ec) return;  // end of stream, timeout or error: the connection is done
    tcp().async_read_some(net::buffer(*drain_),
                          beast::bind_front_handler(&HttpSession::on_linger, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::fail(beast::error_code ec, const char *what) {
    if (ec == net::error::operation_aborted || ec == beast::error::timeout) return;
    core_.log(CS_LOG_DEBUG, std::string("http ") + what + " from " + peer_ + ": " + ec.message());
}

// ---- SSE ----

template <class Stream>
void HttpSession<Stream>::start_sse(std::shared_ptr<SseSource> source, uint64_t after) {
    streaming_ = true;
    source_ = std::move(source);
    // HTTP/1.1: chunked, so the client knows a complete stream from a cut one; HTTP/1.0: the
    // body runs until the connection closes. The connection serves nothing else afterwards.
    sse_chunked_ = version_ >= 11;
    http::response<http::empty_body> res{http::status::ok, version_};
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-store");
    res.set("X-Accel-Buffering", "no");  // proxies that buffer responses (nginx) must not
    res.keep_alive(false);
    if (sse_chunked_) res.chunked(true);
    std::ostringstream os;
    os << res.base();
    sse_header_ = os.str();
    sse_queue_.push_back(SseOut{SseOut::header, nullptr, 0});
    write_sse();
    drain_ = std::make_unique<std::array<char, 4096>>();
    do_sse_read();
    std::weak_ptr<SseSink> sink = std::static_pointer_cast<SseSink>(this->shared_from_this());
    source_->attach_sse(std::move(sink), this, after);
}

template <class Stream>
void HttpSession<Stream>::queue_sse(SseOut out) {
    if (sse_done_) return;
    sse_queue_.push_back(std::move(out));
    if (!sse_writing_) write_sse();
}

template <class Stream>
void HttpSession<Stream>::write_sse() {
    if (sse_queue_.empty() || sse_done_) return;
    const SseOut &out = sse_queue_.front();
    static constexpr std::string_view kCrlf = "\r\n";
    static constexpr std::string_view kLastChunk = "0\r\n\r\n";
    std::array<net::const_buffer, 4> bufs{};
    std::size_t n = 0;
    if (out.kind == SseOut::header) {
        bufs[n++] = net::buffer(sse_header_);
    } else {
        if (out.bytes && !out.bytes->empty()) {
            if (sse_chunked_) {
                sse_prefix_ = hex(out.bytes->size()) + "\r\n";
                bufs[n++] = net::buffer(sse_prefix_);
                bufs[n++] = net::buffer(*out.bytes);
                bufs[n++] = net::buffer(kCrlf.data(), kCrlf.size());
            } else {
                bufs[n++] = net::buffer(*out.bytes);
            }
        }
        if (out.kind == SseOut::end && sse_chunked_) bufs[n++] = net::buffer(kLastChunk.data(), kLastChunk.size());
    }
    sse_writing_ = true;
    tcp().expires_after(core_.opt.read_timeout);  // a client that stops reading is cut
    net::async_write(stream_, std::array<net::const_buffer, 4>(bufs),
                     beast::bind_front_handler(&HttpSession::on_sse_write, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::on_sse_write(beast::error_code ec, std::size_t) {
    sse_writing_ = false;
    if (ec) {
        fail(ec, "sse write");
        return end_sse(false);
    }
    SseOut out = std::move(sse_queue_.front());
    sse_queue_.pop_front();
    // The read that watches for the client going away has no deadline of its own.
    if (stopping_) tcp().expires_after(kLinger);
    else tcp().expires_never();
    if (out.kind == SseOut::end) return end_sse(true);
    if (out.kind == SseOut::data && source_) source_->sse_written(this, out.last_id);
    write_sse();
}

template <class Stream>
void HttpSession<Stream>::do_sse_read() {
    stream_.async_read_some(net::buffer(*drain_),
                            beast::bind_front_handler(&HttpSession::on_sse_read, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::on_sse_read(beast::error_code ec, std::size_t) {
    if (!ec) return do_sse_read();  // whatever the client sends now is ignored
    if (!sse_done_) fail(ec, "sse read");
    end_sse(false);
    beast::error_code ignored;
    tcp().socket().close(ignored);
}

template <class Stream>
void HttpSession<Stream>::end_sse(bool graceful) {
    if (sse_done_) return;
    sse_done_ = true;
    sse_queue_.clear();
    if (source_) {
        source_->detach_sse(this);
        source_.reset();
    }
    beast::error_code ignored;
    if (graceful) {
        // The last chunk is out: half-close, and let the pending read see the client's end.
        tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
        tcp().expires_after(kLinger);
    } else {
        tcp().socket().close(ignored);
    }
}

// ---------------------------------------------------------------------------------------------
// DetectSession: with TLS on, tells a TLS ClientHello from plain HTTP (advanced_server_flex).

class DetectSession : public Tracked, public std::enable_shared_from_this<DetectSession> {
public:
    DetectSession(tcp::socket &&socket, Core &core, ConnectionSlot slot, std::optional<Admission> refused,
                  std::string peer)
        : core_(core), stream_(std::move(socket)), executor_(stream_.get_executor()),
          slot_(std::move(slot)), refused_(refused), peer_(std::move(peer)) {}
    ~DetectSession() override { core_.untrack(this); }

    void run() {
        net::dispatch(executor_, beast::bind_front_handler(&DetectSession::on_run, shared_from_this()));
    }

    void shutdown() override {
        net::post(executor_, [self = shared_from_this()] {
            self->stopping_ = true;
            if (!self->handed_off_) self->stream_.close();
        });
    }
    void abandon() override {}

private:
    void on_run() {
        if (!core_.track(this, weak_from_this())) return stream_.close();
        stream_.expires_after(core_.opt.read_timeout);
        beast::async_detect_ssl(stream_, buffer_,
                                beast::bind_front_handler(&DetectSession::on_detect, shared_from_this()));
    }

    void on_detect(beast::error_code ec, bool is_tls) {
        if (ec || stopping_) {
            if (ec && ec != net::error::operation_aborted && ec != beast::error::timeout &&
                ec != net::error::eof)
                core_.log(CS_LOG_DEBUG, "tls detection from " + peer_ + ": " + ec.message());
            return;
        }
        if (is_tls) {
            handed_off_ = true;
            std::make_shared<HttpSession<TlsStream>>(TlsStream(std::move(stream_), *core_.tls),
                                                     std::move(buffer_), core_, std::move(slot_),
                                                     std::move(peer_))
                ->start(refused_);
            return;
        }
        if (core_.opt.tls_also_plain) {
            handed_off_ = true;
            std::make_shared<HttpSession<PlainStream>>(std::move(stream_), std::move(buffer_), core_,
                                                       std::move(slot_), std::move(peer_))
                ->start(refused_);
            return;
        }
        core_.log(CS_LOG_DEBUG, "plain connection to a TLS-only listener from " + peer_ + "; closed");
        // Close lingering, so the client sees the end of the stream rather than a reset.
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(kLinger);
        do_drain();
    }

    void do_drain() {
        stream_.async_read_some(net::buffer(drain_),
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    if (!ec) self->do_drain();
                                });
    }

    Core &core_;
    beast::tcp_stream stream_;
    const net::any_io_executor executor_;  // the connection's strand; outlives a moved stream_
    beast::flat_buffer buffer_;
    ConnectionSlot slot_;
    std::optional<Admission> refused_;
    std::string peer_;
    std::array<char, 1024> drain_{};
    bool stopping_ = false;
    bool handed_off_ = false;
};

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
        beast::error_code ep_ec;
        auto remote = socket.remote_endpoint(ep_ec);
        std::string peer = ep_ec ? std::string("unknown") : endpoint_string(remote);
        std::string address = ep_ec ? std::string("unknown") : address_key(remote.address());
        ConnectionSlot slot;
        std::optional<Admission> refused;
        if (Admission why = core_.admit(address, slot); why != Admission::admitted) refused = why;
        if (core_.tls) {
            std::make_shared<DetectSession>(std::move(socket), core_, std::move(slot), refused,
                                            std::move(peer))
                ->run();
        } else {
            std::make_shared<HttpSession<PlainStream>>(PlainStream(std::move(socket)), beast::flat_buffer(),
                                                       core_, std::move(slot), std::move(peer))
                ->start(refused);
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
    std::string scheme = !core_->tls ? "plain HTTP"
                         : core_->opt.tls_also_plain ? "TLS and plain HTTP"
                                                     : "TLS";
    core_->log(CS_LOG_INFO, "listening on " + where + " (" + scheme + ") with " +
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

    // Ask every connection and fallback session to end, and give them the WebSocket closing
    // handshake's time.
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
    core_->fallback().clear();
    core_->log(CS_LOG_INFO, left == 0 ? std::string("stopped")
                                      : "stopped; " + std::to_string(left) +
                                            " connection(s) did not close in time");
}

}  // namespace consilium::beast_transport
