// The chat channel protocol (docs/protocol.md) for one connection, whatever the transport:
// parses and validates client frames, authenticates, and hands messages, resumes and cancels
// to the consultation service; delivers events back through the transport's sink.
//
// Threads: frames arrive from the transport one at a time; events are delivered from
// consultation strands. The sink is used under a mutex, and once close() returned it is never
// used again (cs_chat_sink's LIFETIME).
#pragma once

#include <consilium/abi.h>

#include "consult/consultation.hpp"
#include "exec/executor.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace consilium {

class Engine;

struct ChatSettings {
    size_t max_frame_bytes = 65536;
    size_t max_text_chars = 8000;
    std::chrono::milliseconds auth_timeout{10000};
    size_t max_attachments = 4;
    size_t max_attachment_bytes = 5 * 1024 * 1024;
};

// What the front API drives for one connection: the chat channel, or a voice relay.
class FrontSession {
public:
    virtual ~FrontSession() = default;
    // Starts: authenticates with the upgrade's bearer token if any, else arms the auth timeout.
    virtual void open(const std::string &bearer_token) = 0;
    virtual void on_frame(std::string_view frame) = 0;
    // The transport is gone. After this returns the sink is never called.
    virtual void close() = 0;
    // The transport's send queue drained (backpressure eased).
    virtual void on_drained(int64_t) {}
};

class ChatSession : public Subscriber, public FrontSession, public std::enable_shared_from_this<ChatSession> {
public:
    ChatSession(Engine &engine, const cs_chat_sink &sink, std::string peer, std::string transport);
    ~ChatSession() override;

    void open(const std::string &bearer_token) override;
    void on_frame(std::string_view frame) override;
    void close() override;
    void on_drained(int64_t queued_bytes) override;

    void deliver(const std::shared_ptr<const std::string> &frame) override;
    void reply(const nlohmann::json &frame) override;

private:
    void send_text(const std::string &text);
    void send_error(const std::string &code, const std::string &message, const std::string &reply_to = "");
    bool authenticate(const std::string &token, const std::string &reply_to);
    void handle(const nlohmann::json &frame);
    void close_with(int code, const std::string &reason);

    Engine &engine_;
    std::mutex mu_;
    cs_chat_sink sink_;
    bool closed_ = false;
    std::string peer_;
    std::string transport_;
    std::optional<Principal> who_;
    TimerId auth_timer_ = 0;
};

// The cs_front_api the engine hands transports.
const cs_front_api *front_api();

}  // namespace consilium
