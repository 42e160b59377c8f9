// The connector's acceptance suite (docs/connector.md): the real host, its Claude plugin as the
// primary and its OpenAI-compatible plugin as the fallback, both talking to local fakes that
// replay the recorded traffic of ../shared/protocols and misbehave on script. Each scenario ends
// within a bounded time with a complete answer or a clear error, and the host serves a healthy
// request afterwards. Timeouts are scaled down (seconds, not minutes) to keep the suite short.
#include "chat_client.hpp"
#include "fake_provider_server.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

namespace consilium::test {
namespace {

using fakes::FakeKind;
using fakes::FakeProviderServer;
using namespace std::chrono_literals;

const char *kPrimaryModel = "claude-primary-test";
const char *kFallbackModel = "gpt-fallback-test";

struct Outcome {
    std::vector<json> frames;
    json end;
    std::string text;
    int restarts = 0;
    std::chrono::milliseconds took{0};
};

class ProviderAcceptance : public ::testing::Test {
protected:
    void SetUp() override {
        ::setenv("CONSILIUM_TEST_ANTHROPIC_KEY", "sk-ant-test-key", 1);
        ::setenv("CONSILIUM_TEST_OPENAI_KEY", "sk-openai-test-key", 1);
        primary_ = std::make_unique<FakeProviderServer>(FakeKind::anthropic, CONSILIUM_TEST_SHARED_DIR "/protocols");
        fallback_ = std::make_unique<FakeProviderServer>(FakeKind::openai, CONSILIUM_TEST_SHARED_DIR "/protocols");
    }

    // Starts the host wired to the fakes, with the connector settings scaled down.
    void start_host(const std::string &extra_yaml = "") {
        config_ = dir_.path() / "providers.yaml";
        std::ofstream(config_) << "providers:\n"
                                  "  claude: {plugin: claude, base_url: \"" << primary_->base_url()
                               << "\", api_key_env: CONSILIUM_TEST_ANTHROPIC_KEY}\n"
                                  "  openai: {plugin: openai_compatible, base_url: \"" << fallback_->base_url()
                               << "\", api_key_env: CONSILIUM_TEST_OPENAI_KEY}\n"
                                  "models:\n"
                                  "  primary: {provider: claude, model: " << kPrimaryModel
                               << ", context_window: 1000}\n"
                                  "  fallback: {provider: openai, model: " << kFallbackModel
                               << ", context_window: 128000}\n"
                                  "routing:\n"
                                  "  force: [primary, fallback]\n"
                                  "connector:\n"
                                  "  first_token_timeout_ms: 1500\n"
                                  "  idle_timeout_ms: 1000\n"
                                  "  turn_budget_ms: 20000\n"
                                  "  breaker_failures: 3\n"
                                  "  breaker_cooldown_ms: 1000\n"
                                  "limits:\n"  // one guest asks many questions in a row here
                                  "  guest_account_messages_per_minute: 600\n"
                                  "  guest_messages_per_minute: 600\n"
                               << extra_yaml;
        host_ = std::make_unique<HostProcess>(std::vector<std::string>{}, std::filesystem::path{},
                                              std::vector<std::string>{"--config", config_.string()});
        ASSERT_TRUE(host_->start()) << host_->log();
        token_ = new_guest(host_->port()).access_token;
        ASSERT_FALSE(token_.empty());
    }

    Outcome ask(const std::string &text = "I have had a sore throat for three days") {
        Outcome o;
        ChatClient chat(host_->port());
        EXPECT_TRUE(chat.connect(token_));
        auto t0 = std::chrono::steady_clock::now();
        EXPECT_TRUE(chat.send({{"type", "message"}, {"id", "m" + std::to_string(++n_)}, {"text", text}}));
        o.frames = chat.until_stream_end(30s);
        o.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        if (!o.frames.empty()) o.end = o.frames.back();
        for (const auto &f : o.frames) {
            std::string type = f.value("type", "");
            if (type == "stream_restart") {
                ++o.restarts;
                o.text.clear();
            }
            if (type == "stream_chunk") o.text += f.value("text", "");
        }
        consultation_ = o.frames.empty() ? "" : o.frames.front().value("consultation_id", "");
        return o;
    }

    json last_specialist_message() {
        net::HttpClient http("127.0.0.1", host_->port());
        auto r = http.get("/v1/consultations/" + consultation_, {{"Authorization", "Bearer " + token_}});
        json c = json::parse(r.body, nullptr, false);
        if (!c.is_object()) return json();
        json last;
        for (const auto &m : c["messages"])
            if (m["role"] == "specialist") last = m;
        return last;
    }

    static void expect_complete(const Outcome &o, const std::string &model) {
        ASSERT_EQ(o.end.value("type", ""), "stream_end") << o.end.dump();
        EXPECT_EQ(o.end.value("stop_reason", ""), "end_turn") << o.end.dump();
        EXPECT_FALSE(o.text.empty());
        EXPECT_LT(o.took, 20s);
        (void)model;
    }

    // After any scenario the host answers a healthy request.
    void expect_healthy_afterwards() {
        primary_->set_script("{}");
        fallback_->set_script("{}");
        Outcome o = ask("a healthy question after the storm");
        EXPECT_EQ(o.end.value("stop_reason", ""), "end_turn") << o.end.dump() << host_->log();
    }

    size_t primary_requests() { return primary_->requests().size(); }
    size_t fallback_requests() { return fallback_->requests().size(); }

    TempDir dir_;
    std::filesystem::path config_;
    std::unique_ptr<FakeProviderServer> primary_, fallback_;
    std::unique_ptr<HostProcess> host_;
    std::string token_;
    std::string consultation_;
    int n_ = 0;
};

TEST_F(ProviderAcceptance, HealthyPrimaryAnswersWithModelAndUsageRecorded) {
    start_host();
    Outcome o = ask();
    expect_complete(o, kPrimaryModel);
    EXPECT_EQ(fallback_requests(), 0u);
    json m = last_specialist_message();
    EXPECT_EQ(m.value("model", ""), "claude-sonnet-4-5-20250929") << "the model that actually answered: " << m.dump();
    EXPECT_GT(m["usage"].value("output_tokens", 0), 0) << m.dump();
}

TEST_F(ProviderAcceptance, RateLimitWithRetryAfterIsHonoured) {
    primary_->set_script(R"({"requests": {"1": {"fault": "rate_limit", "retry_after": "1"}}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kPrimaryModel);
    EXPECT_EQ(primary_requests(), 2u) << "retried on the same route after Retry-After";
    EXPECT_GE(o.took, 900ms);
    EXPECT_EQ(fallback_requests(), 0u);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, PersistentRateLimitWithoutRetryAfterDoesNotHammer) {
    primary_->set_script(R"({"default": {"fault": "rate_limit"}})");
    fallback_->set_script(R"({"default": {"fault": "rate_limit"}})");
    start_host();
    auto t0 = std::chrono::steady_clock::now();
    Outcome o = ask();
    ASSERT_EQ(o.end.value("type", ""), "stream_end");
    EXPECT_EQ(o.end.value("stop_reason", ""), "error");
    EXPECT_EQ(o.end["error"].value("code", ""), "rate_limited");
    size_t attempts = primary_requests() + fallback_requests();
    EXPECT_LE(attempts, 4u) << "at most 4 attempts";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, ServerErrorOnceThenHealthy) {
    primary_->set_script(R"({"requests": {"1": {"fault": "server_error"}}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kPrimaryModel);
    EXPECT_EQ(primary_requests(), 2u);
    EXPECT_EQ(fallback_requests(), 0u);
}

TEST_F(ProviderAcceptance, PersistentUnavailableFallsBack) {
    primary_->set_script(R"({"default": {"fault": "unavailable"}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_EQ(primary_requests(), 2u) << "retried once, then fell back";
    EXPECT_EQ(fallback_requests(), 1u);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, ResetBeforeHeadersFallsBack) {
    primary_->set_script(R"({"default": {"fault": "reset"}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_EQ(fallback_requests(), 1u);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, SilentProviderTimesOutAndFallsBack) {
    primary_->set_script(R"({"default": {"fault": "hang"}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_EQ(primary_requests(), 1u) << "a silent route is not retried";
    EXPECT_TRUE(primary_->wait_for_client_aborts(1, 5s)) << "the abandoned request was aborted upstream";
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, LateFirstTokenFallsBack) {
    primary_->set_script(R"({"default": {"delay_ms": 20000}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_LT(o.took, 10s);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, StreamCutMidwayIsRescuedWithARestart) {
    primary_->set_script(R"({"default": {"fault": "cut", "after_events": 6}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_EQ(o.restarts, 1) << "the cut text is voided before the fallback's answer";
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, StallMidStreamFallsBack) {
    primary_->set_script(R"({"default": {"fault": "stall", "after_events": 6, "ms": 30000}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_LT(o.took, 10s);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, MalformedChunkFallsBack) {
    primary_->set_script(R"({"default": {"fault": "malformed", "after_events": 4}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, StreamWithoutEndMarkerIsNotPresentedAsComplete) {
    primary_->set_script(R"({"default": {"fault": "no_end"}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_EQ(o.restarts, 1);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, ContextTooLongGoesToALargerWindow) {
    primary_->set_script(R"({"default": {"fault": "context_too_long"}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    EXPECT_EQ(primary_requests(), 1u) << "never the same model again";
}

TEST_F(ProviderAcceptance, ContentFilterEndsWithARefusalAndNoRetry) {
    primary_->set_script(R"({"default": {"fault": "content_filter"}})");
    start_host();
    Outcome o = ask();
    ASSERT_EQ(o.end.value("type", ""), "stream_end");
    EXPECT_EQ(o.end.value("stop_reason", ""), "refusal") << o.end.dump();
    EXPECT_FALSE(o.text.empty()) << "a safe message is shown";
    EXPECT_EQ(fallback_requests(), 0u);
    expect_healthy_afterwards();
}

TEST_F(ProviderAcceptance, FallbacksAreNeverSentAPrefill) {
    primary_->set_script(R"({"default": {"fault": "server_error"}})");
    fallback_->set_script(R"({"default": {"fault": "reject_prefill"}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    ASSERT_FALSE(fallback_->requests().empty());
    for (const auto &r : fallback_->requests())
        EXPECT_EQ(r.action, "replay") << "the fallback was sent a prefill it rejects";
}

TEST_F(ProviderAcceptance, ADownPrimaryOpensItsCircuitAndClosesAfterRecovery) {
    // Down for 4 s, then healthy.
    primary_->set_script(R"({"default": {"fault": "down", "ms": 4000, "as": "503"}})");
    start_host();
    auto recovered_at = std::chrono::steady_clock::now() + 4s;
    bool skipped = false;
    for (int i = 0; i < 3; ++i) {
        size_t before = primary_requests();
        Outcome o = ask();
        expect_complete(o, kFallbackModel);
        if (primary_requests() == before) skipped = true;  // the open circuit kept the primary out
    }
    EXPECT_TRUE(skipped) << "after repeated failures the circuit opens and turns go straight to the fallback";
    // After recovery a probe goes through and closes the circuit: the primary answers again.
    bool primary_back = false;
    while (std::chrono::steady_clock::now() < recovered_at + 30s) {
        size_t before = fallback_requests();
        Outcome o = ask();
        ASSERT_EQ(o.end.value("stop_reason", ""), "end_turn") << o.end.dump();
        if (std::chrono::steady_clock::now() > recovered_at && fallback_requests() == before) {
            primary_back = true;
            break;
        }
        std::this_thread::sleep_for(300ms);
    }
    EXPECT_TRUE(primary_back) << "the circuit closes within 30 s of recovery";
    json m = last_specialist_message();
    EXPECT_EQ(m.value("model", ""), "claude-sonnet-4-5-20250929");
}

TEST_F(ProviderAcceptance, TheModelThatAnsweredIsRecordedAfterAFallback) {
    primary_->set_script(R"({"default": {"fault": "overloaded"}})");
    start_host();
    Outcome o = ask();
    expect_complete(o, kFallbackModel);
    json m = last_specialist_message();
    EXPECT_EQ(m.value("model", ""), "gpt-4o-2024-08-06") << m.dump();
    EXPECT_GT(m["usage"].value("output_tokens", 0), 0) << m.dump();
    EXPECT_EQ(m.value("attempts", 0), 3) << m.dump();
}

TEST_F(ProviderAcceptance, KeysNeverReachTheLog) {
    primary_->set_script(R"({"default": {"fault": "server_error"}})");
    fallback_->set_script(R"({"api_key": "another-key"})");  // the fallback refuses our key
    start_host();
    Outcome o = ask();
    EXPECT_EQ(o.end.value("stop_reason", ""), "error");
    std::string log = host_->log();
    EXPECT_EQ(log.find("sk-ant-test-key"), std::string::npos);
    EXPECT_EQ(log.find("sk-openai-test-key"), std::string::npos);
    EXPECT_NE(log.find("operator action needed"), std::string::npos) << log;
}

}  // namespace
}  // namespace consilium::test
