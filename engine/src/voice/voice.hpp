// Voice consultations (docs/voice.md). A voice session belongs to a consultation and a persona:
// the persona's prompt (in its spoken form), its voice, server VAD and input transcription go to
// the realtime provider, which either mints a short-lived credential for the browser's own
// WebRTC session (POST /v1/voice/session) or carries a relay (WebSocket /v1/voice/relay). Either
// way the turns are stored in the consultation from their transcripts, like chat turns, and the
// patient's words are checked for red flags.
#pragma once

#include "connector/connector.hpp"
#include "consult/consultation.hpp"
#include "persona/persona.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace consilium {

class Engine;

struct VoiceSettings {
    std::string model_alias;                        // "" = voice disabled
    int64_t expires_after_s = 600;
    std::string transcription_model = "gpt-4o-transcribe";
};

struct VoiceContext {
    std::shared_ptr<Consultation> consultation;
    std::shared_ptr<const Panel> panel;  // keeps persona alive
    const Persona *persona = nullptr;
    nlohmann::json request;              // for the provider (ABI 1.1 voice request)
    std::string locale;
};

struct VoiceError {
    int status;  // HTTP status
    std::string code;
    std::string message;
};

class VoiceService {
public:
    VoiceService(Engine &engine, VoiceSettings settings);

    // Resolves the consultation (own or new), the persona and the provider request from
    // {consultation_id?, profile_id?, specialist?, locale?}.
    std::optional<VoiceContext> prepare(const Principal &who, const nlohmann::json &params, VoiceError &error);
    // POST /v1/voice/session.
    std::optional<nlohmann::json> mint(const Principal &who, const nlohmann::json &params, VoiceError &error);
    // A transcript item of a voice conversation: stored, and for the patient's words checked
    // for red flags. Returns the emergency to show ({message, numbers, flags}) or null.
    nlohmann::json transcript(const Principal &who, const VoiceContext &ctx, const std::string &role,
                              const std::string &item_id, const std::string &text);
    std::shared_ptr<ProviderClient> provider() const;
    bool available() const { return provider() != nullptr; }

private:
    Engine &engine_;
    VoiceSettings settings_;
};

}  // namespace consilium
