// The connector's typed decisions (docs/connector.md), against a scripted provider that goes
// through the real ABI thunks in-process.
#include "connector/connector.hpp"

#include <consilium/sdk/provider.hpp>

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace consilium {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// One scripted attempt: what the provider does for the next request to a model.
struct Script {
    enum Kind { ok, failing, silent, stall, cut } kind = ok;
    int tokens = 5;
    cs_error_kind error = CS_ERR_SERVER;
    int64_t retry_after_ms = -1;
    cs_stop_reason stop = CS_STOP_END_TURN;
};

struct Scripts {
    std::mutex mu;
    std::map<std::string, std::deque<Script>> by_model;
    std::vector<std::string> requests;  // models asked, in order
    std::vector<json> bodies;
    Script next(const std::string &model, const json &body) {
        std::lock_guard<std::mutex> lock(mu);
        requests.push_back(model);
        bodies.push_back(body);
        auto &q = by_model[model];
        if (q.empty()) return Script{};
        Script s = q.front();
        if (q.size() > 1) q.pop_front();
        return s;
    }
};
Scripts *g_scripts = nullptr;

class ScriptedStream : public sdk::Stream {
public:
    ScriptedStream(sdk::StreamSink sink, Script s, std::string model) : sink_(std::move(sink)) {
        thread_ = std::thread([this, s, model] { run(s, model); });
    }
    ~ScriptedStream() override {
        cancel();
        thread_.join();
    }
    void cancel() override {
        std::lock_guard<std::mutex> lock(mu_);
        cancelled_ = true;
        cv_.notify_all();
    }

private:
    bool wait(std::chrono::milliseconds d) {  // false when cancelled
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, d, [this] { return cancelled_; });
        return !cancelled_;
    }
    void run(Script s, const std::string &model) {
        sink_.model(model);
        if (s.kind == Script::failing) {
            if (wait(5ms)) sink_.error(s.error, "scripted", 500, s.retry_after_ms);
            else sink_.end(CS_STOP_CANCELLED);
            return;
        }
        if (s.kind == Script::silent) {
            wait(1h);
            sink_.end(CS_STOP_CANCELLED);
            return;
        }
        for (int i = 0; i < s.tokens; ++i) {
            if (!wait(2ms)) {
                sink_.end(CS_STOP_CANCELLED);
                return;
            }
            if ((s.kind == Script::stall || s.kind == Script::cut) && i == s.tokens / 2) {
                if (s.kind == Script::cut) {
                    sink_.error(CS_ERR_CONNECTION, "cut", 0);
                    return;
                }
                wait(1h);
                sink_.end(CS_STOP_CANCELLED);
                return;
            }
            sink_.text(model + "-t" + std::to_string(i) + " ");
        }
        sink_.usage(10, s.tokens);
        sink_.end(s.stop);
    }

    sdk::StreamSink sink_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool cancelled_ = false;
    std::thread thread_;
};

class ScriptedProvider : public sdk::Provider {
public:
    static json defaults() { return json::object(); }
    ScriptedProvider(sdk::Host, const std::string &, const json &) {}
    std::unique_ptr<sdk::Stream> start(const json &request, sdk::StreamSink sink) override {
        std::string model = request.value("model", "");
        return std::make_unique<ScriptedStream>(std::move(sink), g_scripts->next(model, request), model);
    }
};

const cs_plugin_descriptor kDescriptor = {CS_ABI_MAJOR, CS_ABI_MINOR, sizeof(cs_plugin_descriptor), CS_PLUGIN_PROVIDER,
                                          "scripted", "1", "test", "scripted provider",
                                          &sdk::ProviderThunks<ScriptedProvider>::create,
                                          &sdk::ProviderThunks<ScriptedProvider>::destroy,
                                          &sdk::ProviderThunks<ScriptedProvider>::vtable};

struct Collected {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<TurnEvent> events;
    bool ended = false;
    TurnEvent end() {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, 10s, [this] { return ended; });
        return ended ? events.back() : TurnEvent{};
    }
    std::string text() {
        std::lock_guard<std::mutex> lock(mu);
        std::string s;
        for (const auto &e : events) {
            if (e.kind == TurnEvent::Kind::restart) s.clear();
            if (e.kind == TurnEvent::Kind::text) s += e.text;
        }
        return s;
    }
    int restarts() {
        std::lock_guard<std::mutex> lock(mu);
        int n = 0;
        for (const auto &e : events) n += e.kind == TurnEvent::Kind::restart;
        return n;
    }
};

class ConnectorTest : public ::testing::Test {
protected:
    void SetUp() override {
        g_scripts = &scripts_;
        pool_ = std::make_unique<ThreadPool>(2);
        auto services = std::make_unique<HostServices>("p1", *pool_, metrics_, "/tmp");
        auto services2 = std::make_unique<HostServices>("p2", *pool_, metrics_, "/tmp");
        auto i1 = std::make_shared<PluginInstance>(&kDescriptor, nullptr, std::move(services), "providers.p1", "{}");
        auto i2 = std::make_shared<PluginInstance>(&kDescriptor, nullptr, std::move(services2), "providers.p2", "{}");
        providers_["p1"] = std::make_shared<ProviderClient>(i1, *pool_);
        providers_["p2"] = std::make_shared<ProviderClient>(i2, *pool_);
        models_["a"] = ModelInfo{"a", "p1", "model-a", 1000, true, false, 0};
        models_["b"] = ModelInfo{"b", "p1", "model-b", 2000, false, false, 0};
        models_["c"] = ModelInfo{"c", "p2", "model-c", 8000, false, false, 0};
        settings_.connect_timeout = 200ms;
        settings_.first_token_timeout = 300ms;
        settings_.idle_timeout = 200ms;
        settings_.turn_budget = 5s;
        settings_.max_retries = 3;
        settings_.retry_after_cap = 500ms;
    }
    void TearDown() override {
        // Abandoned attempts (cancelled silent or stalled streams) end on the plugin's threads:
        // wait for them before the pool goes, as the host does before it stops.
        auto until = std::chrono::steady_clock::now() + 5s;
        for (auto &[name, p] : providers_)
            while (p->in_flight() > 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
        std::this_thread::sleep_for(20ms);  // their release tasks
        connector_.reset();
        pool_->stop();
        g_scripts = nullptr;
    }
    std::shared_ptr<Turn> run(std::vector<std::string> aliases, Collected &out, bool vision = false) {
        // One connector for the whole test, as in the host: its circuit breakers persist.
        if (!connector_) connector_ = std::make_unique<Connector>(*pool_, metrics_, settings_, models_, providers_);
        strand_ = Strand::make(*pool_);
        TurnRequest req;
        req.aliases = std::move(aliases);
        req.needs_vision = vision;
        req.build = [](const ModelInfo &) { return json{{"messages", json::array({{{"role", "user"}}})}}; };
        return connector_->start(strand_, std::move(req), [&out](const TurnEvent &e) {
            std::lock_guard<std::mutex> lock(out.mu);
            out.events.push_back(e);
            if (e.kind == TurnEvent::Kind::end) {
                out.ended = true;
                out.cv.notify_all();
            }
        });
    }
    void script(const std::string &model, std::vector<Script> s) {
        std::lock_guard<std::mutex> lock(scripts_.mu);
        scripts_.by_model[model] = std::deque<Script>(s.begin(), s.end());
    }
    std::vector<std::string> asked() {
        std::lock_guard<std::mutex> lock(scripts_.mu);
        return scripts_.requests;
    }

    Scripts scripts_;
    std::unique_ptr<ThreadPool> pool_;
    metrics::Registry metrics_;
    std::map<std::string, std::shared_ptr<ProviderClient>> providers_;
    std::map<std::string, ModelInfo> models_;
    ConnectorSettings settings_;
    std::unique_ptr<Connector> connector_;
    std::shared_ptr<Strand> strand_;
};

TEST_F(ConnectorTest, HealthyPrimaryAnswers) {
    Collected out;
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "end_turn");
    EXPECT_EQ(end.model, "model-a");
    EXPECT_EQ(end.output_tokens, 5);
    EXPECT_EQ(end.attempts, 1);
    EXPECT_EQ(out.text(), "model-a-t0 model-a-t1 model-a-t2 model-a-t3 model-a-t4 ");
    EXPECT_EQ(asked(), (std::vector<std::string>{"model-a"}));
}

TEST_F(ConnectorTest, RateLimitedHonoursRetryAfterThenRetriesTheSameRoute) {
    Script limited;
    limited.kind = Script::failing;
    limited.error = CS_ERR_RATE_LIMITED;
    limited.retry_after_ms = 150;
    script("model-a", {limited, Script{}});
    Collected out;
    auto t0 = std::chrono::steady_clock::now();
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "end_turn");
    EXPECT_EQ(end.model, "model-a");
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
    EXPECT_EQ(asked(), (std::vector<std::string>{"model-a", "model-a"}));
}

TEST_F(ConnectorTest, RetryAfterAboveTheCapFallsBackAtOnce) {
    Script limited;
    limited.kind = Script::failing;
    limited.error = CS_ERR_RATE_LIMITED;
    limited.retry_after_ms = 60000;
    script("model-a", {limited});
    Collected out;
    run({"a", "c"}, out);
    EXPECT_EQ(out.end().model, "model-c");
    EXPECT_EQ(asked(), (std::vector<std::string>{"model-a", "model-c"}));
}

TEST_F(ConnectorTest, OverloadedRetriesOnceThenFallsBack) {
    Script over;
    over.kind = Script::failing;
    over.error = CS_ERR_OVERLOADED;
    script("model-a", {over});
    Collected out;
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "end_turn");
    EXPECT_EQ(end.model, "model-c");
    EXPECT_EQ(asked(), (std::vector<std::string>{"model-a", "model-a", "model-c"}));
    EXPECT_EQ(out.restarts(), 0) << "nothing was shown, nothing to void";
}

TEST_F(ConnectorTest, CutMidStreamIsRescuedWithARestart) {
    Script cut;
    cut.kind = Script::cut;
    cut.tokens = 8;
    script("model-a", {cut});
    Collected out;
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "end_turn");
    EXPECT_EQ(out.restarts(), 1);
    EXPECT_EQ(out.text(), "model-c-t0 model-c-t1 model-c-t2 model-c-t3 model-c-t4 ") << "only the fallback's answer";
}

TEST_F(ConnectorTest, SilentProviderTimesOutAndFallsBackWithoutRetryingIt) {
    Script silent;
    silent.kind = Script::silent;
    script("model-a", {silent});
    Collected out;
    run({"a", "c"}, out);
    EXPECT_EQ(out.end().model, "model-c");
    EXPECT_EQ(asked(), (std::vector<std::string>{"model-a", "model-c"}));
}

TEST_F(ConnectorTest, StallMidStreamFallsBack) {
    Script stall;
    stall.kind = Script::stall;
    stall.tokens = 10;
    script("model-a", {stall});
    Collected out;
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "end_turn");
    EXPECT_EQ(end.model, "model-c");
    EXPECT_EQ(out.restarts(), 1);
}

TEST_F(ConnectorTest, ContextTooLongGoesOnlyToLargerWindows) {
    Script big;
    big.kind = Script::failing;
    big.error = CS_ERR_CONTEXT_TOO_LONG;
    script("model-b", {big});
    Collected out;
    run({"b", "a", "c"}, out);  // a has a smaller window than b: skipped
    EXPECT_EQ(out.end().model, "model-c");
    EXPECT_EQ(asked(), (std::vector<std::string>{"model-b", "model-c"}));
}

TEST_F(ConnectorTest, ContentFilterIsARefusalWithoutRetry) {
    Script filtered;
    filtered.kind = Script::failing;
    filtered.error = CS_ERR_CONTENT_FILTER;
    script("model-a", {filtered});
    Collected out;
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "refusal");
    EXPECT_EQ(asked().size(), 1u);
}

TEST_F(ConnectorTest, AuthFailureSkipsEveryRouteOfThatProvider) {
    Script denied;
    denied.kind = Script::failing;
    denied.error = CS_ERR_AUTH;
    script("model-a", {denied});
    Collected out;
    run({"a", "b", "c"}, out);
    EXPECT_EQ(out.end().model, "model-c");
    EXPECT_EQ(asked(), (std::vector<std::string>{"model-a", "model-c"}));
}

TEST_F(ConnectorTest, EverythingFailingEndsWithAClearError) {
    Script down;
    down.kind = Script::failing;
    down.error = CS_ERR_SERVER;
    script("model-a", {down});
    script("model-c", {down});
    Collected out;
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "error");
    EXPECT_EQ(end.error_code, "server_error");
    EXPECT_LE(asked().size(), 4u) << "max_retries bounds the attempts";
}

TEST_F(ConnectorTest, VisionRequestsOnlyGoToVisionModels) {
    Collected out;
    run({"b", "c", "a"}, out, true);
    EXPECT_EQ(out.end().model, "model-a");
    Collected none;
    run({"b", "c"}, none, true);
    EXPECT_EQ(none.end().error_code, "no_capable_model");
}

TEST_F(ConnectorTest, CancelEndsPromptly) {
    Script slow;
    slow.tokens = 100000;
    script("model-a", {slow});
    Collected out;
    auto turn = run({"a"}, out);
    std::this_thread::sleep_for(30ms);
    auto t0 = std::chrono::steady_clock::now();
    turn->cancel();
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "cancelled");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "ends on cancel, not after the 100000 tokens";
}

TEST_F(ConnectorTest, APrimaryThatKeepsFailingIsSkippedUntilItRecovers) {
    settings_.breaker_failures = 2;
    settings_.breaker_cooldown = 1500ms;
    Script down;
    down.kind = Script::failing;
    down.error = CS_ERR_SERVER;
    script("model-a", {down});
    for (int i = 0; i < 2; ++i) {  // two turns: the primary fails twice (with its retry) and opens
        Collected out;
        run({"a", "c"}, out);
        EXPECT_EQ(out.end().model, "model-c");
    }
    size_t before = asked().size();
    Collected skipped;
    run({"a", "c"}, skipped);
    EXPECT_EQ(skipped.end().model, "model-c");
    EXPECT_EQ(asked().size(), before + 1) << "the open primary is not asked at all";
    EXPECT_EQ(asked().back(), "model-c");
    // It recovers; after the cooldown a probe goes to it and closes the circuit.
    script("model-a", {Script{}});
    std::this_thread::sleep_for(1600ms);
    Collected probe;
    run({"a", "c"}, probe);
    EXPECT_EQ(probe.end().model, "model-a");
    Collected again;
    run({"a", "c"}, again);
    EXPECT_EQ(again.end().model, "model-a");
}

TEST_F(ConnectorTest, TurnBudgetBoundsEverything) {
    settings_.turn_budget = 250ms;
    settings_.first_token_timeout = 10s;
    Script silent;
    silent.kind = Script::silent;
    script("model-a", {silent});
    Collected out;
    auto t0 = std::chrono::steady_clock::now();
    run({"a", "c"}, out);
    TurnEvent end = out.end();
    EXPECT_EQ(end.stop_reason, "error");
    EXPECT_EQ(end.error_code, "timeout");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

}  // namespace
}  // namespace consilium

namespace consilium {
namespace {

using namespace std::chrono_literals;

TEST(CircuitBreaker, OpensAfterFailuresProbesAndCloses) {
    CircuitBreaker b(3, 1000ms);
    auto t0 = CircuitBreaker::Clock::now();
    EXPECT_TRUE(b.allow(t0));
    EXPECT_FALSE(b.failure(t0));
    EXPECT_FALSE(b.failure(t0));
    EXPECT_TRUE(b.failure(t0)) << "the third failure in a row opens it";
    EXPECT_EQ(b.state(), CircuitBreaker::State::open);
    EXPECT_FALSE(b.allow(t0 + 500ms));
    EXPECT_TRUE(b.allow(t0 + 1000ms)) << "one probe after the cooldown";
    EXPECT_FALSE(b.allow(t0 + 1001ms)) << "only one probe at a time";
    EXPECT_TRUE(b.failure(t0 + 1100ms)) << "a failed probe opens it again";
    EXPECT_FALSE(b.allow(t0 + 2500ms)) << "for twice the cooldown";
    EXPECT_TRUE(b.allow(t0 + 3200ms));
    b.success();
    EXPECT_EQ(b.state(), CircuitBreaker::State::closed);
    EXPECT_TRUE(b.allow(t0 + 3200ms));
    b.failure(t0);
    b.success();
    b.failure(t0);
    b.failure(t0);
    EXPECT_EQ(b.state(), CircuitBreaker::State::closed) << "a success resets the count";
}

TEST(CircuitBreaker, ACancelledProbeFreesTheSlot) {
    CircuitBreaker b(1, 10ms);
    auto t0 = CircuitBreaker::Clock::now();
    b.failure(t0);
    EXPECT_TRUE(b.allow(t0 + 20ms));
    b.neutral();
    EXPECT_TRUE(b.allow(t0 + 21ms));
}

}  // namespace
}  // namespace consilium
