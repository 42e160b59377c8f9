// A chat-channel client for integration tests: guest sign-up over HTTP, then JSON frames over
// the WebSocket, with helpers to wait for a frame of a given type.
#pragma once

#include "host_process.hpp"
#include "net/net_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace consilium::test {

using nlohmann::json;

struct GuestToken {
    std::string access_token;
    std::string account_id;
};

// POST /v1/auth/guest.
GuestToken new_guest(uint16_t port);

class ChatClient {
public:
    explicit ChatClient(uint16_t port) : port_(port) {}
    // Connects with the token on the upgrade and waits for {"type":"ready"}.
    bool connect(const std::string &token);
    // Connects without a token (the first frame must then be auth).
    bool connect_anonymous();
    bool send(const json &frame);
    bool send_raw(const std::string &text);
    // The next frame, or nullopt on timeout/close.
    std::optional<json> next(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Frames until one matches (included in the result), or the timeout.
    std::vector<json> until(const std::function<bool(const json &)> &pred,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Frames until the stream_end of the next stream (all of a turn's events).
    std::vector<json> until_stream_end(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    net::WsClient &ws() { return ws_; }

private:
    uint16_t port_;
    net::WsClient ws_;
};

}  // namespace consilium::test
