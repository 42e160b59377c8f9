// providers/openai-realtime/realtime_session.hpp: what the "openai_realtime" plugin sends and
// reads, Beast-free and curl-free: the engine's voice request (abi.h, ABI 1.1) validated, the GA
// session object built from it (for POST /realtime/client_secrets and for the relay's first
// `session.update`), the mapping of the client-secret response, and the relay's WebSocket URL.
//
// Shapes: ../shared/protocols/openai_realtime/ (client_secret_request*.json,
// constructed/client_secret_request_full.json, client_secret_response.json, spec_examples_fixed/
// ga_client); the beta shapes only for the relay's `beta` option (beta_vs_ga_event_names.md).
#pragma once

#include <consilium/sdk/provider.hpp>

#include <cstdint>
#include <string>

namespace consilium::providers::realtime {

using sdk::json;
using ojson = nlohmann::ordered_json;

// The instance's options that fill in what a request leaves out.
struct SessionDefaults {
    std::string transcription_model;  // "" = no input transcription unless the request asks
    int64_t expires_after_s = 600;
    double vad_threshold = 0.5;
    int64_t vad_prefix_padding_ms = 300;
    int64_t vad_silence_duration_ms = 500;
};

// One voice request, validated and completed with the defaults.
struct VoiceRequest {
    std::string model;
    std::string instructions;  // "" = none sent
    std::string voice;         // "" = the service's default
    ojson turn_detection;      // an object, or null (no VAD: the client commits the audio itself)
    ojson transcription;       // {"model", "language"?, "prompt"?}, or null (none)
    int64_t expires_after_s = 600;
};

// Validates the request {"model", "instructions"?, "voice"?, "turn_detection"?: {...} | null,
// "input_audio_transcription"?: {"model", "language"?, "prompt"?} | null, "expires_after_s"?}.
// Keys the plugin does not know are ignored (the engine may send more); known keys with a wrong
// type or value are refused. Throws sdk::Error(CS_E_INVALID) naming the key, never its value.
VoiceRequest parse_voice_request(const json &request, const SessionDefaults &defaults);

// The GA session object {"type": "realtime", "model"?, "instructions", "audio": {...}}.
ojson ga_session(const VoiceRequest &rq, bool with_model);
// The body of POST /realtime/client_secrets: {"expires_after", "session"}.
ojson client_secret_body(const VoiceRequest &rq);
// The relay's first frame: a GA `session.update`, or with beta the beta shape (session.voice,
// session.input_audio_transcription, session.turn_detection at the top of the session).
ojson session_update(const VoiceRequest &rq, bool beta);

// Maps the response of POST /realtime/client_secrets ({value, expires_at, session}) to what
// voice_session returns: {"client_secret", "expires_at", "model", "voice", "webrtc_url"}.
// Throws sdk::Error(CS_E_IO) when the response is not that shape.
json map_client_secret_response(const json &response, const VoiceRequest &rq, const std::string &base_url);

// Where the relay connects: base_url (http[s]://host[:port][/path]) as ws[s]://, with
// /realtime?model=<model, percent-encoded>.
struct WsTarget {
    bool tls = false;
    std::string host;         // for DNS, SNI and certificate checks (no brackets for IPv6)
    std::string port;         // "443", "80" or the URL's
    std::string host_header;  // the Host header: host[:port] as written in the URL
    std::string target;       // "/v1/realtime?model=gpt-realtime"
};
WsTarget ws_target(const std::string &base_url, const std::string &model);

std::string percent_encode(std::string_view s);

}  // namespace consilium::providers::realtime
