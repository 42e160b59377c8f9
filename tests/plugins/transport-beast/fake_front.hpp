// A fake engine behind cs_front_api for the transport tests, and a fixture that loads the built
// Beast transport through PluginHarness (the way the host does) and starts it on a free port.
//
// The fake records every call. HTTP: answers JSON describing what it received (method, target,
// body, headers, peer) with an extra header, from the calling thread or another one. Chat: echoes
// each frame back through the sink as "echo:<frame>", except for a few commands:
//   "close:<code>:<reason>"  sink close, then one more send whose result is recorded (-1 expected)
//   "flood:<size>"           a thread sends frames of <size> bytes until send() returns -1
//   "fill:<size>:<bytes>"    a thread sends frames of <size> bytes until send() says more than
//                            <bytes> are queued (or -1), then stops
//   "async:<text>"           sends "<text>" from another thread
// chat_drained calls are recorded per chat.
// A chat whose bearer token is "greet" gets a "ready" frame from inside chat_open().
#pragma once

#include <consilium/abi.h>

#include "net/net_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace consilium::test {

struct HttpCall {
    std::string method, target, body, peer;
    std::map<std::string, std::string> headers;  // lower-case names
};

class FakeFront;

// What a test can see of one chat (a copy taken under the fake's lock).
struct ChatView {
    int id = -1;  // -1: no such chat
    std::string bearer, peer, origin, transport, target;
    std::map<std::string, std::string> headers;  // of chat_open, lower-case names
    std::vector<std::string> frames;
    int close_calls = 0;
    int64_t send_after_close = 0;  // result of the send that follows a "close:" command
    int64_t flood_sent = 0;        // frames the flood got accepted
    bool flood_refused = false;    // the flood saw -1
    int64_t fill_sent = 0;         // frames the fill got accepted
    int64_t fill_peak = 0;         // the largest queue size send() returned during the fill
    bool fill_done = false;
    int drained_calls = 0;         // chat_drained calls
    int64_t drained_bytes = -1;    // what the last one said
};

struct FakeChat {
    FakeFront *front = nullptr;
    cs_chat_sink sink{};
    ChatView view;                     // guarded by FakeFront's mutex
    std::vector<std::thread> threads;  // joined in chat_close (the engine's promise)
};

class FakeFront {
public:
    FakeFront();
    ~FakeFront();
    FakeFront(const FakeFront &) = delete;
    FakeFront &operator=(const FakeFront &) = delete;

    const cs_front_api *api() const { return &api_; }
    cs_host_ctx *ctx() { return reinterpret_cast<cs_host_ctx *>(this); }

    // Waits (at most timeout) until pred() holds. pred may call the accessors below.
    bool wait_for(const std::function<bool()> &pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

    std::vector<HttpCall> http_calls() const;
    size_t chat_count() const;
    ChatView chat(size_t index) const;
    int total_chat_close_calls() const;
    // Counts front API calls made after mark() (to check that stop() means silence).
    int calls_after_mark() const { return calls_after_mark_.load(); }
    void mark() { marked_.store(true); }

    std::atomic<bool> accepting{true};

    // HTTP responses held back (target "/hold"): answered by release_held().
    void release_held();
    size_t held_count() const;

private:
    static FakeFront *self(cs_host_ctx *ctx);
    static void http(cs_host_ctx *ctx, const cs_http_request *request, cs_http_respond_fn respond,
                     void *respond_ctx);
    static cs_chat *chat_open(cs_host_ctx *ctx, const cs_chat_open_params *params,
                              const cs_chat_sink *sink);
    static void chat_frame(cs_chat *chat, cs_str frame);
    static void chat_close(cs_chat *chat);
    static void chat_drained(cs_chat *chat, int64_t queued_bytes);
    static int accepting_fn(cs_host_ctx *ctx);
    void note_call();

    cs_front_api api_{};
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::vector<HttpCall> http_calls_;
    std::vector<std::shared_ptr<FakeChat>> chats_;
    std::vector<std::pair<cs_http_respond_fn, void *>> held_;
    std::vector<std::thread> responders_;
    std::atomic<bool> marked_{false};
    std::atomic<int> calls_after_mark_{0};
};

// Loads and starts the transport with options (listen defaults to 127.0.0.1:0).
class TransportTest : public ::testing::Test {
protected:
    void TearDown() override { harness_.reset(); }

    // Starts the transport; fails the test (and returns false) when it cannot.
    bool start(nlohmann::json options = nlohmann::json::object());
    void stop_accepting();
    void stop();
    uint16_t port() const { return port_; }
    const std::string &host() const { return host_; }

    FakeFront front_;  // outlives the harness
    TempDir dir_;
    std::unique_ptr<PluginHarness> harness_;
    std::string host_;
    uint16_t port_ = 0;
};

}  // namespace consilium::test
