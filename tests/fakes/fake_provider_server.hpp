// tests/fakes/fake_provider_server.hpp: fake Anthropic Messages and OpenAI Chat Completions
// servers for tests. Beast-free header; all the Beast code is in fake_provider_server.cpp
// (target consilium_test_fakes), which also builds the standalone `fake_provider_server`.
//
// By default a fake replays the recorded streams of ../shared/protocols byte for byte (status
// and headers from the recording's .exchange.json where there is one). A script (JSON, see
// tests/fakes/README.md) picks, per request number or per model, another recording or a fault:
// 429 with or without retry-after, 500, 503, 529, context too long, content filter, a reset
// before the headers, no answer at all, a late first byte, a cut, a stall, a malformed event, a
// missing end marker, refusing assistant prefill, "down for N ms then healthy". Requests are
// validated like the real APIs do (401/400 otherwise) and kept for the test to inspect.
//
// FakeKind::openai_realtime is the OpenAI Realtime API: POST /v1/realtime/client_secrets replays
// openai_realtime/client_secret_response.json, and the WebSocket /v1/realtime?model=... replays
// openai_realtime/constructed/ws_session_sequence.jsonl (README.md, "OpenAI Realtime"); what
// each WebSocket received and sent is kept too (ws_sessions()).
//
//   FakeProviderServer fake(FakeKind::anthropic, CONSILIUM_TEST_SHARED_DIR "/protocols");
//   fake.set_script(R"({"api_key": "k", "requests": {"2": {"fault": "rate_limit", "retry_after": "3"}}})");
//   ... point the plugin's base_url at fake.base_url() ...
//   EXPECT_EQ(fake.requests().at(0).header("anthropic-version"), "2023-06-01");
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace consilium::test::fakes {

enum class FakeKind { anthropic, openai, openai_realtime };

// "anthropic", "openai" or "openai_realtime"; throws std::invalid_argument otherwise.
FakeKind parse_fake_kind(std::string_view name);

// One request as it arrived, and what the fake did with it.
struct FakeRequest {
    int number = 0;  // 1-based, in order of arrival (scripts select by it)
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
    std::string body;
    std::string action;  // what the script chose: "replay", "rate_limit", "reset", "invalid", ...
    int status = 0;      // the status answered; 0 when none (reset, hang)

    // The first value of a header (name in any case), or "".
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const;
};

// One WebSocket of the fake OpenAI Realtime API, as the fake saw it.
struct FakeWsSession {
    int number = 0;                     // the number of its upgrade request (see FakeRequest)
    std::string model;                  // the ?model= of the upgrade
    bool beta = false;                  // the upgrade carried OpenAI-Beta: realtime=v1
    std::vector<std::string> received;  // the client's text frames, in order, byte for byte
    std::vector<std::string> sent;      // the fake's frames, in order (a malformed one included)
    std::vector<std::string> refused;   // the error codes the fake answered client frames with
    bool ended = false;
    // How it ended: "client_close" (a close frame from the client), "client_gone" (no close
    // frame), "close" / "cut" (a script fault), "protocol" (no session.update first), "shutdown".
    std::string end;
    int client_close_code = -1;  // the code of the client's close frame, when it sent one
};

// LIFETIME: listens from construction until destruction; the destructor closes every connection
// (hanging ones included) and joins the server thread.
class FakeProviderServer {
public:
    // protocols_dir: the folder holding anthropic/ and openai_chat/ (normally
    // CONSILIUM_TEST_SHARED_DIR "/protocols"). Listens on 127.0.0.1:port (0: any free port).
    FakeProviderServer(FakeKind kind, std::string protocols_dir, uint16_t port = 0);
    ~FakeProviderServer();
    FakeProviderServer(const FakeProviderServer &) = delete;
    FakeProviderServer &operator=(const FakeProviderServer &) = delete;

    FakeKind kind() const;
    uint16_t port() const;
    // What the plugin's base_url should be: http://127.0.0.1:PORT (Anthropic) or .../v1 (OpenAI,
    // OpenAI Realtime).
    std::string base_url() const;

    // Replaces the script (README.md). Throws std::invalid_argument naming what is wrong.
    // Request numbers keep counting across scripts; reset_requests() starts them at 1 again.
    void set_script(const std::string &json_text);
    void reset_requests();

    std::vector<FakeRequest> requests() const;
    size_t request_count() const;
    bool wait_for_requests(size_t n, std::chrono::milliseconds timeout) const;
    // Responses the client abandoned (closed the connection) before the fake had finished them:
    // how a test sees that a cancel really aborted the transfer.
    size_t client_aborts() const;
    bool wait_for_client_aborts(size_t n, std::chrono::milliseconds timeout) const;
    // Responses in progress now, and the most there ever were at once.
    size_t in_flight() const;
    size_t peak_in_flight() const;

    // Called on the server thread for every request once the fake chose what to do.
    void set_observer(std::function<void(const FakeRequest &)> observer);

    // OpenAI Realtime WebSockets, in order of their upgrade requests.
    std::vector<FakeWsSession> ws_sessions() const;
    // Until the WebSocket of upgrade request `number` has received n client frames (false on
    // timeout, or when it ended with fewer).
    bool wait_for_ws_frames(int number, size_t n, std::chrono::milliseconds timeout) const;
    // Until that WebSocket has ended.
    bool wait_for_ws_end(int number, std::chrono::milliseconds timeout) const;
    // Called on the server thread for every WebSocket frame: direction "client" or "server".
    void set_ws_observer(std::function<void(int number, std::string_view direction, std::string_view frame)> observer);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace consilium::test::fakes
