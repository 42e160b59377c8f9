// Fuzzes parse_client_frame (engine/src/api/frames.hpp): every input either parses into a frame
// that satisfies the protocol's promises or yields a documented error, and nothing throws.
// Run twice per input: with small limits (so the too_large and attachment paths are reached)
// and with the defaults; a JSON object input is also run with each member's type swapped.
#include "api/frames.hpp"
#include "persona/text.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <variant>

namespace {

using consilium::ClientFrame;
using consilium::FrameError;
using consilium::FrameLimits;
namespace text = consilium::text;
using json = nlohmann::json;

void check(bool ok, const char *what) {
    if (ok) return;
    std::fprintf(stderr, "fuzz_client_frame: invariant violated: %s\n", what);
    __builtin_trap();
}

// What the chat session does with an error: a JSON frame dumped with invalid UTF-8 replaced.
void check_error(const FrameError &e) {
    const std::string_view c = e.code;
    check(c == "bad_json" || c == "bad_frame" || c == "missing_field" || c == "invalid_field" ||
              c == "unknown_type" || c == "too_large",
          "FrameError code is one of the documented ones");
    check(!e.message.empty(), "FrameError message is not empty");
    check(text::valid_utf8(e.message), "FrameError message is valid UTF-8");
    check(text::valid_utf8(e.reply_to), "FrameError reply_to is valid UTF-8");
    std::string out;
    try {
        json j = {{"type", "error"}, {"code", e.code}, {"message", e.message}};
        if (!e.reply_to.empty()) j["reply_to"] = e.reply_to;
        out = j.dump(-1, ' ', false, json::error_handler_t::replace);
    } catch (...) {
        check(false, "dumping the error frame does not throw");
    }
    check(text::valid_utf8(out), "the dumped error frame is valid UTF-8");
}

bool id_like(const std::string &s, size_t max) {
    if (s.empty() || s.size() > max) return false;
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x21 || c == '"' || c == '\\') return false;
    return text::valid_utf8(s);
}

void check_frame(std::string_view input, const ClientFrame &f, const FrameLimits &limits) {
    check(input.size() <= limits.max_frame_bytes, "an accepted frame is within max_frame_bytes");
    check(text::valid_utf8(input), "an accepted frame is UTF-8");
    check(f.reply_to.empty() || id_like(f.reply_to, 128), "reply_to is an id");
    switch (f.type) {
    case ClientFrame::Type::ping:
        break;
    case ClientFrame::Type::auth:
        check(!f.token.empty() && text::valid_utf8(f.token), "auth has a non-empty UTF-8 token");
        break;
    case ClientFrame::Type::message: {
        const auto &m = f.message;
        check(id_like(m.client_id, 128), "message has a client_id of 1-128 printable characters");
        check(m.client_id == f.reply_to, "a message replies to its own id");
        check(!m.text.empty() && text::valid_utf8(m.text), "message text is non-empty UTF-8");
        check(m.text.find_first_not_of(" \t\r\n") != std::string::npos, "message text is not blank");
        check(text::count_code_points(m.text) <= limits.max_text_chars, "message text within max_text_chars");
        check(m.consultation_id.empty() || id_like(m.consultation_id, 128), "consultation_id is an id");
        check(m.profile_id.empty() || id_like(m.profile_id, 128), "profile_id is an id");
        check(m.specialist.empty() || id_like(m.specialist, 128), "specialist is an id");
        check(m.locale.empty() || id_like(m.locale, 35), "locale is a short id");
        check(m.attachments.is_array() && m.attachments.size() <= limits.max_attachments,
              "attachments: an array within max_attachments");
        for (const auto &a : m.attachments)
            check(a.is_object() && a.contains("type") && a.contains("media_type") && a.contains("data"),
                  "each attachment has type, media_type and data");
        break;
    }
    case ClientFrame::Type::cancel:
        check(id_like(f.stream_id, 128), "cancel has a stream_id");
        break;
    case ClientFrame::Type::resume:
        check(id_like(f.consultation_id, 128), "resume has a consultation_id");
        check(f.after_seq >= 0, "resume after_seq is not negative");
        break;
    }
}

void run(std::string_view input, const FrameLimits &limits) {
    auto parsed = consilium::parse_client_frame(input, limits);  // an exception escaping is a crash
    if (const auto *e = std::get_if<FrameError>(&parsed))
        check_error(*e);
    else
        check_frame(input, std::get<ClientFrame>(parsed), limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view input(reinterpret_cast<const char *>(data), size);
    FrameLimits small;
    small.max_frame_bytes = 4096;
    small.max_text_chars = 200;
    small.max_attachments = 2;
    small.max_attachment_bytes = 1024;
    run(input, small);
    run(input, FrameLimits{});

    // Type confusion is the likeliest bug and the hardest for byte mutations to reach: when the
    // input is a JSON object, also try it with each member's value swapped for another JSON type.
    json j = json::parse(input, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.size() > 12) return 0;
    static const json kOthers[] = {nullptr, true, 0, -1, 1.5, "", json::array(), json::object()};
    for (auto it = j.begin(); it != j.end(); ++it) {
        const json original = it.value();
        for (const json &other : kOthers) {
            it.value() = other;
            run(j.dump(-1, ' ', false, json::error_handler_t::replace), small);
        }
        it.value() = original;
    }
    return 0;
}
