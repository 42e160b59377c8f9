#include "api/chat_session.hpp"

#include "consult/service.hpp"
#include "engine.hpp"
#include "persona/text.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"

namespace consilium {

using json = nlohmann::json;

namespace {

std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool is_id(const json &v, size_t max = 128) {
    if (!v.is_string()) return false;
    const auto &s = v.get_ref<const std::string &>();
    if (s.empty() || s.size() > max) return false;
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x21 || c == '"' || c == '\\') return false;
    return true;
}

}  // namespace

ChatSession::ChatSession(Engine &engine, const cs_chat_sink &sink, std::string peer, std::string transport)
    : engine_(engine), sink_(sink), peer_(std::move(peer)), transport_(std::move(transport)) {
    engine_.metrics().gauge("chat_sessions", "Open chat connections", {{"transport", transport_}}).add(1);
}

ChatSession::~ChatSession() {
    engine_.metrics().gauge("chat_sessions", "Open chat connections", {{"transport", transport_}}).add(-1);
}

void ChatSession::open(const std::string &bearer) {
    if (!bearer.empty()) {
        // A bad token on the upgrade: the connection stays usable for an auth frame.
        if (authenticate(bearer, "")) return;
    }
    std::weak_ptr<ChatSession> weak = weak_from_this();
    auth_timer_ = engine_.executor().after(engine_.chat_settings().auth_timeout, [weak](bool cancelled) {
        if (cancelled) return;
        auto self = weak.lock();
        if (!self || self->who_) return;
        self->close_with(4001, "authentication timeout");
    });
}

void ChatSession::close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
}

void ChatSession::on_drained(int64_t) {
    // Nothing is held back yet: frames go straight to the transport's bounded queue, which
    // closes a connection that cannot keep up (docs/protocol.md, "Slow readers").
}

void ChatSession::send_text(const std::string &text) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    sink_.send(sink_.ctx, cs_str{text.data(), text.size()});
}

void ChatSession::close_with(int code, const std::string &reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    sink_.close(sink_.ctx, code, cs_str{reason.data(), reason.size()});
}

void ChatSession::deliver(const std::shared_ptr<const std::string> &frame) { send_text(*frame); }

void ChatSession::reply(const json &frame) { send_text(dump(frame)); }

void ChatSession::send_error(const std::string &code, const std::string &message, const std::string &reply_to) {
    engine_.metrics().counter("chat_errors_total", "Error frames sent, by code", {{"code", code}}).add(1);
    reply(ConsultationService::error_frame(code, message, reply_to));
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
    who_ = who;
    if (auth_timer_) engine_.executor().cancel(auth_timer_);
    auth_timer_ = 0;
    reply({{"type", "ready"}, {"account", {{"id", who->account_id}, {"guest", who->guest}}}});
    return true;
}

void ChatSession::on_frame(std::string_view frame) {
    const auto &cfg = engine_.chat_settings();
    if (frame.size() > cfg.max_frame_bytes) {
        send_error("too_large", "frames may be at most " + std::to_string(cfg.max_frame_bytes) + " bytes");
        return;
    }
    if (!text::valid_utf8(frame)) {
        send_error("bad_json", "frames must be UTF-8 JSON text");
        return;
    }
    json j = json::parse(frame, nullptr, false);
    if (j.is_discarded()) {
        send_error("bad_json", "the frame is not valid JSON");
        return;
    }
    if (!j.is_object()) {
        send_error("bad_frame", "a frame is a JSON object with a \"type\"");
        return;
    }
    try {
        handle(j);
    } catch (const std::exception &e) {
        log::error("chat", "frame handling failed", {{"why", e.what()}});
        send_error("internal", "internal error");
    }
}

void ChatSession::handle(const json &j) {
    auto t = j.find("type");
    if (t == j.end() || !t->is_string()) {
        send_error("missing_field", "type: required (a string)");
        return;
    }
    const std::string &type = t->get_ref<const std::string &>();
    std::string reply_to = j.contains("id") && is_id(j["id"]) ? j["id"].get<std::string>() : "";

    if (type == "ping") {
        reply({{"type", "pong"}});
        return;
    }
    if (type == "auth") {
        if (!j.contains("token") || !j["token"].is_string() || j["token"].get<std::string>().empty()) {
            send_error("missing_field", "token: required (the access token)");
            return;
        }
        authenticate(j["token"], reply_to);
        return;
    }
    if (type != "message" && type != "cancel" && type != "resume") {
        send_error("unknown_type", "unknown frame type '" + type.substr(0, 40) + "'", reply_to);
        return;
    }
    if (!who_) {
        send_error("unauthorized", "send {\"type\": \"auth\", \"token\"} first", reply_to);
        return;
    }
    auto &svc = engine_.service();
    auto self = shared_from_this();
    const auto &cfg = engine_.chat_settings();

    if (type == "message") {
        if (!j.contains("id")) {
            send_error("missing_field", "id: required (your idempotency key)");
            return;
        }
        if (!is_id(j["id"])) {
            send_error("invalid_field", "id: a string of 1 to 128 printable characters");
            return;
        }
        if (!j.contains("text") || !j["text"].is_string()) {
            send_error("missing_field", "text: required (a string)", reply_to);
            return;
        }
        Incoming in;
        in.client_id = j["id"];
        in.text = j["text"];
        size_t chars = text::count_code_points(in.text);
        if (chars == 0 || in.text.find_first_not_of(" \t\r\n") == std::string::npos) {
            send_error("invalid_field", "text: must not be empty", reply_to);
            return;
        }
        if (chars > cfg.max_text_chars) {
            send_error("too_large", "text: at most " + std::to_string(cfg.max_text_chars) + " characters", reply_to);
            return;
        }
        for (const char *k : {"consultation_id", "profile_id", "specialist"}) {
            if (!j.contains(k) || j[k].is_null()) continue;
            if (!is_id(j[k])) {
                send_error("invalid_field", std::string(k) + ": must be an id string", reply_to);
                return;
            }
        }
        in.consultation_id = j.value("consultation_id", "");
        in.profile_id = j.value("profile_id", "");
        in.specialist = j.value("specialist", "");
        if (j.contains("locale")) {
            if (!is_id(j["locale"], 35)) {
                send_error("invalid_field", "locale: a language tag such as en or pt-BR", reply_to);
                return;
            }
            in.locale = j["locale"];
        }
        if (j.contains("attachments") && !j["attachments"].is_null()) {
            const json &atts = j["attachments"];
            if (!atts.is_array() || atts.size() > cfg.max_attachments) {
                send_error("invalid_field", "attachments: a list of at most " + std::to_string(cfg.max_attachments), reply_to);
                return;
            }
            for (const auto &a : atts) {
                std::string at = a.is_object() ? a.value("type", "") : "";
                std::string mt = a.is_object() ? a.value("media_type", "") : "";
                bool image = at == "image" && (mt == "image/jpeg" || mt == "image/png" || mt == "image/gif" || mt == "image/webp");
                bool pdf = at == "document" && mt == "application/pdf";
                if (!image && !pdf) {
                    send_error("invalid_field", "attachments: each is {type: image|document, media_type, data}", reply_to);
                    return;
                }
                if (!a.contains("data") || !a["data"].is_string()) {
                    send_error("invalid_field", "attachments: data must be base64", reply_to);
                    return;
                }
                auto raw = base64_decode(a["data"].get<std::string>());
                if (!raw || raw->size() > cfg.max_attachment_bytes) {
                    send_error("invalid_field", "attachments: data must be base64 of at most " +
                                                    std::to_string(cfg.max_attachment_bytes) + " bytes", reply_to);
                    return;
                }
                in.attachments.push_back({{"type", at}, {"media_type", mt}, {"data", a["data"]}});
            }
        }
        svc.submit(*who_, std::move(in), self);
        return;
    }
    if (type == "cancel") {
        if (!j.contains("stream_id") || !is_id(j["stream_id"])) {
            send_error("missing_field", "stream_id: required", reply_to);
            return;
        }
        svc.cancel(*who_, j["stream_id"], self);
        return;
    }
    // resume
    if (!j.contains("consultation_id") || !is_id(j["consultation_id"])) {
        send_error("missing_field", "consultation_id: required", reply_to);
        return;
    }
    int64_t after = 0;
    if (j.contains("after_seq")) {
        if (!j["after_seq"].is_number_integer() || j["after_seq"].get<int64_t>() < 0) {
            send_error("invalid_field", "after_seq: a non-negative integer", reply_to);
            return;
        }
        after = j["after_seq"];
    }
    svc.resume(*who_, j["consultation_id"], after, self);
}

}  // namespace consilium
