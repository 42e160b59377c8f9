// Routes of voice consultations (docs/voice.md).
#include "api/http_api.hpp"
#include "engine.hpp"

namespace consilium {

using json = nlohmann::json;

void HttpApi::add_voice_routes() {
    add("POST", "/v1/voice/session", kPatients, [this](HttpRequest &req) {
        json b = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
        if (!b.is_object()) return HttpResponse::error(400, "bad_json", "the body must be a JSON object");
        for (const char *k : {"consultation_id", "profile_id", "specialist", "locale"})
            if (b.contains(k) && !b[k].is_string()) return HttpResponse::error(400, "invalid_field", std::string(k) + ": a string");
        VoiceError error{};
        auto out = engine_.voice().mint(*req.who, b, error);
        if (!out) return HttpResponse::error(error.status, error.code, error.message);
        if (out->contains("consultation_id") && (*out)["consultation_id"].is_string())
            req.audit.target = "consultation:" + (*out)["consultation_id"].get<std::string>();
        return HttpResponse::json(201, *out);
    }, "voice.session");
    add("POST", "/v1/voice/transcript", kPatients, [this](HttpRequest &req) {
        // Transcripts of a browser's own WebRTC session, sent back to be kept with the
        // consultation: {consultation_id, specialist?, locale?, items: [{id, role, text}]}.
        json b = json::parse(req.body, nullptr, false);
        if (!b.is_object() || !b.contains("consultation_id") || !b["consultation_id"].is_string())
            return HttpResponse::error(400, "missing_field", "consultation_id: required");
        if (!b.contains("items") || !b["items"].is_array() || b["items"].empty() || b["items"].size() > 100)
            return HttpResponse::error(400, "invalid_field", "items: a list of 1 to 100 {id, role, text}");
        for (const auto &item : b["items"]) {
            if (!item.is_object() || !item.contains("id") || !item["id"].is_string() || item["id"].get<std::string>().empty() ||
                item["id"].get<std::string>().size() > 128 || !item.contains("text") || !item["text"].is_string() ||
                (item.value("role", "") != "patient" && item.value("role", "") != "specialist"))
                return HttpResponse::error(400, "invalid_field", "items: each {id, role: patient|specialist, text}");
            if (item["text"].get<std::string>().size() > 32000)
                return HttpResponse::error(413, "too_large", "items: text at most 32000 bytes");
        }
        req.audit.target = "consultation:" + b["consultation_id"].get<std::string>();
        json params = {{"consultation_id", b["consultation_id"]}};
        for (const char *k : {"specialist", "locale"})
            if (b.contains(k) && b[k].is_string()) params[k] = b[k];
        VoiceError error{};
        auto ctx = engine_.voice().prepare(*req.who, params, error);
        if (!ctx) return HttpResponse::error(error.status, error.code, error.message);
        json emergency = nullptr;
        for (const auto &item : b["items"]) {
            json e = engine_.voice().transcript(*req.who, *ctx, item["role"], item["id"], item["text"]);
            if (!e.is_null()) emergency = e;
        }
        // 202: the turns are being stored; they appear in the consultation's events.
        return HttpResponse::json(202, {{"accepted", b["items"].size()}, {"emergency", emergency}});
    }, "voice.transcript");
}

}  // namespace consilium
