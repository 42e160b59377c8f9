// The fallback transports' sessions (see fallback.hpp and docs/protocol.md, "Fallback
// transports"). A FallbackSession is one chat of the front API, on its own strand, like a
// WebSocket session without a socket:
//  - the engine's frames (sink send, any thread) are posted to the strand and numbered 1, 2, ...
//    in a per-session buffer;
//  - an attached SSE connection is written one batch at a time (at most kSseBatch bytes); once
//    the batch is written those frames count as delivered; a long-poll answers the frames after
//    its `after`, and `after` acknowledges delivery up to it;
//  - frames not yet delivered are bounded like a WebSocket's send queue (write_queue_limit: over
//    it the session closes with 1008; queue_high_water / queue_low_water drive chat_drained);
//    delivered frames are kept for replay (Last-Event-ID, `after`) up to fallback_buffer_bytes,
//    the oldest dropped first (a client asking for dropped ones is told with a `gap`);
//  - with no client attached (no SSE connection, no waiting poll) for fallback_session_idle_ms
//    the session ends: chat_close, and its id is forgotten.
// chat_close is called exactly once, on the strand (or from abandon() once no io thread runs),
// with a shared_ptr to the session held, as the sink's LIFETIME rule wants.
#include "fallback.hpp"

#include <boost/asio/steady_timer.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>

namespace consilium::beast_transport {

namespace {

constexpr std::string_view kCollection = "/v1/chat/sessions";
constexpr std::string_view kSessionPrefix = "/v1/chat/sessions/";
constexpr std::size_t kSseBatch = 65536;  // bytes per SSE write (at least one event)

// 128 random bits from OpenSSL's CSPRNG, as 32 lower-case hex digits.
std::optional<std::string> new_session_id() {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return std::nullopt;
    static constexpr char hex[] = "0123456789abcdef";
    std::string id;
    id.reserve(2 * sizeof raw);
    for (unsigned char b : raw) {
        id.push_back(hex[b >> 4]);
        id.push_back(hex[b & 15]);
    }
    return id;
}

bool is_session_id(std::string_view s) {
    return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// A path under /v1/chat/sessions: the collection (id empty), "<id>" or "<id>/<action>".
struct Route {
    bool valid = false;
    std::string_view id;
    std::string_view action;
};

Route route_of(std::string_view path) {
    if (path == kCollection) return Route{true, {}, {}};
    if (path.substr(0, kSessionPrefix.size()) != kSessionPrefix) return {};
    std::string_view rest = path.substr(kSessionPrefix.size());
    std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return Route{!rest.empty(), rest, {}};
    Route r{true, rest.substr(0, slash), rest.substr(slash + 1)};
    if (r.id.empty() || r.action.empty() || r.action.find('/') != std::string_view::npos) return {};
    return r;
}

// Compares an Authorization header with the one a session was made with, in constant time.
bool same_secret(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool parse_u64(std::string_view s, uint64_t &out) {
    if (s.empty() || s.size() > 19) return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    out = v;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The value of a query parameter (the first one of that name), not percent-decoded: the
// parameters read here are plain numbers.
std::optional<std::string_view> query_param(std::string_view target, std::string_view key) {
    std::size_t q = target.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view query = target.substr(q + 1);
    if (std::size_t hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
    while (!query.empty()) {
        std::size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        std::size_t eq = pair.find('=');
        if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

// One engine frame as an SSE event. A frame is one JSON text and holds no line break, but the
// transport does not parse frames: each line of it becomes a data line (the client's EventSource
// joins them with "\n").
std::string sse_event(uint64_t id, std::string_view frame) {
    std::string out;
    out.reserve(frame.size() + 32);
    out += "id: ";
    out += std::to_string(id);
    out += '\n';
    for (;;) {
        std::size_t eol = frame.find_first_of("\r\n");
        out += "data: ";
        out.append(frame.substr(0, eol));
        out += '\n';
        if (eol == std::string_view::npos) break;
        std::size_t skip = frame.compare(eol, 2, "\r\n") == 0 ? 2 : 1;
        frame.remove_prefix(eol + skip);
    }
    out += '\n';
    return out;
}

// A transport event (close, gap, replaced): "event: <name>\ndata: <json>\n\n".
std::string sse_named(std::string_view name, std::string_view data) {
    std::string out = "event: ";
    out.append(name);
    out += "\ndata: ";
    out.append(data);
    out += "\n\n";
    return out;
}

std::string gap_json(uint64_t from, uint64_t to) {
    return "{\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(to) + "}";
}

FrontResponse method_not_allowed(std::string_view allow) {
    auto r = FrontResponse::error(405, "method_not_allowed",
                                  "this endpoint takes " + std::string(allow));
    r.headers.emplace_back("Allow", std::string(allow));
    return r;
}

FrontResponse no_session() {
    return FrontResponse::error(404, "not_found", "no such chat session");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FallbackSession

class FallbackSession final : public SseSource,
                              public Tracked,
                              public std::enable_shared_from_this<FallbackSession> {
public:
    // What chat_open gets, copied out of the creating request.
    struct OpenParams {
        std::string target;  // "/v1/chat" with the creating request's query
        std::string authorization;
        std::string origin;
        std::vector<std::pair<std::string, std::string>> headers;
    };

    FallbackSession(Core &core, std::string id, std::string authorization, ConnectionSlot slot,
                    std::string peer)
        : core_(core), id_(std::move(id)), authorization_(std::move(authorization)),
          slot_(std::move(slot)), peer_(std::move(peer)), strand_(net::make_strand(core.ioc)),
          idle_timer_(strand_), ping_timer_(strand_), poll_timer_(strand_) {}

    ~FallbackSession() override {
        core_.untrack(this);
        end_chat();  // never reached with an open chat (see the file comment); a last guard
    }

    // Immutable: read by Fallback::find from any thread.
    const std::string &authorization() const { return authorization_; }

    // ---- Requests (any thread; each posts to the strand). ----

    void open(OpenParams params, Respond respond) {
        net::post(strand_, [self = shared_from_this(), p = std::move(params),
                            r = std::move(respond)]() mutable { self->on_open(std::move(p), std::move(r)); });
    }

    void frame(std::string body, Respond respond) {
        net::post(strand_, [self = shared_from_this(), b = std::move(body),
                            r = std::move(respond)]() mutable { self->on_client_frame(b, r); });
    }

    void poll(uint64_t after, std::chrono::milliseconds wait, Respond respond) {
        net::post(strand_, [self = shared_from_this(), after, wait, r = std::move(respond)]() mutable {
            self->on_poll(after, wait, std::move(r));
        });
    }

    void remove_by_client(Respond respond) {
        net::post(strand_, [self = shared_from_this(), r = std::move(respond)] {
            self->end(1000, "closed by the client");
            r(FrontResponse{204, {}, {}, {}});
        });
    }

    // ---- SseSource ----

    void attach_sse(std::weak_ptr<SseSink> sink, SseSink *key, uint64_t after) override {
        net::post(strand_, [self = shared_from_this(), sink = std::move(sink), key, after]() mutable {
            self->on_attach(std::move(sink), key, after);
        });
    }

    void sse_written(SseSink *key, uint64_t last_id) override {
        net::post(strand_, [self = shared_from_this(), key, last_id] {
            if (key != self->sse_key_) return;
            self->sse_in_flight_ = false;
            self->mark_delivered(last_id);
            self->pump_sse();
        });
    }

    void detach_sse(SseSink *key) override {
        net::post(strand_, [self = shared_from_this(), key] {
            if (key != self->sse_key_) return;
            self->drop_sse();
            self->touch();
        });
    }

    // ---- Tracked ----

    void shutdown() override {
        closing_.store(true);
        net::post(strand_, [self = shared_from_this()] { self->end(1001, "going away"); });
    }

    void abandon() override {
        closing_.store(true);
        end_chat();
    }

private:
    struct Event {
        uint64_t id;
        std::shared_ptr<const std::string> frame;
    };
    struct Poll {
        uint64_t after;
        Respond respond;
    };

    // ---- The sink: any thread, never concurrently for one chat (ABI). ----

    static int64_t sink_send(void *ctx, cs_str frame) noexcept {
        try {
            return static_cast<FallbackSession *>(ctx)->enqueue(to_sv(frame));
        } catch (...) {
            return -1;
        }
    }

    static void sink_close(void *ctx, int code, cs_str reason) noexcept {
        try {
            auto *self = static_cast<FallbackSession *>(ctx);
            if (self->closing_.exchange(true)) return;
            self->post_engine_close(code, std::string(to_sv(reason)));
        } catch (...) {
        }
    }

    int64_t enqueue(std::string_view frame) {
        if (closing_.load()) return -1;
        auto self = weak_from_this().lock();
        if (!self) return -1;
        auto buffer = std::make_shared<const std::string>(frame);
        const auto size = static_cast<int64_t>(frame.size());
        const int64_t queued = pending_.fetch_add(size) + size;
        if (static_cast<uint64_t>(queued) > core_.opt.write_queue_limit) {
            pending_.fetch_sub(size);
            if (!closing_.exchange(true)) {
                core_.log(CS_LOG_WARN, "fallback session " + short_id() + ": frames not yet delivered over " +
                                           std::to_string(core_.opt.write_queue_limit) +
                                           " bytes; closing 1008 for " + peer_);
                post_engine_close(1008, "send queue full");
            }
            return -1;
        }
        if (static_cast<uint64_t>(queued) > core_.opt.queue_high_water) above_high_.store(true);
        try {
            net::post(strand_, [self = std::move(self), buffer = std::move(buffer)]() mutable {
                self->on_frame(std::move(buffer));
            });
        } catch (...) {
            pending_.fetch_sub(size);
            throw;
        }
        return queued;
    }

    void post_engine_close(int code, std::string reason) {
        net::post(strand_, [self = shared_from_this(), code, reason = std::move(reason)] {
            self->on_engine_close(code, reason);
        });
    }

    // ---- Strand. ----

    void on_open(OpenParams p, const Respond &respond) {
        if (!core_.track(this, weak_from_this())) {
            end(1001, "going away");
            return respond(FrontResponse::error(503, "shutting_down", "the server is shutting down"));
        }
        std::vector<cs_header> headers;
        headers.reserve(p.headers.size());
        for (const auto &[name, value] : p.headers) headers.push_back({to_cs(name), to_cs(value)});
        cs_chat_open_params params{};
        params.struct_size = sizeof(cs_chat_open_params);
        params.bearer_token = to_cs(bearer_token(p.authorization));
        params.peer = to_cs(peer_);
        params.origin = to_cs(p.origin);
        params.transport = to_cs("sse");
        params.target = to_cs(p.target);
        params.headers = headers.data();
        params.header_count = headers.size();
        sink_.struct_size = sizeof(cs_chat_sink);
        sink_.ctx = this;
        sink_.send = &FallbackSession::sink_send;
        sink_.close = &FallbackSession::sink_close;
        chat_ = core_.front->chat_open(core_.front_ctx(), &params, &sink_);
        if (!chat_) {
            core_.log(CS_LOG_ERROR, "chat_open returned no chat; fallback session refused");
            end(1011, "internal error");
            return respond(FrontResponse::error(500, "internal", "the chat could not be opened"));
        }
        core_.metric_add(core_.fallback_sessions_gauge, 1);
        core_.log(CS_LOG_DEBUG, "fallback session " + short_id() + " opened for " + peer_);
        touch();
        const std::string base = std::string(kSessionPrefix) + id_;
        respond(FrontResponse::json(201, "{\"session\":\"" + id_ + "\",\"events\":\"" + base +
                                             "/events\",\"poll\":\"" + base + "/poll\",\"send\":\"" +
                                             base + "/frames\"}"));
    }

    void on_client_frame(const std::string &body, const Respond &respond) {
        if (closed_ || !chat_)
            return respond(FrontResponse::error(410, "session_closed", "the chat session has ended"));
        touch();
        core_.front->chat_frame(chat_, to_cs(body));
        respond(FrontResponse::json(202, "{}"));
    }

    void on_frame(std::shared_ptr<const std::string> frame) {
        if (ended_) {
            pending_.fetch_sub(static_cast<int64_t>(frame->size()));
            return;
        }
        events_.push_back(Event{next_id_++, std::move(frame)});
        pump_sse();
        if (poll_ && !poll_answer_posted_) {
            // Answer after the frames already posted behind this one: one response, not many.
            poll_answer_posted_ = true;
            net::post(strand_, [self = shared_from_this()] {
                self->poll_answer_posted_ = false;
                self->answer_poll();
            });
        }
    }

    void on_engine_close(int code, const std::string &reason) {
        if (ended_) return;
        if (!closed_) {
            closed_ = true;
            close_code_ = code;
            close_reason_ = reason;
        }
        // The chat is over: no frame will go to the engine any more. The session stays for the
        // client to read what is left and how it ended, until it idles out.
        end_chat();
        pump_sse();
        answer_poll();
    }

    void on_poll(uint64_t after, std::chrono::milliseconds wait, Respond respond) {
        if (ended_) return respond(FrontResponse::json(200, poll_body(after)));
        mark_delivered(after);
        answer_poll();  // a newer poll supersedes a waiting one, which gets what there is (nothing)
        if (clamp(after) + 1 < next_id_ || closed_ || wait.count() == 0) {
            respond(FrontResponse::json(200, poll_body(after)));
            touch();
            return;
        }
        poll_ = Poll{after, std::move(respond)};
        ++idle_gen_;
        idle_timer_.cancel();
        poll_timer_.expires_after(wait);
        poll_timer_.async_wait([self = shared_from_this(), gen = ++poll_gen_](beast::error_code ec) {
            if (!ec && gen == self->poll_gen_) self->answer_poll();
        });
    }

    void answer_poll() {
        if (!poll_) return;
        Poll p = std::move(*poll_);
        poll_.reset();
        ++poll_gen_;
        poll_timer_.cancel();
        p.respond(FrontResponse::json(200, poll_body(p.after)));
        touch();
    }

    // {"events": [{"id", "frame"}...], "gap"?: {"from", "to"}, "closed"?: {"code", "reason"}}
    std::string poll_body(uint64_t after) const {
        after = clamp(after);
        std::string body = "{\"events\":[";
        bool first = true;
        for (std::size_t i = index_after(after); i < events_.size(); ++i) {
            if (!first) body += ',';
            first = false;
            body += "{\"id\":" + std::to_string(events_[i].id) + ",\"frame\":\"" +
                    json_escape(*events_[i].frame) + "\"}";
        }
        body += ']';
        if (after + 1 < first_id()) body += ",\"gap\":" + gap_json(after + 1, first_id() - 1);
        if (closed_) body += ",\"closed\":" + close_json();
        body += '}';
        return body;
    }

    void on_attach(std::weak_ptr<SseSink> sink, SseSink *key, uint64_t after) {
        if (ended_) {
            if (auto s = sink.lock()) s->sse_end(close_event());
            return;
        }
        if (sse_key_) {
            if (auto old = sse_.lock())
                old->sse_end(std::make_shared<const std::string>(sse_named("replaced", "{}")));
            drop_sse();
        }
        sse_ = std::move(sink);
        sse_key_ = key;
        sse_in_flight_ = false;
        sse_cursor_ = clamp(after);
        mark_delivered(after);
        ++idle_gen_;
        idle_timer_.cancel();
        arm_ping();
        pump_sse();
    }

    // Hands the attached SSE connection its next batch, or ends it once the chat is over and
    // everything was written.
    void pump_sse() {
        if (!sse_key_ || sse_in_flight_) return;
        auto sink = sse_.lock();
        if (!sink) {
            drop_sse();
            return touch();
        }
        std::string batch;
        uint64_t last = sse_cursor_;
        if (last + 1 < first_id()) {
            batch = sse_named("gap", gap_json(last + 1, first_id() - 1));
            last = first_id() - 1;
        }
        for (std::size_t i = index_after(last); i < events_.size() && batch.size() < kSseBatch; ++i) {
            batch += sse_event(events_[i].id, *events_[i].frame);
            last = events_[i].id;
        }
        if (batch.empty()) {
            if (closed_) {
                sink->sse_end(close_event());
                drop_sse();
                touch();
            }
            return;
        }
        sse_cursor_ = last;
        sse_in_flight_ = true;
        sink->sse_write(std::make_shared<const std::string>(std::move(batch)), last);
    }

    void arm_ping() {
        ping_timer_.expires_after(core_.opt.fallback_ping_interval);
        ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec || self->ended_ || !self->sse_key_) return;
            if (!self->sse_in_flight_) {
                if (auto sink = self->sse_.lock()) {
                    static const auto ping = std::make_shared<const std::string>(": ping\n\n");
                    self->sse_in_flight_ = true;
                    sink->sse_write(ping, self->sse_cursor_);
                }
            }
            self->arm_ping();
        });
    }

    void drop_sse() {
        sse_.reset();
        sse_key_ = nullptr;
        sse_in_flight_ = false;
        ping_timer_.cancel();
    }

    // Frames up to `upto` reached a client: they leave the send queue (and may leave the replay
    // buffer); a queue that was over its high-water mark and is now under its low-water mark
    // tells the engine.
    void mark_delivered(uint64_t upto) {
        upto = clamp(upto);
        if (upto <= delivered_id_) return;
        int64_t bytes = 0;
        // Undelivered frames are never dropped: every frame after delivered_id_ is still here.
        for (std::size_t i = index_after(delivered_id_); i < events_.size() && events_[i].id <= upto; ++i)
            bytes += static_cast<int64_t>(events_[i].frame->size());
        delivered_id_ = upto;
        delivered_bytes_ += static_cast<uint64_t>(bytes);
        const int64_t left = pending_.fetch_sub(bytes) - bytes;
        while (!events_.empty() && events_.front().id <= delivered_id_ &&
               delivered_bytes_ > core_.opt.fallback_buffer_bytes) {
            delivered_bytes_ -= events_.front().frame->size();
            events_.pop_front();
        }
        if (left < static_cast<int64_t>(core_.opt.queue_low_water) && above_high_.load() && chat_ &&
            !chat_closed_ && core_.front_has_drained && above_high_.exchange(false))
            core_.front->chat_drained(chat_, left);
    }

    // With no client attached, (re)starts the idle countdown.
    void touch() {
        if (ended_ || sse_key_ || poll_) return;
        idle_timer_.expires_after(core_.opt.fallback_session_idle);
        idle_timer_.async_wait([self = shared_from_this(), gen = ++idle_gen_](beast::error_code ec) {
            if (ec || gen != self->idle_gen_ || self->ended_ || self->sse_key_ || self->poll_) return;
            self->core_.log(CS_LOG_DEBUG, "fallback session " + self->short_id() + " idle; closed");
            self->end(1000, "idle");
        });
    }

    // The session is over (idle, closed by the client, server stop, refused): chat_close, the
    // clients are told, the id is forgotten and the connection slot freed.
    void end(int code, const std::string &reason) {
        if (ended_) return;
        ended_ = true;
        closing_.store(true);
        if (!closed_) {
            closed_ = true;
            close_code_ = code;
            close_reason_ = reason;
        }
        end_chat();
        if (sse_key_) {
            if (auto sink = sse_.lock()) sink->sse_end(close_event());
            drop_sse();
        }
        answer_poll();
        ++idle_gen_;
        idle_timer_.cancel();
        ping_timer_.cancel();
        poll_timer_.cancel();
        core_.fallback().remove(id_);
        slot_.release();
    }

    void end_chat() {
        if (!chat_ || chat_closed_) return;
        chat_closed_ = true;
        core_.front->chat_close(chat_);
        core_.metric_add(core_.fallback_sessions_gauge, -1);
    }

    std::string close_json() const {
        return "{\"code\":" + std::to_string(close_code_) + ",\"reason\":\"" + json_escape(close_reason_) +
               "\"}";
    }
    std::shared_ptr<const std::string> close_event() const {
        return std::make_shared<const std::string>(sse_named("close", close_json()));
    }

    uint64_t first_id() const { return events_.empty() ? next_id_ : events_.front().id; }
    uint64_t clamp(uint64_t after) const { return std::min(after, next_id_ - 1); }
    // Index in events_ of the first event after id `after`.
    std::size_t index_after(uint64_t after) const {
        uint64_t first = first_id();
        return after + 1 <= first ? 0 : static_cast<std::size_t>(after + 1 - first);
    }
    // Enough of the id to tell sessions apart in logs, not enough to use it.
    std::string short_id() const { return id_.substr(0, 8); }

    Core &core_;
    const std::string id_;
    const std::string authorization_;
    ConnectionSlot slot_;
    const std::string peer_;
    net::strand<net::io_context::executor_type> strand_;
    net::steady_timer idle_timer_;
    net::steady_timer ping_timer_;
    net::steady_timer poll_timer_;
    cs_chat_sink sink_{};

    // Shared with the engine's threads.
    std::atomic<bool> closing_{false};    // send() now returns -1
    std::atomic<int64_t> pending_{0};     // bytes of frames accepted by send(), not yet delivered
    std::atomic<bool> above_high_{false}; // pending_ went over queue_high_water

    // Strand state (and abandon(), once no io thread runs).
    cs_chat *chat_ = nullptr;
    bool chat_closed_ = false;
    bool closed_ = false;  // no more frames either way; close_code_/close_reason_ say why
    bool ended_ = false;   // removed: nothing more happens
    int close_code_ = 0;
    std::string close_reason_;
    std::deque<Event> events_;  // consecutive ids
    uint64_t next_id_ = 1;
    uint64_t delivered_id_ = 0;
    uint64_t delivered_bytes_ = 0;  // of the events up to delivered_id_ still kept
    std::weak_ptr<SseSink> sse_;
    SseSink *sse_key_ = nullptr;
    uint64_t sse_cursor_ = 0;  // last id handed to the SSE connection
    bool sse_in_flight_ = false;
    std::optional<Poll> poll_;
    bool poll_answer_posted_ = false;
    uint64_t poll_gen_ = 0;
    uint64_t idle_gen_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Fallback

bool Fallback::owns(std::string_view path) {
    return path == kCollection || path.substr(0, kSessionPrefix.size()) == kSessionPrefix;
}

bool Fallback::is_events(std::string_view method, std::string_view path) {
    Route r = route_of(path);
    return method == "GET" && r.valid && !r.id.empty() && r.action == "events";
}

std::shared_ptr<FallbackSession> Fallback::find(std::string_view id, std::string_view authorization) const {
    if (!is_session_id(id)) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(std::string(id));
    if (it == sessions_.end() || !same_secret(it->second->authorization(), authorization)) return nullptr;
    return it->second;
}

void Fallback::remove(const std::string &id) noexcept {
    std::shared_ptr<FallbackSession> gone;  // released outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    gone = std::move(it->second);
    sessions_.erase(it);
}

void Fallback::clear() {
    std::unordered_map<std::string, std::shared_ptr<FallbackSession>> gone;
    {
        std::lock_guard<std::mutex> lock(mu_);
        gone.swap(sessions_);
    }
}

std::size_t Fallback::size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sessions_.size();
}

void Fallback::create(const FallbackRequest &request, Respond respond) {
    ConnectionSlot slot;
    Admission why = core_.admit(std::string(request.address), slot);
    if (why != Admission::admitted) return respond(Core::refusal(why));

    std::shared_ptr<FallbackSession> session;
    for (int attempt = 0; attempt < 3 && !session; ++attempt) {
        auto id = new_session_id();
        if (!id) break;
        std::lock_guard<std::mutex> lock(mu_);
        if (sessions_.count(*id)) continue;  // 2^-128: only a broken generator gets here
        session = std::make_shared<FallbackSession>(core_, *id, std::string(request.authorization),
                                                    std::move(slot), std::string(request.peer));
        sessions_.emplace(*id, session);
    }
    if (!session) {
        core_.log(CS_LOG_ERROR, "fallback: no random session id (OpenSSL RAND_bytes failed)");
        return respond(FrontResponse::error(500, "internal", "could not create a session"));
    }

    FallbackSession::OpenParams p;
    std::string_view query;
    if (std::size_t q = request.target.find('?'); q != std::string_view::npos) query = request.target.substr(q);
    p.target = "/v1/chat" + std::string(query);
    p.authorization.assign(request.authorization);
    p.origin.assign(request.origin);
    p.headers.reserve(request.header_count);
    for (std::size_t i = 0; i < request.header_count; ++i)
        p.headers.emplace_back(std::string(to_sv(request.headers[i].name)),
                               std::string(to_sv(request.headers[i].value)));
    session->open(std::move(p), std::move(respond));
}

void Fallback::handle(const FallbackRequest &request, Respond respond) {
    Route route = route_of(target_path(request.target));
    if (!route.valid) return respond(FrontResponse::error(404, "not_found", "no such endpoint"));
    if (route.id.empty()) {
        if (request.method != "POST") return respond(method_not_allowed("POST"));
        return create(request, std::move(respond));
    }
    std::string_view allow = route.action.empty()          ? "DELETE"
                             : route.action == "frames"    ? "POST"
                             : route.action == "poll"      ? "GET"
                             : route.action == "events"    ? "GET"
                                                           : "";
    if (allow.empty()) return respond(FrontResponse::error(404, "not_found", "no such endpoint"));
    if (request.method != allow) return respond(method_not_allowed(allow));
    auto session = find(route.id, request.authorization);
    if (!session) return respond(no_session());

    if (route.action.empty()) return session->remove_by_client(std::move(respond));
    if (route.action == "frames") {
        if (request.body.size() > core_.opt.ws_max_message)
            return respond(FrontResponse::error(413, "frame_too_large",
                                                "a frame may be at most " +
                                                    std::to_string(core_.opt.ws_max_message) + " bytes"));
        return session->frame(std::string(request.body), std::move(respond));
    }
    // poll
    uint64_t after = 0;
    auto max_wait = static_cast<uint64_t>(core_.opt.fallback_max_wait.count());
    uint64_t wait = max_wait;
    if (auto v = query_param(request.target, "after"); v && !parse_u64(*v, after))
        return respond(FrontResponse::error(400, "invalid_parameter", "after: expected an event id (0 or more)"));
    if (auto v = query_param(request.target, "wait_ms"); v && !parse_u64(*v, wait))
        return respond(FrontResponse::error(400, "invalid_parameter", "wait_ms: expected milliseconds (0 or more)"));
    session->poll(after, std::chrono::milliseconds(std::min(wait, max_wait)), std::move(respond));
}

std::shared_ptr<SseSource> Fallback::find_for_events(const FallbackRequest &request, FrontResponse &error,
                                                     uint64_t &after) {
    Route route = route_of(target_path(request.target));
    auto session = find(route.id, request.authorization);
    if (!session) {
        error = no_session();
        return nullptr;
    }
    after = 0;
    std::string_view last = trim(request.last_event_id);
    if (!last.empty()) {
        if (!parse_u64(last, after)) {
            error = FrontResponse::error(400, "invalid_parameter", "Last-Event-ID: expected an event id");
            return nullptr;
        }
    } else if (auto v = query_param(request.target, "after"); v && !parse_u64(*v, after)) {
        error = FrontResponse::error(400, "invalid_parameter", "after: expected an event id (0 or more)");
        return nullptr;
    }
    return session;
}

}  // namespace consilium::beast_transport
