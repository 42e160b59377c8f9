#include "api/frames.hpp"

#include "persona/text.hpp"
#include "util/ids.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace consilium {

using json = nlohmann::json;

namespace {

bool is_id(const json &v, size_t max = 128) {
    if (!v.is_string()) return false;
    const auto &s = v.get_ref<const std::string &>();
    if (s.empty() || s.size() > max) return false;
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x21 || c == '"' || c == '\\') return false;
    return true;
}

FrameError err(std::string code, std::string message, std::string reply_to = "") {
    return {std::move(code), std::move(message), std::move(reply_to)};
}

std::variant<ClientFrame, FrameError> parse_message(const json &j, const FrameLimits &limits, ClientFrame f) {
    if (!j.contains("id")) return err("missing_field", "id: required (your idempotency key)");
    if (!is_id(j["id"])) return err("invalid_field", "id: a string of 1 to 128 printable characters");
    const std::string &rt = f.reply_to;
    if (!j.contains("text") || !j["text"].is_string()) return err("missing_field", "text: required (a string)", rt);
    Incoming &in = f.message;
    in.client_id = j["id"];
    in.text = j["text"];
    size_t chars = text::count_code_points(in.text);
    if (chars == 0 || in.text.find_first_not_of(" \t\r\n") == std::string::npos)
        return err("invalid_field", "text: must not be empty", rt);
    if (chars > limits.max_text_chars)
        return err("too_large", "text: at most " + std::to_string(limits.max_text_chars) + " characters", rt);
    for (const char *k : {"consultation_id", "profile_id", "specialist"}) {
        if (!j.contains(k) || j[k].is_null()) continue;
        if (!is_id(j[k])) return err("invalid_field", std::string(k) + ": must be an id string", rt);
    }
    // Checked above: each is absent, null or an id string (value() would throw on null).
    auto optional_id = [&](const char *k) {
        return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
    };
    in.consultation_id = optional_id("consultation_id");
    in.profile_id = optional_id("profile_id");
    in.specialist = optional_id("specialist");
    if (j.contains("locale") && !j["locale"].is_null()) {
        if (!is_id(j["locale"], 35)) return err("invalid_field", "locale: a language tag such as en or pt-BR", rt);
        in.locale = j["locale"];
    }
    if (j.contains("attachments") && !j["attachments"].is_null()) {
        const json &atts = j["attachments"];
        if (!atts.is_array() || atts.size() > limits.max_attachments)
            return err("invalid_field", "attachments: a list of at most " + std::to_string(limits.max_attachments), rt);
        for (const auto &a : atts) {
            std::string at = a.is_object() && a.contains("type") && a["type"].is_string() ? a["type"].get<std::string>() : "";
            std::string mt = a.is_object() && a.contains("media_type") && a["media_type"].is_string()
                                 ? a["media_type"].get<std::string>()
                                 : "";
            bool image = at == "image" && (mt == "image/jpeg" || mt == "image/png" || mt == "image/gif" || mt == "image/webp");
            bool pdf = at == "document" && mt == "application/pdf";
            if (!image && !pdf)
                return err("invalid_field", "attachments: each is {type: image|document, media_type, data}", rt);
            if (!a.contains("data") || !a["data"].is_string()) return err("invalid_field", "attachments: data must be base64", rt);
            auto raw = base64_decode(a["data"].get<std::string>());
            if (!raw || raw->size() > limits.max_attachment_bytes)
                return err("invalid_field",
                           "attachments: data must be base64 of at most " + std::to_string(limits.max_attachment_bytes) + " bytes",
                           rt);
            in.attachments.push_back({{"type", at}, {"media_type", mt}, {"data", a["data"]}});
        }
    }
    f.type = ClientFrame::Type::message;
    return f;
}

}  // namespace

std::variant<ClientFrame, FrameError> parse_client_frame(std::string_view frame, const FrameLimits &limits) {
    if (frame.size() > limits.max_frame_bytes)
        return err("too_large", "frames may be at most " + std::to_string(limits.max_frame_bytes) + " bytes");
    if (!text::valid_utf8(frame)) return err("bad_json", "frames must be UTF-8 JSON text");
    json j = json::parse(frame, nullptr, false);
    if (j.is_discarded()) return err("bad_json", "the frame is not valid JSON");
    if (!j.is_object()) return err("bad_frame", "a frame is a JSON object with a \"type\"");
    auto t = j.find("type");
    if (t == j.end() || !t->is_string()) return err("missing_field", "type: required (a string)");
    const std::string &type = t->get_ref<const std::string &>();
    ClientFrame f;
    if (j.contains("id") && is_id(j["id"])) f.reply_to = j["id"];

    if (type == "ping") {
        f.type = ClientFrame::Type::ping;
        return f;
    }
    if (type == "auth") {
        if (!j.contains("token") || !j["token"].is_string() || j["token"].get<std::string>().empty())
            return err("missing_field", "token: required (the access token)");
        f.type = ClientFrame::Type::auth;
        f.token = j["token"];
        return f;
    }
    if (type == "message") return parse_message(j, limits, std::move(f));
    if (type == "cancel") {
        if (!j.contains("stream_id") || !is_id(j["stream_id"])) return err("missing_field", "stream_id: required", f.reply_to);
        f.type = ClientFrame::Type::cancel;
        f.stream_id = j["stream_id"];
        return f;
    }
    if (type == "resume") {
        if (!j.contains("consultation_id") || !is_id(j["consultation_id"]))
            return err("missing_field", "consultation_id: required", f.reply_to);
        if (j.contains("after_seq")) {
            if (!j["after_seq"].is_number_integer() || j["after_seq"].get<int64_t>() < 0)
                return err("invalid_field", "after_seq: a non-negative integer", f.reply_to);
            f.after_seq = j["after_seq"];
        }
        f.type = ClientFrame::Type::resume;
        f.consultation_id = j["consultation_id"];
        return f;
    }
    // At most 40 bytes of the type, cut on a code point boundary so the message stays UTF-8.
    size_t cut = std::min<size_t>(type.size(), 40);
    while (cut < type.size() && (static_cast<unsigned char>(type[cut]) & 0xC0) == 0x80) --cut;
    return err("unknown_type", "unknown frame type '" + type.substr(0, cut) + "'", f.reply_to);
}

}  // namespace consilium
