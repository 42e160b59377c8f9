#include "api/chat_session.hpp"

#include "consult/service.hpp"
#include "engine.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"

#include <algorithm>

namespace consilium {

using json = nlohmann::json;
using namespace std::chrono;

namespace {

std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t now_ms() { return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count(); }

}  // namespace

ChatSession::ChatSession(Engine &engine, const cs_chat_sink &sink, std::string peer, std::string transport)
    : engine_(engine), sink_(sink), peer_(std::move(peer)), transport_(std::move(transport)) {
    engine_.metrics().gauge("chat_sessions", "Open chat connections", {{"transport", transport_}}).add(1);
    last_frame_ms_ = now_ms();
    const auto &l = engine_.chat_settings().limits;
    // The byte bucket always holds at least one largest frame, or such a frame could never pass.
    byte_bucket_ = TokenBucket(l.bytes_per_minute,
                               std::max(burst_for(l.bytes_per_minute, l.burst_fraction),
                                        static_cast<double>(engine_.chat_settings().frames.max_frame_bytes)));
    // Before authentication the message bucket is the guests'; authenticate() sets the account's.
    message_bucket_ = TokenBucket(l.guest_messages_per_minute, burst_for(l.guest_messages_per_minute, l.burst_fraction));
}

ChatSession::~ChatSession() {
    engine_.metrics().gauge("chat_sessions", "Open chat connections", {{"transport", transport_}}).add(-1);
}

void ChatSession::open(const std::string &bearer) {
    const auto &cfg = engine_.chat_settings();
    // Browsers send Origin: refuse pages that are not ours (non-browser clients send none).
    if (!cfg.allowed_origins.empty() && !origin_.empty() &&
        std::find(cfg.allowed_origins.begin(), cfg.allowed_origins.end(), origin_) == cfg.allowed_origins.end()) {
        engine_.metrics().counter("chat_refused_total", "Chat connections refused", {{"reason", "origin"}}).add(1);
        close_with(4003, "origin not allowed");
        return;
    }
    arm_idle_timer();
    if (!bearer.empty()) {
        // A bad token on the upgrade: the connection stays usable for an auth frame.
        if (authenticate(bearer, "")) return;
    }
    std::weak_ptr<ChatSession> weak = weak_from_this();
    auth_timer_ = engine_.executor().after(cfg.auth_timeout, [weak](bool cancelled) {
        if (cancelled) return;
        auto self = weak.lock();
        if (!self) return;
        {
            std::lock_guard<std::mutex> lock(self->mu_);
            if (self->who_) return;
        }
        self->close_with(4001, "authentication timeout");
    });
}

void ChatSession::arm_idle_timer() {
    const auto idle = engine_.chat_settings().idle_timeout;
    auto check = std::min<milliseconds>(idle, milliseconds(30000));
    std::weak_ptr<ChatSession> weak = weak_from_this();
    idle_timer_ = engine_.executor().after(check, [weak, idle](bool cancelled) {
        if (cancelled) return;
        auto self = weak.lock();
        if (!self) return;
        {
            std::lock_guard<std::mutex> lock(self->mu_);
            if (self->closed_) return;
        }
        if (now_ms() - self->last_frame_ms_ >= idle.count()) {
            self->close_with(4002, "idle");
            return;
        }
        self->arm_idle_timer();
    });
}

void ChatSession::close() {
    std::string account;
    {
        std::lock_guard<std::mutex> lock(mu_);
        closed_ = true;
        merged_.reset();
        if (who_) account = who_->account_id;
    }
    if (!account.empty()) engine_.unregister_chat(account, this);
}

void ChatSession::send_locked(const std::string &text) {
    if (closed_) return;
    int64_t q = sink_.send(sink_.ctx, cs_str{text.data(), text.size()});
    if (q >= 0) queued_ = q;
}

void ChatSession::send_text(const std::string &text) {
    std::lock_guard<std::mutex> lock(mu_);
    flush_merged_locked();
    send_locked(text);
}

void ChatSession::flush_merged_locked() {
    if (!merged_) return;
    json j = {{"type", "stream_chunk"}, {"consultation_id", merged_->consultation_id}, {"seq", merged_->seq},
              {"stream_id", merged_->stream_id}, {"text", merged_->text}};
    if (merged_->seq_from != merged_->seq) j["seq_from"] = merged_->seq_from;
    merged_.reset();
    send_locked(dump(j));
}

void ChatSession::close_with(int code, const std::string &reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    sink_.close(sink_.ctx, code, cs_str{reason.data(), reason.size()});
}

void ChatSession::deliver(const std::shared_ptr<const std::string> &frame) {
    const auto &cfg = engine_.chat_settings();
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    // Congested: consecutive chunks of one stream become one frame (seq_from..seq), so a slow
    // reader costs fewer, larger frames instead of an ever longer queue.
    if (queued_ > cfg.merge_above_bytes && frame->find("\"type\":\"stream_chunk\"") != std::string::npos) {
        json e = json::parse(*frame, nullptr, false);
        if (e.is_object() && e.value("type", "") == "stream_chunk") {
            std::string sid = e.value("stream_id", "");
            int64_t seq = e.value("seq", int64_t{0});
            if (merged_ && merged_->stream_id == sid && merged_->seq + 1 == seq) {
                merged_->seq = seq;
                merged_->text += e.value("text", "");
            } else {
                flush_merged_locked();
                merged_ = Merged{e.value("consultation_id", ""), sid, seq, seq, e.value("text", "")};
            }
            engine_.metrics().counter("chat_chunks_merged_total", "Chunks held back and merged for slow readers").add(1);
            if (!flush_scheduled_) {
                // Without a drain notice from the transport, send what was merged a moment later.
                flush_scheduled_ = true;
                std::weak_ptr<ChatSession> weak = weak_from_this();
                engine_.executor().after(milliseconds(100), [weak](bool) {
                    if (auto self = weak.lock()) {
                        std::lock_guard<std::mutex> l(self->mu_);
                        self->flush_scheduled_ = false;
                        self->flush_merged_locked();
                    }
                });
            }
            return;
        }
    }
    flush_merged_locked();
    send_locked(*frame);
}

void ChatSession::on_drained(int64_t queued_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    queued_ = queued_bytes;
    flush_merged_locked();
}

void ChatSession::reply(const json &frame) { send_text(dump(frame)); }

std::string ChatSession::session_id() {
    std::lock_guard<std::mutex> lock(mu_);
    return who_ ? who_->session : std::string();
}

void ChatSession::send_error(const std::string &code, const std::string &message, const std::string &reply_to,
                             int64_t retry_after_ms) {
    engine_.metrics().counter("chat_errors_total", "Error frames sent, by code", {{"code", code}}).add(1);
    json f = ConsultationService::error_frame(code, message, reply_to);
    if (retry_after_ms >= 0) f["retry_after_ms"] = retry_after_ms;
    reply(f);
}

bool ChatSession::authenticate(const std::string &token, const std::string &reply_to) {
    AuthFailure why;
    std::optional<Principal> who;
    try {
        who = engine_.accounts().authenticate(token, why);
    } catch (const StorageError &) {
        send_error("storage_unavailable", "could not check the token; try again", reply_to);
        return false;
    }
    if (!who) {
        send_error("unauthorized", why.message, reply_to);
        return false;
    }
    who->peer = peer_;
    {
        std::lock_guard<std::mutex> lock(mu_);
        who_ = who;
    }
    engine_.register_chat(*who, shared_from_this());
    const auto &l = engine_.chat_settings().limits;
    double per_minute = who->guest ? l.guest_messages_per_minute : l.messages_per_minute;
    message_bucket_ = TokenBucket(per_minute, burst_for(per_minute, l.burst_fraction));
    if (auth_timer_) engine_.executor().cancel(auth_timer_);
    auth_timer_ = 0;
    reply({{"type", "ready"}, {"account", {{"id", who->account_id}, {"guest", who->guest}}}});
    return true;
}

bool ChatSession::within_limits(size_t bytes, bool is_message, const std::string &reply_to) {
    const auto &l = engine_.chat_settings().limits;
    auto now = TokenBucket::Clock::now();
    int64_t retry = 0;
    bool ok = byte_bucket_.take(static_cast<double>(bytes), now, retry);
    if (ok && is_message && who_) {
        ok = message_bucket_.take(1, now, retry) && engine_.account_limiter().take_message(*who_, retry);
    }
    if (ok) {
        violations_ = 0;
        return true;
    }
    engine_.metrics().counter("chat_rate_limited_total", "Frames refused by rate limits").add(1);
    if (++violations_ >= l.close_after_violations) {
        close_with(1008, "rate limit exceeded repeatedly");
        return false;
    }
    send_error("rate_limited", "too many messages; wait and send again", reply_to, std::max<int64_t>(retry, 1));
    return false;
}

void ChatSession::on_frame(std::string_view frame) {
    last_frame_ms_ = now_ms();
    auto parsed = parse_client_frame(frame, engine_.chat_settings().frames);
    if (auto *e = std::get_if<FrameError>(&parsed)) {
        if (!within_limits(frame.size(), false, e->reply_to)) return;
        send_error(e->code, e->message, e->reply_to);
        return;
    }
    ClientFrame &f = std::get<ClientFrame>(parsed);
    if (!within_limits(frame.size(), f.type == ClientFrame::Type::message, f.reply_to)) return;
    try {
        dispatch(f);
    } catch (const std::exception &ex) {
        log::error("chat", "frame handling failed", {{"why", ex.what()}});
        send_error("internal", "internal error");
    }
}

void ChatSession::dispatch(ClientFrame &f) {
    switch (f.type) {
    case ClientFrame::Type::ping:
        reply({{"type", "pong"}});
        return;
    case ClientFrame::Type::auth:
        authenticate(f.token, f.reply_to);
        return;
    default:
        break;
    }
    if (!who_) {
        send_error("unauthorized", "send {\"type\": \"auth\", \"token\"} first", f.reply_to);
        return;
    }
    auto &svc = engine_.service();
    auto self = shared_from_this();
    switch (f.type) {
    case ClientFrame::Type::message: svc.submit(*who_, std::move(f.message), self); return;
    case ClientFrame::Type::cancel: svc.cancel(*who_, f.stream_id, self); return;
    case ClientFrame::Type::resume: svc.resume(*who_, f.consultation_id, f.after_seq, self); return;
    default: return;
    }
}

}  // namespace consilium
