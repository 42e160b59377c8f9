// Client frames of the chat channel (docs/protocol.md), parsed and validated without touching
// anything else: size, UTF-8, JSON, type, and each field. A pure function, so it is fuzzed
// directly (tests/fuzz/fuzz_client_frame.cpp).
#pragma once

#include "consult/consultation.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace consilium {

struct FrameLimits {
    size_t max_frame_bytes = 65536;
    size_t max_text_chars = 8000;
    size_t max_attachments = 4;
    size_t max_attachment_bytes = 5 * 1024 * 1024;
};

struct ClientFrame {
    enum class Type { auth, message, cancel, resume, ping } type = Type::ping;
    std::string reply_to;         // the frame's id, when it had a valid one
    std::string token;            // auth
    Incoming message;             // message
    std::string stream_id;        // cancel
    std::string consultation_id;  // resume
    int64_t after_seq = 0;        // resume
};

struct FrameError {
    std::string code;  // bad_json, bad_frame, missing_field, invalid_field, unknown_type, too_large
    std::string message;
    std::string reply_to;
};

std::variant<ClientFrame, FrameError> parse_client_frame(std::string_view frame, const FrameLimits &limits);

}  // namespace consilium
