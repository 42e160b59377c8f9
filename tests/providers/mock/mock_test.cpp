// The mock provider: deterministic for a seed, persona-voiced with citations and follow-ups,
// paced, cancellable, and every fault injectable from its options.
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <mutex>

namespace consilium::test {
namespace {

using json = nlohmann::json;

struct Events {
    std::mutex mu;
    std::condition_variable cv;
    std::string text;
    std::string model;
    int terminal = 0;
    cs_stream_event last{};
    static void on(void *ctx, const cs_stream_event *e) {
        auto *self = static_cast<Events *>(ctx);
        std::lock_guard<std::mutex> lock(self->mu);
        if (e->type == CS_EV_TEXT) self->text.append(e->text.data, e->text.size);
        if (e->type == CS_EV_MODEL) self->model.assign(e->text.data, e->text.size);
        if (e->type == CS_EV_END || e->type == CS_EV_ERROR) {
            ++self->terminal;
            self->last = *e;
            self->cv.notify_all();
        }
    }
    bool wait(std::chrono::seconds d = std::chrono::seconds(10)) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, d, [this] { return terminal > 0; });
    }
};

json request(const std::string &text = "my skin itches") {
    return {{"model", "mock-clinical"},
            {"max_tokens", 200},
            {"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", text}}})}}})},
            {"persona",
             {{"id", "dermatology"}, {"name", "Dr. Test"}, {"title", "Dermatologist"},
              {"sources", json::array({{{"title", "NHS"}, {"url", "https://www.nhs.uk/"}}})},
              {"follow_ups", json::array({"Is it contagious?"})}}}};
}

struct StreamRun {
    Events ev;
    cs_stream *stream = nullptr;
    cs_status status = CS_OK;
    cs_error err{};
};

void start(PluginHarness &h, StreamRun &r, const json &req) {
    auto *vt = h.instance->vtable<cs_provider_vtable>();
    cs_stream_sink sink{sizeof(cs_stream_sink), &r.ev, &Events::on};
    std::string body = req.dump();
    r.status = vt->stream_start(h.instance->instance(), {body.data(), body.size()}, &sink, &r.stream, &r.err);
}

void release(PluginHarness &h, StreamRun &r) {
    if (r.stream) h.instance->vtable<cs_provider_vtable>()->stream_release(h.instance->instance(), r.stream);
}

TEST(MockProvider, DeterministicPersonaVoicedAnswers) {
    TempDir dir;
    PluginHarness h("provider", "mock", R"({"tokens_per_second": 0, "first_token_ms": 0, "reply_tokens": 80})", dir.str());
    StreamRun a, b, c;
    start(h, a, request());
    start(h, b, request());
    start(h, c, request("something completely different"));
    ASSERT_TRUE(a.ev.wait() && b.ev.wait() && c.ev.wait());
    EXPECT_EQ(a.ev.last.type, static_cast<uint32_t>(CS_EV_END));
    EXPECT_EQ(a.ev.last.stop_reason, static_cast<uint32_t>(CS_STOP_END_TURN));
    EXPECT_EQ(a.ev.text, b.ev.text) << "same seed and request: same answer";
    EXPECT_NE(a.ev.text, c.ev.text);
    EXPECT_NE(a.ev.text.find("Dermatologist"), std::string::npos);
    EXPECT_NE(a.ev.text.find("[[follow-ups]]\nIs it contagious?"), std::string::npos);
    EXPECT_EQ(a.ev.model, "mock-clinical");
    for (auto *r : {&a, &b, &c}) release(h, *r);
}

TEST(MockProvider, RefusesAnEmptyRequestBeforeAnyEvent) {
    TempDir dir;
    PluginHarness h("provider", "mock", "{}", dir.str());
    StreamRun r;
    start(h, r, json{{"model", "x"}});
    EXPECT_EQ(r.status, CS_E_INVALID);
    EXPECT_NE(std::string(r.err.message).find("no messages"), std::string::npos);
    EXPECT_EQ(r.ev.terminal, 0);
}

TEST(MockProvider, CancelEndsTheStream) {
    TempDir dir;
    PluginHarness h("provider", "mock", R"({"tokens_per_second": 5, "first_token_ms": 0, "reply_tokens": 500})", dir.str());
    StreamRun r;
    start(h, r, request());
    ASSERT_EQ(r.status, CS_OK);
    h.instance->vtable<cs_provider_vtable>()->stream_cancel(h.instance->instance(), r.stream);
    ASSERT_TRUE(r.ev.wait());
    EXPECT_EQ(r.ev.last.stop_reason, static_cast<uint32_t>(CS_STOP_CANCELLED));
    EXPECT_EQ(r.ev.terminal, 1);
    release(h, r);
}

struct FaultCase {
    const char *fault;
    cs_stream_event_type type;
    uint32_t detail;  // error kind or stop reason
};

class MockFaults : public ::testing::TestWithParam<FaultCase> {};

TEST_P(MockFaults, EachFaultCanBeInjected) {
    TempDir dir;
    json opts = {{"tokens_per_second", 0}, {"first_token_ms", 0}, {"reply_tokens", 40}, {"faults", {{GetParam().fault, 1.0}}}};
    PluginHarness h("provider", "mock", opts.dump(), dir.str());
    StreamRun r;
    start(h, r, request());
    ASSERT_EQ(r.status, CS_OK);
    if (std::string(GetParam().fault) == "timeout" || std::string(GetParam().fault) == "stall") {
        EXPECT_FALSE(r.ev.wait(std::chrono::seconds(1))) << "a silent provider sends no end by itself";
        h.instance->vtable<cs_provider_vtable>()->stream_cancel(h.instance->instance(), r.stream);
        ASSERT_TRUE(r.ev.wait());
    } else {
        ASSERT_TRUE(r.ev.wait());
    }
    EXPECT_EQ(r.ev.last.type, static_cast<uint32_t>(GetParam().type));
    if (GetParam().type == CS_EV_ERROR) EXPECT_EQ(r.ev.last.error_kind, GetParam().detail);
    else EXPECT_EQ(r.ev.last.stop_reason, GetParam().detail);
    EXPECT_EQ(r.ev.terminal, 1);
    release(h, r);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, MockFaults,
    ::testing::Values(FaultCase{"rate_limit", CS_EV_ERROR, CS_ERR_RATE_LIMITED},
                      FaultCase{"overloaded", CS_EV_ERROR, CS_ERR_OVERLOADED},
                      FaultCase{"server_error", CS_EV_ERROR, CS_ERR_SERVER},
                      FaultCase{"context_too_long", CS_EV_ERROR, CS_ERR_CONTEXT_TOO_LONG},
                      FaultCase{"disconnect_mid_stream", CS_EV_ERROR, CS_ERR_CONNECTION},
                      FaultCase{"refusal", CS_EV_END, CS_STOP_REFUSAL},
                      FaultCase{"timeout", CS_EV_END, CS_STOP_CANCELLED},
                      FaultCase{"stall", CS_EV_END, CS_STOP_CANCELLED}));

TEST(MockProvider, OptionsAreValidatedWithTheirPath) {
    TempDir dir;
    auto refused = [&](const std::string &opts) -> std::string {
        try {
            PluginHarness h("provider", "mock", opts, dir.str());
        } catch (const std::exception &e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(refused(R"({"tokens_per_secnd": 1})").find("provider.mock.tokens_per_secnd: unknown key"), std::string::npos);
    EXPECT_NE(refused(R"({"faults": {"rate_limit": 2}})").find("provider.mock.faults.rate_limit: must be between"),
              std::string::npos);
    EXPECT_NE(refused(R"({"faults": {"rate_limit": 0.7, "timeout": 0.7}})").find("add up to more than 1"), std::string::npos);
    EXPECT_NE(refused(R"({"seed": "x"})").find("provider.mock.seed: expected an integer"), std::string::npos);
}

TEST(MockProvider, FaultsCanTargetOneModel) {
    TempDir dir;
    json opts = {{"tokens_per_second", 0}, {"first_token_ms", 0}, {"faults", {{"server_error", 1.0}}},
                 {"faults_for", json::array({"mock-bad"})}};
    PluginHarness h("provider", "mock", opts.dump(), dir.str());
    StreamRun good, bad;
    json r = request();
    start(h, good, r);
    r["model"] = "mock-bad";
    start(h, bad, r);
    ASSERT_TRUE(good.ev.wait() && bad.ev.wait());
    EXPECT_EQ(good.ev.last.type, static_cast<uint32_t>(CS_EV_END));
    EXPECT_EQ(bad.ev.last.type, static_cast<uint32_t>(CS_EV_ERROR));
    release(h, good);
    release(h, bad);
}

}  // namespace
}  // namespace consilium::test
