// The chat channel protocol (docs/protocol.md) for one connection, whatever the transport:
// parses and validates client frames, authenticates, and hands messages, resumes and cancels
// to the consultation service; delivers events back through the transport's sink.
//
// Threads: frames arrive from the transport one at a time; events are delivered from
// consultation strands. The sink is used under a mutex, and once close() returned it is never
// used again (cs_chat_sink's LIFETIME).
#pragma once

#include <consilium/abi.h>

#include "api/frames.hpp"
#include "api/rate_limit.hpp"
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
    FrameLimits frames;
    std::chrono::milliseconds auth_timeout{10000};
    std::chrono::milliseconds idle_timeout{30 * 60 * 1000};  // no client frame for this long: closed (4002)
    std::vector<std::string> allowed_origins;               // empty: any Origin
    int64_t merge_above_bytes = 262144;  // queued more than this: consecutive chunks are merged
    RateLimits limits;
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

    void set_origin(std::string origin) { origin_ = std::move(origin); }
    // The sign-in session this connection authenticated with ("" before).
    std::string session_id();
    // The session ended (logout, erasure): closes with 4004.
    void end_session() { close_with(4004, "session ended"); }

private:
    // A run of stream_chunk events of one stream held back while the connection is congested,
    // sent as one frame covering seq_from..seq.
    struct Merged {
        std::string consultation_id;
        std::string stream_id;
        int64_t seq_from = 0;
        int64_t seq = 0;
        std::string text;
    };
    void send_text(const std::string &text);
    void send_locked(const std::string &text);
    void flush_merged_locked();
    void send_error(const std::string &code, const std::string &message, const std::string &reply_to = "",
                    int64_t retry_after_ms = -1);
    bool authenticate(const std::string &token, const std::string &reply_to);
    void dispatch(ClientFrame &frame);
    bool within_limits(size_t bytes, bool is_message, const std::string &reply_to);
    void close_with(int code, const std::string &reason);
    void arm_idle_timer();

    Engine &engine_;
    std::mutex mu_;
    cs_chat_sink sink_;
    bool closed_ = false;
    std::string peer_;
    std::string transport_;
    std::string origin_;
    std::optional<Principal> who_;
    TimerId auth_timer_ = 0;
    TimerId idle_timer_ = 0;
    std::atomic<int64_t> last_frame_ms_{0};
    // Limits (touched from the transport's frame thread only).
    TokenBucket message_bucket_;
    TokenBucket byte_bucket_;
    int violations_ = 0;
    // Backpressure (under mu_).
    int64_t queued_ = 0;
    std::optional<Merged> merged_;
    bool flush_scheduled_ = false;
};

// The cs_front_api the engine hands transports.
const cs_front_api *front_api();

}  // namespace consilium
