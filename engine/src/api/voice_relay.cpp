#include "api/voice_relay.hpp"

#include "engine.hpp"
#include "util/log.hpp"

namespace consilium {

using json = nlohmann::json;

namespace {
constexpr size_t kMaxVoiceFrame = 1 << 20;  // audio arrives base64-encoded in JSON frames
}

VoiceRelaySession::VoiceRelaySession(Engine &engine, const cs_chat_sink &sink, std::map<std::string, std::string> query)
    : engine_(engine), sink_(sink), query_(std::move(query)) {
    engine_.metrics().gauge("voice_relays", "Open voice relay connections").add(1);
}

VoiceRelaySession::~VoiceRelaySession() {
    engine_.metrics().gauge("voice_relays", "Open voice relay connections").add(-1);
}

void VoiceRelaySession::send(const std::string &text) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    sink_.send(sink_.ctx, cs_str{text.data(), text.size()});
}

void VoiceRelaySession::send_json(const json &j) { send(j.dump(-1, ' ', false, json::error_handler_t::replace)); }

void VoiceRelaySession::close_with(int code, const std::string &reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    sink_.close(sink_.ctx, code, cs_str{reason.data(), reason.size()});
}

void VoiceRelaySession::open(const std::string &bearer) {
    if (!bearer.empty()) {
        AuthFailure why;
        try {
            who_ = engine_.accounts().authenticate(bearer, why);
        } catch (const StorageError &) {
        }
        if (who_) {
            start();
            return;
        }
    }
    std::weak_ptr<VoiceRelaySession> weak = weak_from_this();
    auth_timer_ = engine_.executor().after(engine_.chat_settings().auth_timeout, [weak](bool cancelled) {
        if (cancelled) return;
        if (auto self = weak.lock(); self && !self->who_) self->close_with(4001, "authentication timeout");
    });
}

void VoiceRelaySession::start() {
    if (auth_timer_) engine_.executor().cancel(auth_timer_);
    auth_timer_ = 0;
    auto self = shared_from_this();
    // Storage reads and the provider's connect: off the transport's thread.
    engine_.executor().post([self] {
        json params = json::object();
        for (const char *k : {"consultation_id", "profile_id", "specialist", "locale"})
            if (self->query_.count(k)) params[k] = self->query_[k];
        VoiceError error{};
        auto ctx = self->engine_.voice().prepare(*self->who_, params, error);
        if (!ctx) {
            self->send_json({{"type", "consilium.error"}, {"code", error.code}, {"message", error.message}});
            self->close_with(error.status == 503 ? 1013 : 1008, error.code);
            return;
        }
        self->ctx_ = ctx;
        std::weak_ptr<VoiceRelaySession> weak = self;
        std::string problem;
        auto relay = self->engine_.voice().provider()->open_relay(
            ctx->request.dump(),
            [weak](std::string_view frame) {
                if (auto s = weak.lock()) s->on_provider_frame(frame);
            },
            [weak](int code, const std::string &reason) {
                if (auto s = weak.lock()) s->close_with(code == 1000 ? 1000 : 1011, reason.empty() ? "voice service closed" : "voice service closed");
            },
            problem);
        if (!relay) {
            log::error("voice", "relay refused by the voice provider");
            self->send_json({{"type", "consilium.error"}, {"code", "voice_provider_error"},
                             {"message", "the voice service refused the session; try again"}});
            self->close_with(1011, "voice provider error");
            return;
        }
        {
            std::lock_guard<std::mutex> lock(self->mu_);
            self->relay_ = relay;
        }
        const Persona &p = *ctx->persona;
        self->send_json({{"type", "consilium.ready"},
                         {"consultation_id", ctx->consultation->id()},
                         {"specialist", {{"id", p.id}, {"name", p.name}, {"title", p.title}}}});
    });
}

void VoiceRelaySession::on_provider_frame(std::string_view frame) {
    // Transcripts are stored as turns; everything is passed on unchanged.
    json e = json::parse(frame, nullptr, false);
    if (e.is_object() && ctx_) {
        std::string type = e.value("type", "");
        if (type == "conversation.item.input_audio_transcription.completed") {
            json emergency = engine_.voice().transcript(*who_, *ctx_, "patient", e.value("item_id", ""), e.value("transcript", ""));
            if (!emergency.is_null()) {
                send_json({{"type", "consilium.emergency"}, {"message", emergency["message"]}, {"numbers", emergency["numbers"]}});
                // Tell the model too, so its next words say so.
                std::shared_ptr<ProviderRelay> relay;
                bool tell_model = false;
                {
                    std::lock_guard<std::mutex> lock(mu_);
                    relay = relay_;
                    auto now = std::chrono::steady_clock::now();
                    if (now - last_warning_ > std::chrono::seconds(30)) {
                        tell_model = true;
                        last_warning_ = now;
                    }
                }
                if (relay && tell_model) {
                    json note = {{"type", "conversation.item.create"},
                                 {"item",
                                  {{"type", "message"},
                                   {"role", "system"},
                                   {"content", json::array({{{"type", "input_text"},
                                                             {"text", "Warning signs of an emergency were detected (" +
                                                                          emergency.value("label", std::string("red flags")) +
                                                                          "). Tell the patient clearly and briefly to call their "
                                                                          "emergency number or go to an emergency department now."}}})}}}};
                    relay->send(note.dump());
                }
            }
        } else if (type == "response.output_audio_transcript.done" || type == "response.output_text.done") {
            std::string text = e.value("transcript", e.value("text", ""));
            engine_.voice().transcript(*who_, *ctx_, "specialist", e.value("item_id", ""), text);
        }
    }
    send(std::string(frame));
}

void VoiceRelaySession::on_frame(std::string_view frame) {
    if (frame.size() > kMaxVoiceFrame) {
        send_json({{"type", "consilium.error"}, {"code", "too_large"}, {"message", "frames may be at most 1 MiB"}});
        return;
    }
    if (!who_) {
        json j = json::parse(frame, nullptr, false);
        if (j.is_object() && j.value("type", "") == "auth" && j.contains("token") && j["token"].is_string()) {
            AuthFailure why;
            try {
                who_ = engine_.accounts().authenticate(j["token"], why);
            } catch (const StorageError &) {
            }
            if (who_) {
                start();
                return;
            }
            send_json({{"type", "consilium.error"}, {"code", "unauthorized"}, {"message", why.message}});
            return;
        }
        send_json({{"type", "consilium.error"}, {"code", "unauthorized"}, {"message", "send {\"type\": \"auth\", \"token\"} first"}});
        return;
    }
    std::shared_ptr<ProviderRelay> relay;
    {
        std::lock_guard<std::mutex> lock(mu_);
        relay = relay_;
    }
    if (!relay) {
        send_json({{"type", "consilium.error"}, {"code", "not_ready"}, {"message", "wait for consilium.ready"}});
        return;
    }
    relay->send(frame);
}

void VoiceRelaySession::close() {
    std::shared_ptr<ProviderRelay> relay;
    {
        std::lock_guard<std::mutex> lock(mu_);
        closed_ = true;
        relay = relay_;
    }
    if (relay) relay->close();
}

}  // namespace consilium
