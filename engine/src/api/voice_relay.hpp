// A voice relay connection (WebSocket /v1/voice/relay) for clients that cannot open WebRTC to
// the realtime service themselves. After authentication (the upgrade's bearer token or a first
// {"type": "auth", "token"} frame) the engine opens a relay through the voice provider and
// forwards realtime events both ways, unchanged; it reads the transcripts that pass to store the
// turns in the consultation and checks the patient's words for red flags. Its own frames are
// namespaced: consilium.ready, consilium.emergency, consilium.error.
#pragma once

#include "api/chat_session.hpp"
#include "voice/voice.hpp"

#include <map>
#include <mutex>
#include <optional>

namespace consilium {

class VoiceRelaySession : public FrontSession, public std::enable_shared_from_this<VoiceRelaySession> {
public:
    VoiceRelaySession(Engine &engine, const cs_chat_sink &sink, std::map<std::string, std::string> query);
    ~VoiceRelaySession() override;

    void open(const std::string &bearer_token) override;
    void on_frame(std::string_view frame) override;
    void close() override;

private:
    void start();
    void send(const std::string &text);
    void send_json(const nlohmann::json &j);
    void close_with(int code, const std::string &reason);
    void on_provider_frame(std::string_view frame);

    Engine &engine_;
    std::mutex mu_;
    cs_chat_sink sink_;
    bool closed_ = false;
    std::map<std::string, std::string> query_;
    std::optional<Principal> who_;
    std::optional<VoiceContext> ctx_;
    std::shared_ptr<ProviderRelay> relay_;
    TimerId auth_timer_ = 0;
    std::chrono::steady_clock::time_point last_warning_{};  // the model is told at most every 30 s
};

}  // namespace consilium
