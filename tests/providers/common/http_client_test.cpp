// The HTTP client of providers/common against the fake servers: the response head comes before
// the body, bodies stream, cancel from another thread ends a transfer promptly and really closes
// it, the concurrency cap queues the rest, the destructor ends everything, and transport
// failures are told apart (refused, reset, connect timeout).
#include "fake_provider_server.hpp"
#include "http_client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>

namespace consilium::providers {
namespace {

using test::fakes::FakeKind;
using test::fakes::FakeProviderServer;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string protocols() { return std::string(CONSILIUM_TEST_SHARED_DIR) + "/protocols"; }

std::string read(const std::string &rel) {
    std::ifstream in(protocols() + "/" + rel, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Records what one transfer delivered, in order.
struct Recorder : HttpHandler {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> order;  // "head", "body", "end"
    HttpHead head;
    std::string body;
    HttpResult result;
    bool ended = false;
    int ends = 0;
    Clock::time_point ended_at;

    void on_head(const HttpHead &h) override {
        std::lock_guard<std::mutex> lock(mu);
        head = h;
        order.push_back("head");
    }
    bool on_body(std::string_view b) override {
        std::lock_guard<std::mutex> lock(mu);
        body.append(b);
        if (order.empty() || order.back() != "body") order.push_back("body");
        return true;
    }
    void on_end(const HttpResult &r) override {
        std::lock_guard<std::mutex> lock(mu);
        result = r;
        ended = true;
        ++ends;
        ended_at = Clock::now();
        order.push_back("end");
        cv.notify_all();
    }
    bool wait(std::chrono::milliseconds d = 10s) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, d, [this] { return ended; });
    }
};

HttpRequest anthropic_request(const FakeProviderServer &fake, int64_t connect_ms = 2000) {
    HttpRequest r;
    r.url = fake.base_url() + "/v1/messages";
    r.headers = {"content-type: application/json", "x-api-key: k", "anthropic-version: 2023-06-01"};
    r.body = R"({"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"stream":true})";
    r.connect_timeout_ms = connect_ms;
    return r;
}

TEST(HttpClient, StreamsTheBodyAfterTheHead) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"chunk_bytes": 5}})");
    HttpClient client({4, "test"});
    auto rec = std::make_shared<Recorder>();
    client.start(anthropic_request(fake), rec);
    ASSERT_TRUE(rec->wait());
    EXPECT_EQ(rec->result.end, HttpEnd::complete);
    EXPECT_EQ(rec->head.status, 200);
    EXPECT_EQ(rec->head.header("Content-Type"), "text/event-stream; charset=utf-8");
    EXPECT_EQ(rec->head.header("request-id"), "req_fake_1");
    EXPECT_EQ(rec->body, read("anthropic/recorded/stream_text_json_output.sse")) << "byte for byte";
    EXPECT_EQ(rec->order, (std::vector<std::string>{"head", "body", "end"}));
    EXPECT_EQ(rec->ends, 1);
    auto seen = fake.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].header("x-api-key"), "k");
    EXPECT_FALSE(seen[0].has_header("expect"));
}

TEST(HttpClient, ErrorStatusAndHeadersArriveWithTheBody) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"fault": "rate_limit", "retry_after": "7"}})");
    HttpClient client({4, "test"});
    auto rec = std::make_shared<Recorder>();
    client.start(anthropic_request(fake), rec);
    ASSERT_TRUE(rec->wait());
    EXPECT_EQ(rec->result.end, HttpEnd::complete);
    EXPECT_EQ(rec->head.status, 429);
    EXPECT_EQ(rec->head.header("retry-after"), "7");
    EXPECT_EQ(rec->body, read("anthropic/constructed/error_429_rate_limit_error.json"));
}

TEST(HttpClient, CancelFromAnotherThreadEndsAHangingTransferPromptly) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"fault": "hang"}})");
    HttpClient client({4, "test"});
    auto rec = std::make_shared<Recorder>();
    uint64_t id = client.start(anthropic_request(fake), rec);
    ASSERT_TRUE(fake.wait_for_requests(1, 5s));
    auto canceller = client.canceller(id);
    Clock::time_point asked;
    std::thread other([&] {
        asked = Clock::now();
        canceller.cancel();
    });
    other.join();
    ASSERT_TRUE(rec->wait(5s));
    EXPECT_EQ(rec->result.end, HttpEnd::cancelled);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(rec->ended_at - asked);
    EXPECT_LT(took.count(), 1000) << "cancel took " << took.count() << " ms (the goal is < 100 ms)";
    EXPECT_TRUE(fake.wait_for_client_aborts(1, 5s)) << "the fake saw the connection close";
    client.cancel(id);  // again, after the end: nothing happens
    EXPECT_EQ(rec->ends, 1);
}

TEST(HttpClient, TheConcurrencyCapQueuesTheRest) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"event_delay_ms": 5}})");
    HttpClient client({3, "test"});
    std::vector<std::shared_ptr<Recorder>> recs;
    for (int i = 0; i < 20; ++i) {
        recs.push_back(std::make_shared<Recorder>());
        client.start(anthropic_request(fake), recs.back());
    }
    for (auto &r : recs) {
        ASSERT_TRUE(r->wait(30s));
        EXPECT_EQ(r->result.end, HttpEnd::complete);
        EXPECT_EQ(r->head.status, 200);
    }
    EXPECT_LE(client.peak_in_flight(), 3u);
    EXPECT_LE(fake.peak_in_flight(), 3u);
    EXPECT_GE(fake.peak_in_flight(), 2u) << "transfers did overlap";
    EXPECT_EQ(client.in_flight(), 0u);
}

TEST(HttpClient, CancellingAQueuedTransferEndsIt) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"fault": "hang"}})");
    HttpClient client({1, "test"});
    auto running = std::make_shared<Recorder>(), queued = std::make_shared<Recorder>();
    client.start(anthropic_request(fake), running);
    uint64_t q = client.start(anthropic_request(fake), queued);
    ASSERT_TRUE(fake.wait_for_requests(1, 5s));
    client.cancel(q);
    ASSERT_TRUE(queued->wait(5s));
    EXPECT_EQ(queued->result.end, HttpEnd::cancelled);
    EXPECT_FALSE(queued->result.head_received);
    EXPECT_FALSE(running->ended);
}

TEST(HttpClient, TheDestructorEndsEveryTransfer) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"fault": "hang"}})");
    std::vector<std::shared_ptr<Recorder>> recs;
    {
        HttpClient client({2, "test"});
        for (int i = 0; i < 4; ++i) {
            recs.push_back(std::make_shared<Recorder>());
            client.start(anthropic_request(fake), recs.back());
        }
        ASSERT_TRUE(fake.wait_for_requests(2, 5s));
    }
    for (auto &r : recs) {
        EXPECT_TRUE(r->ended);
        EXPECT_EQ(r->ends, 1);
        EXPECT_EQ(r->result.end, HttpEnd::shutdown);
    }
}

TEST(HttpClient, ResetBeforeHeadersIsAConnectionFailure) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"fault": "reset"}})");
    HttpClient client({2, "test"});
    auto rec = std::make_shared<Recorder>();
    client.start(anthropic_request(fake), rec);
    ASSERT_TRUE(rec->wait());
    EXPECT_EQ(rec->result.end, HttpEnd::connection_failed) << rec->result.message;
    EXPECT_FALSE(rec->result.head_received);
}

TEST(HttpClient, ACutMidBodyIsAConnectionFailureAfterTheHead) {
    FakeProviderServer fake(FakeKind::anthropic, protocols());
    fake.set_script(R"({"default": {"fault": "cut", "after_events": 3}})");
    HttpClient client({2, "test"});
    auto rec = std::make_shared<Recorder>();
    client.start(anthropic_request(fake), rec);
    ASSERT_TRUE(rec->wait());
    EXPECT_EQ(rec->result.end, HttpEnd::connection_failed) << rec->result.message;
    EXPECT_TRUE(rec->result.head_received);
    EXPECT_FALSE(rec->body.empty());
}

// A port nothing listens on.
uint16_t closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

TEST(HttpClient, RefusedIsAConnectionFailure) {
    HttpClient client({2, "test"});
    auto rec = std::make_shared<Recorder>();
    HttpRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1/messages";
    client.start(r, rec);
    ASSERT_TRUE(rec->wait());
    EXPECT_EQ(rec->result.end, HttpEnd::connection_failed) << rec->result.message;
}

// A listener whose accept queue is full: further connects hang in SYN-SENT (Linux drops the SYN).
struct Blackhole {
    int listener = -1, filler = -1;
    uint16_t port = 0;
    Blackhole() {
        listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listener, reinterpret_cast<sockaddr *>(&a), sizeof a);
        ::listen(listener, 0);
        socklen_t len = sizeof a;
        ::getsockname(listener, reinterpret_cast<sockaddr *>(&a), &len);
        port = ntohs(a.sin_port);
        filler = ::socket(AF_INET, SOCK_STREAM, 0);
        ::connect(filler, reinterpret_cast<sockaddr *>(&a), sizeof a);
    }
    ~Blackhole() {
        ::close(filler);
        ::close(listener);
    }
};

TEST(HttpClient, ConnectTimeoutIsToldApart) {
    Blackhole hole;
    HttpClient client({2, "test"});
    auto rec = std::make_shared<Recorder>();
    HttpRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(hole.port) + "/v1/messages";
    r.connect_timeout_ms = 300;
    auto t0 = Clock::now();
    client.start(r, rec);
    ASSERT_TRUE(rec->wait(10s));
    EXPECT_EQ(rec->result.end, HttpEnd::connect_timeout) << rec->result.message;
    EXPECT_LT(Clock::now() - t0, 5s);
}

}  // namespace
}  // namespace consilium::providers
