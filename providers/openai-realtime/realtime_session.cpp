// providers/openai-realtime/realtime_session.cpp: see realtime_session.hpp.
#include "realtime_session.hpp"

#include <cctype>
#include <set>

namespace consilium::providers::realtime {

using sdk::Error;

namespace {

constexpr const char *kName = "openai_realtime";

Error invalid(const std::string &what) { return Error(CS_E_INVALID, std::string(kName) + ": voice request: " + what); }

std::string optional_string(const json &rq, const char *key) {
    auto it = rq.find(key);
    if (it == rq.end() || it->is_null()) return {};
    if (!it->is_string()) throw invalid(std::string(key) + " must be a string");
    return it->get<std::string>();
}

bool whole_number(const json &v) {
    if (v.is_number_integer() || v.is_number_unsigned()) return true;
    return v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()));
}

int64_t int_in(const json &v, const std::string &key, int64_t min, int64_t max) {
    if (!whole_number(v)) throw invalid(key + " must be an integer");
    int64_t n = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
    if (n < min || n > max)
        throw invalid(key + " must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
}

// The turn detection overrides the engine may send; everything else is refused.
const std::set<std::string> kTurnDetectionKeys = {"type",          "threshold",       "prefix_padding_ms",
                                                  "silence_duration_ms", "idle_timeout_ms", "create_response",
                                                  "interrupt_response",  "eagerness"};
const std::set<std::string> kServerVadOnly = {"threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"};

ojson turn_detection(const json &rq, const SessionDefaults &d) {
    auto it = rq.find("turn_detection");
    if (it != rq.end() && it->is_null()) return nullptr;  // explicitly off
    json over = json::object();
    if (it != rq.end()) {
        if (!it->is_object()) throw invalid("turn_detection must be an object or null");
        over = *it;
    }
    for (auto o = over.begin(); o != over.end(); ++o)
        if (!kTurnDetectionKeys.count(o.key())) throw invalid("turn_detection." + o.key().substr(0, 64) + ": unknown key");
    std::string type = "server_vad";
    if (over.contains("type")) {
        if (!over["type"].is_string()) throw invalid("turn_detection.type must be a string");
        type = over["type"].get<std::string>();
        if (type != "server_vad" && type != "semantic_vad")
            throw invalid("turn_detection.type must be server_vad or semantic_vad");
    }
    ojson td = ojson::object();
    td["type"] = type;
    if (type == "server_vad") {
        td["threshold"] = d.vad_threshold;
        td["prefix_padding_ms"] = d.vad_prefix_padding_ms;
        td["silence_duration_ms"] = d.vad_silence_duration_ms;
        if (over.contains("eagerness")) throw invalid("turn_detection.eagerness applies to semantic_vad only");
    } else {
        for (const auto &k : kServerVadOnly)
            if (over.contains(k)) throw invalid("turn_detection." + k + " applies to server_vad only");
    }
    for (auto o = over.begin(); o != over.end(); ++o) {
        const std::string &k = o.key();
        const json &v = o.value();
        std::string path = "turn_detection." + k;
        if (k == "type") continue;
        if (k == "threshold") {
            if (!v.is_number() || v.get<double>() < 0.0 || v.get<double>() > 1.0)
                throw invalid(path + " must be a number between 0 and 1");
            td[k] = v.get<double>();
        } else if (k == "prefix_padding_ms" || k == "silence_duration_ms") {
            td[k] = int_in(v, path, 0, 10000);
        } else if (k == "idle_timeout_ms") {
            if (v.is_null()) td[k] = nullptr;
            else td[k] = int_in(v, path, 0, 3600000);
        } else if (k == "create_response" || k == "interrupt_response") {
            if (!v.is_boolean()) throw invalid(path + " must be true or false");
            td[k] = v.get<bool>();
        } else if (k == "eagerness") {
            std::string e = v.is_string() ? v.get<std::string>() : "";
            if (e != "low" && e != "medium" && e != "high" && e != "auto")
                throw invalid(path + " must be low, medium, high or auto");
            td[k] = e;
        }
    }
    return td;
}

ojson transcription(const json &rq, const SessionDefaults &d) {
    auto it = rq.find("input_audio_transcription");
    if (it != rq.end() && it->is_null()) return nullptr;  // explicitly off
    ojson t = ojson::object();
    std::string model = d.transcription_model;
    if (it != rq.end()) {
        if (!it->is_object()) throw invalid("input_audio_transcription must be an object or null");
        for (auto o = it->begin(); o != it->end(); ++o) {
            const std::string &k = o.key();
            if (k != "model" && k != "language" && k != "prompt")
                throw invalid("input_audio_transcription." + k.substr(0, 64) + ": unknown key");
            if (!o.value().is_string()) throw invalid("input_audio_transcription." + k + " must be a string");
        }
        std::string m = it->value("model", "");
        if (!m.empty()) model = m;
    }
    if (model.empty()) return nullptr;
    t["model"] = model;
    if (it != rq.end()) {
        std::string language = it->value("language", "");
        std::string prompt = it->value("prompt", "");
        if (!language.empty()) t["language"] = language;
        if (!prompt.empty()) t["prompt"] = prompt;
    }
    return t;
}

}  // namespace

VoiceRequest parse_voice_request(const json &rq, const SessionDefaults &d) {
    VoiceRequest v;
    v.model = optional_string(rq, "model");
    if (v.model.empty()) throw invalid("model is missing");
    if (v.model.size() > 200) throw invalid("model is too long");
    v.instructions = optional_string(rq, "instructions");
    v.voice = optional_string(rq, "voice");
    if (v.voice.size() > 64) throw invalid("voice is too long");
    v.turn_detection = turn_detection(rq, d);
    v.transcription = transcription(rq, d);
    v.expires_after_s = d.expires_after_s;
    auto e = rq.find("expires_after_s");
    if (e != rq.end() && !e->is_null()) v.expires_after_s = int_in(*e, "expires_after_s", 10, 7200);
    return v;
}

ojson ga_session(const VoiceRequest &rq, bool with_model) {
    ojson s = ojson::object();
    s["type"] = "realtime";
    if (with_model) s["model"] = rq.model;
    if (!rq.instructions.empty()) s["instructions"] = rq.instructions;
    ojson input = ojson::object();
    input["turn_detection"] = rq.turn_detection;  // null switches VAD off, so it is always sent
    if (!rq.transcription.is_null()) input["transcription"] = rq.transcription;
    ojson audio = ojson::object();
    audio["input"] = std::move(input);
    if (!rq.voice.empty()) audio["output"] = ojson{{"voice", rq.voice}};
    s["audio"] = std::move(audio);
    return s;
}

ojson client_secret_body(const VoiceRequest &rq) {
    ojson body = ojson::object();
    body["expires_after"] = ojson{{"anchor", "created_at"}, {"seconds", rq.expires_after_s}};
    body["session"] = ga_session(rq, true);
    return body;
}

ojson session_update(const VoiceRequest &rq, bool beta) {
    ojson ev = ojson::object();
    ev["type"] = "session.update";
    if (!beta) {
        ev["session"] = ga_session(rq, false);
        return ev;
    }
    ojson s = ojson::object();
    if (!rq.instructions.empty()) s["instructions"] = rq.instructions;
    if (!rq.voice.empty()) s["voice"] = rq.voice;
    if (!rq.transcription.is_null()) s["input_audio_transcription"] = rq.transcription;
    s["turn_detection"] = rq.turn_detection;
    ev["session"] = std::move(s);
    return ev;
}

json map_client_secret_response(const json &r, const VoiceRequest &rq, const std::string &base_url) {
    auto bad = [](const std::string &what) {
        return Error(CS_E_IO, std::string(kName) + ": the client secret response " + what);
    };
    if (!r.is_object()) throw bad("is not a JSON object");
    auto value = r.find("value");
    if (value == r.end() || !value->is_string() || value->get<std::string>().empty()) throw bad("has no value");
    auto expires = r.find("expires_at");
    if (expires == r.end() || !whole_number(*expires)) throw bad("has no expires_at");
    std::string model = rq.model, voice = rq.voice;
    auto session = r.find("session");
    if (session != r.end() && session->is_object()) {
        if (session->contains("model") && (*session)["model"].is_string()) model = (*session)["model"].get<std::string>();
        const json *out = nullptr;
        if (session->contains("audio") && (*session)["audio"].is_object() && (*session)["audio"].contains("output"))
            out = &(*session)["audio"]["output"];
        if (out && out->is_object() && out->contains("voice") && (*out)["voice"].is_string())
            voice = (*out)["voice"].get<std::string>();
    }
    return json{{"client_secret", value->get<std::string>()},
                {"expires_at", expires->is_number_float() ? static_cast<int64_t>(expires->get<double>())
                                                          : expires->get<int64_t>()},
                {"model", model},
                {"voice", voice},
                {"webrtc_url", base_url + "/realtime/calls"}};
}

std::string percent_encode(std::string_view s) {
    static const char *hex = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

WsTarget ws_target(const std::string &base_url, const std::string &model) {
    WsTarget t;
    std::string rest;
    auto scheme_end = base_url.find("://");
    if (scheme_end == std::string::npos) throw Error(CS_E_INVALID, std::string(kName) + ": base_url has no scheme");
    std::string scheme = base_url.substr(0, scheme_end);
    for (auto &c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "https") t.tls = true;
    else if (scheme != "http") throw Error(CS_E_INVALID, std::string(kName) + ": base_url must be http:// or https://");
    rest = base_url.substr(scheme_end + 3);
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "" : rest.substr(slash);
    if (authority.find('@') != std::string::npos)
        throw Error(CS_E_INVALID, std::string(kName) + ": base_url must not carry credentials");
    if (authority.empty()) throw Error(CS_E_INVALID, std::string(kName) + ": base_url has no host");
    t.host_header = authority;
    std::string port;
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string::npos) throw Error(CS_E_INVALID, std::string(kName) + ": base_url has a bad IPv6 host");
        t.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
    } else {
        auto colon = authority.rfind(':');
        t.host = authority.substr(0, colon);
        if (colon != std::string::npos) port = authority.substr(colon + 1);
    }
    for (char c : port)
        if (!std::isdigit(static_cast<unsigned char>(c))) throw Error(CS_E_INVALID, std::string(kName) + ": base_url has a bad port");
    if (t.host.empty()) throw Error(CS_E_INVALID, std::string(kName) + ": base_url has no host");
    t.port = port.empty() ? (t.tls ? "443" : "80") : port;
    while (!path.empty() && path.back() == '/') path.pop_back();
    t.target = path + "/realtime?model=" + percent_encode(model);
    return t;
}

}  // namespace consilium::providers::realtime
