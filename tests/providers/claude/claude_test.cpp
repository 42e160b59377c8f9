// The "claude" provider plugin through PluginHarness against the fake Anthropic server: every
// recorded stream maps to the right events, the request it sends follows the Messages API, every
// fault maps to its error kind or stop reason with exactly one terminal event, cancel is prompt,
// the key never reaches a log or an error, and 100 streams share 8 connections' worth of slots.
#include "provider_test_support.hpp"

#include <consilium/sdk/provider.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace consilium::test {
namespace {

using fakes::FakeKind;

const char *kKeyEnv = "CONSILIUM_TEST_CLAUDE_KEY";
const std::string kKey = "sk-ant-test-NEVER-LOG-ME-31415926535";

class Claude : public ProviderFixture {
protected:
    void SetUp() override { ::setenv(kKeyEnv, kKey.c_str(), 1); }

    // A fake with the script (and the key it insists on), and the plugin pointed at it.
    void boot(const std::string &script_body = "", json extra_options = json::object()) {
        json script = script_body.empty() ? json::object() : json::parse(script_body);
        if (!script.contains("api_key")) script["api_key"] = kKey;
        start_fake(FakeKind::anthropic, script.dump());
        json opts = {{"base_url", fake->base_url()}, {"api_key_env", kKeyEnv}};
        for (auto it = extra_options.begin(); it != extra_options.end(); ++it) opts[it.key()] = it.value();
        load("claude", opts);
    }
};

// ---- Recorded streams -----------------------------------------------------------------------

// What a recording says, read independently of the plugin: the text deltas, the model, the last
// usage, the citations.
struct Expected {
    std::string text, model;
    int64_t input = -1, output = -1;
    std::vector<json> citations;
};

Expected expected_from(const std::string &rel) {
    std::ifstream in(protocols_dir() + "/" + rel, std::ios::binary);
    Expected e;
    int64_t in_tokens = 0, cache = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("data:", 0) != 0) continue;
        json j = json::parse(line.substr(5));
        std::string type = j.value("type", "");
        auto usage = [&](const json &u) {
            if (u.contains("input_tokens")) in_tokens = u["input_tokens"];
            if (u.contains("cache_creation_input_tokens") || u.contains("cache_read_input_tokens"))
                cache = u.value("cache_creation_input_tokens", 0) + u.value("cache_read_input_tokens", 0);
            if (u.contains("output_tokens")) e.output = u["output_tokens"];
            e.input = in_tokens + cache;
        };
        if (type == "message_start") {
            e.model = j["message"].value("model", "");
            usage(j["message"]["usage"]);
        } else if (type == "content_block_delta" && j["delta"]["type"] == "text_delta") {
            e.text += j["delta"]["text"].get<std::string>();
        } else if (type == "content_block_delta" && j["delta"]["type"] == "citations_delta") {
            const json &c = j["delta"]["citation"];
            e.citations.push_back({{"title", c.value("document_title", "")}, {"cited_text", c.value("cited_text", "")}});
        } else if (type == "message_delta" && j.contains("usage")) {
            usage(j["usage"]);
        }
    }
    return e;
}

struct RecordingCase {
    const char *file;
    cs_stream_event_type type;
    uint32_t detail;  // stop reason or error kind
};

class ClaudeRecordings : public Claude, public ::testing::WithParamInterface<RecordingCase> {};

TEST_P(ClaudeRecordings, MapToTheRightEvents) {
    const RecordingCase &c = GetParam();
    for (int chunked : {0, 1}) {
        SCOPED_TRACE(chunked ? "written 7 bytes at a time" : "written an event at a time");
        json script = {{"default", {{"replay", std::string("anthropic/") + c.file}}}};
        if (chunked) script["default"]["chunk_bytes"] = 7;
        boot(script.dump());
        StreamRun &r = run(text_request("claude-sonnet-4-5"));
        Expected e = expected_from(std::string("anthropic/") + c.file);
        EXPECT_EQ(r.ev.text, e.text);
        EXPECT_EQ(r.ev.model, e.model);
        if (e.output >= 0) {
            EXPECT_EQ(r.ev.output_tokens, e.output);
            EXPECT_EQ(r.ev.input_tokens, e.input);
        }
        ASSERT_EQ(r.ev.citations.size(), e.citations.size());
        for (size_t i = 0; i < e.citations.size(); ++i) {
            EXPECT_EQ(r.ev.citations[i]["title"], e.citations[i]["title"]);
            EXPECT_EQ(r.ev.citations[i]["cited_text"], e.citations[i]["cited_text"]);
        }
        EXPECT_EQ(r.ev.terminal, 1);
        EXPECT_EQ(r.ev.after_terminal, 0);
        EXPECT_EQ(r.ev.last.type, static_cast<uint32_t>(c.type)) << r.ev.describe();
        if (c.type == CS_EV_END) {
            EXPECT_EQ(r.ev.last.stop_reason, c.detail) << r.ev.describe();
        } else {
            EXPECT_EQ(r.ev.last.error_kind, c.detail) << r.ev.describe();
        }
        TearDown();
        runs.clear();
    }
}

INSTANTIATE_TEST_SUITE_P(
    Recorded, ClaudeRecordings,
    ::testing::Values(
        RecordingCase{"recorded/stream_text_json_output.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"recorded/stream_text_beta.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"recorded/stream_tool_use_A.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"recorded/stream_tool_use_B.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"recorded/stream_after_tool_result_A.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"recorded/stream_after_tool_result_B.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"sdk_fixtures/stream_text.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"sdk_fixtures/stream_tool_use.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"sdk_fixtures/stream_refusal.sse", CS_EV_END, CS_STOP_REFUSAL},
        RecordingCase{"sdk_fixtures/stream_max_tokens_partial_tool_json.sse", CS_EV_END, CS_STOP_MAX_TOKENS},
        RecordingCase{"sdk_fixtures/stream_compaction_block.sse", CS_EV_END, CS_STOP_END_TURN},
        RecordingCase{"sdk_fixtures/stream_thinking_signature_refusal.sse", CS_EV_END, CS_STOP_REFUSAL},
        RecordingCase{"sdk_fixtures/stream_server_tool_web_search_refusal.sse", CS_EV_END, CS_STOP_REFUSAL},
        RecordingCase{"sdk_fixtures/stream_error_overloaded_event.sse", CS_EV_ERROR, CS_ERR_OVERLOADED},
        RecordingCase{"constructed/stream_midstream_overloaded.sse", CS_EV_ERROR, CS_ERR_OVERLOADED},
        // Only content blocks, no message_stop: the citations arrive, then the stream is truncated.
        RecordingCase{"constructed/stream_citations_delta_events.sse", CS_EV_ERROR, CS_ERR_PROTOCOL}));

TEST_F(Claude, TheRecordedTextStreamInDetail) {
    boot();
    StreamRun &r = run(text_request("claude-sonnet-4-5"));
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_END_TURN)) << r.ev.describe();
    EXPECT_EQ(r.ev.text, "[12345,67890]");
    EXPECT_EQ(r.ev.model, "claude-sonnet-4-5-20250929");
    EXPECT_EQ(r.ev.input_tokens, 135);
    EXPECT_EQ(r.ev.output_tokens, 10);
    EXPECT_EQ(r.ev.usage_events, 2) << "message_start and message_delta";
}

TEST_F(Claude, CitationsCarryTitleAndCitedText) {
    boot(R"({"default": {"replay": "anthropic/constructed/stream_citations_delta_events.sse"}})");
    StreamRun &r = run(text_request("claude-sonnet-4-5"));
    ASSERT_EQ(r.ev.citations.size(), 2u);
    EXPECT_EQ(r.ev.citations[0], (json{{"title", "Nature Facts"}, {"cited_text", "The grass is green. "}}));
    EXPECT_EQ(r.ev.citations[1], (json{{"title", "report.pdf"}, {"cited_text", "Revenue grew 12%."}}));
    EXPECT_EQ(r.ev.text, "the grass is green");
}

// ---- The request sent -----------------------------------------------------------------------

TEST_F(Claude, TheRequestFollowsTheMessagesApi) {
    boot();
    json rq = text_request("claude-sonnet-4-5");
    rq["messages"] = json::array(
        {{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "first question"}}})}},
         {{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "first answer"}}})}},
         {{"role", "user"},
          {"content", json::array({{{"type", "image"}, {"media_type", "image/png"}, {"data", "iVBORw0KGgo="}},
                                   {{"type", "document"}, {"media_type", "application/pdf"}, {"data", "JVBERi0xLjQK"},
                                    {"title", "labs.pdf"}},
                                   {{"type", "text"}, {"text", "see attached"}}})}}});
    rq["persona"] = {{"id", "dermatology"}};
    StreamRun &r = run(rq);
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_END_TURN)) << r.ev.describe();
    auto seen = fake->requests();
    ASSERT_EQ(seen.size(), 1u);
    const auto &q = seen[0];
    EXPECT_EQ(q.method, "POST");
    EXPECT_EQ(q.target, "/v1/messages");
    EXPECT_EQ(q.header("x-api-key"), kKey);
    EXPECT_EQ(q.header("anthropic-version"), "2023-06-01");
    EXPECT_EQ(q.header("content-type"), "application/json");
    EXPECT_FALSE(q.has_header("anthropic-beta"));
    EXPECT_FALSE(q.has_header("authorization"));
    json body = json::parse(q.body);
    EXPECT_EQ(body["model"], "claude-sonnet-4-5");
    EXPECT_EQ(body["max_tokens"], 512);
    EXPECT_EQ(body["temperature"], 0.3);
    EXPECT_EQ(body["stream"], true);
    EXPECT_EQ(body["system"], "You are a careful clinician.");
    EXPECT_FALSE(body.contains("persona"));
    EXPECT_FALSE(body.contains("locale"));
    EXPECT_FALSE(body.contains("timeouts"));
    ASSERT_EQ(body["messages"].size(), 3u);
    EXPECT_EQ(body["messages"][1], (json{{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "first answer"}}})}}));
    const json &blocks = body["messages"][2]["content"];
    ASSERT_EQ(blocks.size(), 3u);
    EXPECT_EQ(blocks[0], (json{{"type", "image"},
                               {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", "iVBORw0KGgo="}}}}));
    EXPECT_EQ(blocks[1], (json{{"type", "document"},
                               {"source", {{"type", "base64"}, {"media_type", "application/pdf"}, {"data", "JVBERi0xLjQK"}}},
                               {"citations", {{"enabled", true}}},
                               {"title", "labs.pdf"}}));
    EXPECT_EQ(blocks[2], (json{{"type", "text"}, {"text", "see attached"}}));
}

TEST_F(Claude, BetaAndVersionOptionsBecomeHeaders) {
    boot("", {{"beta", "pdfs-2024-09-25"}, {"anthropic_version", "2023-06-01"}});
    run(text_request("claude-sonnet-4-5"));
    auto seen = fake->requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].header("anthropic-beta"), "pdfs-2024-09-25");
}

TEST_F(Claude, AnUnsupportedBlockIsRefusedBeforeAnyEvent) {
    boot();
    json rq = text_request("claude-sonnet-4-5");
    rq["messages"][0]["content"].push_back({{"type", "audio"}, {"data", "x"}});
    StreamRun &r = start(rq);
    EXPECT_EQ(r.status, CS_E_INVALID);
    EXPECT_NE(std::string(r.err.message).find("unsupported content block type \"audio\""), std::string::npos);
    EXPECT_EQ(r.ev.terminal, 0);
    r.stream = nullptr;
    EXPECT_EQ(fake->request_count(), 0u);
}

// ---- Faults ---------------------------------------------------------------------------------

struct FaultCase {
    const char *name;
    const char *action;  // the script's default action
    cs_stream_event_type type;
    uint32_t detail;
    int status;
    int64_t retry_after_ms;  // -2: do not check
};

class ClaudeFaults : public Claude, public ::testing::WithParamInterface<FaultCase> {};

TEST_P(ClaudeFaults, MapToOneTerminalEvent) {
    const FaultCase &c = GetParam();
    boot(std::string(R"({"default": )") + c.action + "}");
    StreamRun &r = run(text_request("claude-sonnet-4-5"), 15s);
    EXPECT_EQ(r.ev.terminal, 1);
    EXPECT_EQ(r.ev.after_terminal, 0);
    EXPECT_EQ(r.ev.last.type, static_cast<uint32_t>(c.type)) << r.ev.describe();
    if (c.type == CS_EV_END) {
        EXPECT_EQ(r.ev.last.stop_reason, c.detail) << r.ev.describe();
    } else {
        EXPECT_EQ(r.ev.last.error_kind, c.detail) << r.ev.describe();
        EXPECT_EQ(r.ev.last.http_status, c.status) << r.ev.describe();
        if (c.retry_after_ms != -2) {
            EXPECT_EQ(r.ev.last.retry_after_ms, c.retry_after_ms) << r.ev.describe();
        }
        EXPECT_NE(r.ev.message.find("claude"), std::string::npos) << r.ev.message;
        EXPECT_EQ(r.ev.message.find(kKey), std::string::npos);
        EXPECT_EQ(r.ev.message.find("headache"), std::string::npos) << "no prompt text in errors";
    }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, ClaudeFaults,
    ::testing::Values(
        FaultCase{"RateLimitWithRetryAfter", R"({"fault": "rate_limit", "retry_after": "3"})", CS_EV_ERROR, CS_ERR_RATE_LIMITED, 429, 3000},
        FaultCase{"RateLimitWithoutRetryAfter", R"({"fault": "rate_limit"})", CS_EV_ERROR, CS_ERR_RATE_LIMITED, 429, -1},
        FaultCase{"RecordedRateLimit", R"({"replay": "anthropic/recorded/error_429_rate_limit_streamreq.body.json"})", CS_EV_ERROR, CS_ERR_RATE_LIMITED, 429, -1},
        FaultCase{"ServerError", R"({"fault": "server_error"})", CS_EV_ERROR, CS_ERR_SERVER, 500, -2},
        FaultCase{"Unavailable", R"({"fault": "unavailable"})", CS_EV_ERROR, CS_ERR_OVERLOADED, 503, -2},
        FaultCase{"Overloaded", R"({"fault": "overloaded"})", CS_EV_ERROR, CS_ERR_OVERLOADED, 529, -2},
        FaultCase{"ContextTooLong", R"({"fault": "context_too_long"})", CS_EV_ERROR, CS_ERR_CONTEXT_TOO_LONG, 400, -2},
        FaultCase{"RequestTooLarge", R"({"replay": "anthropic/constructed/error_413_request_too_large.json"})", CS_EV_ERROR, CS_ERR_CONTEXT_TOO_LONG, 413, -2},
        FaultCase{"InvalidRequest", R"({"replay": "anthropic/constructed/error_400_invalid_request_error.json"})", CS_EV_ERROR, CS_ERR_BAD_REQUEST, 400, -2},
        FaultCase{"RecordedInvalidRequest", R"({"replay": "anthropic/recorded/error_400_invalid_request.body.json"})", CS_EV_ERROR, CS_ERR_BAD_REQUEST, 400, -2},
        FaultCase{"Authentication", R"({"replay": "anthropic/constructed/error_401_authentication_error.json"})", CS_EV_ERROR, CS_ERR_AUTH, 401, -2},
        FaultCase{"Billing", R"({"fault": "insufficient_quota"})", CS_EV_ERROR, CS_ERR_AUTH, 402, -2},
        FaultCase{"Permission", R"({"replay": "anthropic/constructed/error_403_permission_error.json"})", CS_EV_ERROR, CS_ERR_AUTH, 403, -2},
        FaultCase{"NotFound", R"({"replay": "anthropic/constructed/error_404_not_found_error.json"})", CS_EV_ERROR, CS_ERR_NOT_FOUND, 404, -2},
        FaultCase{"GatewayTimeout", R"({"replay": "anthropic/constructed/error_504_timeout_error.json"})", CS_EV_ERROR, CS_ERR_TIMEOUT, 504, -2},
        FaultCase{"ContentFilterIsARefusal", R"({"fault": "content_filter"})", CS_EV_END, CS_STOP_REFUSAL, 0, -2},
        FaultCase{"ResetBeforeHeaders", R"({"fault": "reset"})", CS_EV_ERROR, CS_ERR_CONNECTION, 0, -2},
        FaultCase{"CutMidStream", R"({"fault": "cut", "after_events": 4})", CS_EV_ERROR, CS_ERR_CONNECTION, 200, -2},
        FaultCase{"MalformedEvent", R"({"fault": "malformed", "after_events": 4})", CS_EV_ERROR, CS_ERR_PROTOCOL, 200, -2},
        FaultCase{"NoMessageStop", R"({"fault": "no_end"})", CS_EV_ERROR, CS_ERR_PROTOCOL, 200, -2},
        FaultCase{"CleanEofMidStream", R"({"fault": "eof", "after_events": 5})", CS_EV_ERROR, CS_ERR_PROTOCOL, 200, -2},
        FaultCase{"StallThenContinue", R"({"fault": "stall", "after_events": 3, "ms": 300})", CS_EV_END, CS_STOP_END_TURN, 0, -2},
        FaultCase{"LateFirstByte", R"({"delay_ms": 300})", CS_EV_END, CS_STOP_END_TURN, 0, -2},
        FaultCase{"NotAnEventStream", R"({"replay": "anthropic/recorded/nonstream_message_json_output.body.json"})", CS_EV_ERROR, CS_ERR_PROTOCOL, 200, -2}),
    [](const ::testing::TestParamInfo<FaultCase> &i) { return std::string(i.param.name); });

TEST_F(Claude, RetryAfterAsAnHttpDate) {
    boot(R"({"default": {"fault": "rate_limit", "retry_after": "Fri, 31 Dec 2100 23:59:59 GMT"}})");
    StreamRun &r = run(text_request("claude-sonnet-4-5"));
    ASSERT_TRUE(r.ev.failed_with(CS_ERR_RATE_LIMITED)) << r.ev.describe();
    EXPECT_GT(r.ev.last.retry_after_ms, int64_t(1000) * 3600 * 24 * 365 * 50);
}

TEST_F(Claude, AWrongKeyIsAnAuthError) {
    boot(R"({"api_key": "a-different-key"})");
    StreamRun &r = run(text_request("claude-sonnet-4-5"));
    ASSERT_TRUE(r.ev.failed_with(CS_ERR_AUTH)) << r.ev.describe();
    EXPECT_EQ(r.ev.last.http_status, 401);
    EXPECT_NE(r.ev.message.find("authentication_error"), std::string::npos) << r.ev.message;
    EXPECT_NE(r.ev.message.find("req_"), std::string::npos) << "the request id is in the message: " << r.ev.message;
}

TEST_F(Claude, PrefillIsRejectedByTheFake) {
    boot(R"({"default": {"fault": "reject_prefill"}})");
    json rq = text_request("claude-sonnet-4-5");
    StreamRun &ok = run(rq);
    EXPECT_TRUE(ok.ev.ended_with(CS_STOP_END_TURN)) << ok.ev.describe();
    rq["messages"].push_back({{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "Sure,"}}})}});
    StreamRun &r = run(rq);
    EXPECT_TRUE(r.ev.failed_with(CS_ERR_BAD_REQUEST)) << r.ev.describe();
}

TEST_F(Claude, RolesThatDoNotAlternateAreRejectedLikeTheRealApi) {
    boot();
    json rq = text_request("claude-sonnet-4-5");
    rq["messages"].push_back(rq["messages"][0]);
    StreamRun &r = run(rq);
    EXPECT_TRUE(r.ev.failed_with(CS_ERR_BAD_REQUEST)) << r.ev.describe();
    EXPECT_EQ(fake->requests().at(0).action, "invalid");
}

TEST_F(Claude, FaultsCanTargetOneModelOrOneRequest) {
    boot(R"({"models": {"claude-bad": {"fault": "server_error"}}, "requests": {"3": {"fault": "overloaded"}}})");
    StreamRun &good = run(text_request("claude-good"));
    StreamRun &bad = run(text_request("claude-bad"));
    StreamRun &third = run(text_request("claude-good"));
    EXPECT_TRUE(good.ev.ended_with(CS_STOP_END_TURN)) << good.ev.describe();
    EXPECT_TRUE(bad.ev.failed_with(CS_ERR_SERVER)) << bad.ev.describe();
    EXPECT_TRUE(third.ev.failed_with(CS_ERR_OVERLOADED)) << third.ev.describe();
}

TEST_F(Claude, DownForAWhileThenHealthy) {
    boot(R"({"default": {"fault": "down", "ms": 400}})");
    StreamRun &first = run(text_request("claude-sonnet-4-5"));
    EXPECT_TRUE(first.ev.failed_with(CS_ERR_OVERLOADED)) << first.ev.describe();
    std::this_thread::sleep_for(600ms);
    StreamRun &later = run(text_request("claude-sonnet-4-5"));
    EXPECT_TRUE(later.ev.ended_with(CS_STOP_END_TURN)) << later.ev.describe();
}

// ---- Cancellation, timeouts, shutdown -------------------------------------------------------

TEST_F(Claude, CancelAbortsAHangingRequestPromptly) {
    boot(R"({"default": {"fault": "hang"}})");
    StreamRun &r = start(text_request("claude-sonnet-4-5"));
    ASSERT_EQ(r.status, CS_OK);
    ASSERT_TRUE(fake->wait_for_requests(1, 5s));
    auto t0 = Clock::now();
    cancel(r);
    ASSERT_TRUE(r.ev.wait(5s));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(r.ev.terminal_at - t0).count();
    EXPECT_LT(took, 1000) << "cancel took " << took << " ms (goal: < 100 ms)";
    RecordProperty("cancel_ms", static_cast<int>(took));
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_CANCELLED)) << r.ev.describe();
    EXPECT_TRUE(fake->wait_for_client_aborts(1, 5s)) << "the transfer was really aborted";
    cancel(r);  // idempotent
    release(r);
}

TEST_F(Claude, CancelMidStream) {
    boot(R"({"default": {"fault": "stall", "after_events": 5, "ms": 20000}})");
    StreamRun &r = start(text_request("claude-sonnet-4-5"));
    ASSERT_EQ(r.status, CS_OK);
    for (int i = 0; i < 500; ++i) {
        {
            std::lock_guard<std::mutex> lock(r.ev.mu);
            if (!r.ev.text.empty()) break;
        }
        std::this_thread::sleep_for(10ms);
    }
    auto t0 = Clock::now();
    cancel(r);
    ASSERT_TRUE(r.ev.wait(5s));
    EXPECT_LT(r.ev.terminal_at - t0, 1s);
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_CANCELLED)) << r.ev.describe();
    EXPECT_EQ(r.ev.text, "[12");
    EXPECT_TRUE(fake->wait_for_client_aborts(1, 5s));
}

TEST_F(Claude, ConnectionRefused) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    ::close(fd);
    load("claude", {{"base_url", "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port))}, {"api_key_env", kKeyEnv}});
    StreamRun &r = run(text_request("claude-sonnet-4-5"));
    EXPECT_TRUE(r.ev.failed_with(CS_ERR_CONNECTION)) << r.ev.describe();
}

TEST_F(Claude, ConnectTimeoutFromTheRequest) {
    // A listener with a full accept queue: the SYN goes unanswered.
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener, reinterpret_cast<sockaddr *>(&a), sizeof a);
    ::listen(listener, 0);
    socklen_t len = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr *>(&a), &len);
    int filler = ::socket(AF_INET, SOCK_STREAM, 0);
    ::connect(filler, reinterpret_cast<sockaddr *>(&a), sizeof a);
    load("claude", {{"base_url", "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port))}, {"api_key_env", kKeyEnv}});
    json rq = text_request("claude-sonnet-4-5");
    rq["timeouts"]["connect_ms"] = 300;
    auto t0 = Clock::now();
    StreamRun &r = run(rq);
    EXPECT_TRUE(r.ev.failed_with(CS_ERR_TIMEOUT)) << r.ev.describe();
    EXPECT_LT(Clock::now() - t0, 5s);
    harness.reset();
    ::close(filler);
    ::close(listener);
}

TEST_F(Claude, DestroyingTheInstanceEndsItsStreams) {
    boot(R"({"default": {"fault": "hang"}})");
    StreamRun &a = start(text_request("claude-sonnet-4-5"));
    StreamRun &b = start(text_request("claude-sonnet-4-5"));
    ASSERT_TRUE(fake->wait_for_requests(2, 5s));
    // The host releases streams only after their end; here the instance goes first, so the
    // handles are freed by hand afterwards, with the library kept loaded for their destructors.
    host::LoadedPlugin keep = host::load_plugin(plugin_file("provider", "claude"));
    a.released = b.released = true;
    harness.reset();
    EXPECT_TRUE(a.ev.failed_with(CS_ERR_CONNECTION)) << a.ev.describe();
    EXPECT_TRUE(b.ev.failed_with(CS_ERR_CONNECTION)) << b.ev.describe();
    for (StreamRun *r : {&a, &b}) delete reinterpret_cast<consilium::sdk::Stream *>(r->stream);
}

TEST_F(Claude, AHundredStreamsWithEightAtATime) {
    boot(R"({"default": {"event_delay_ms": 2}})", {{"max_concurrent", 8}});
    std::vector<StreamRun *> all;
    for (int i = 0; i < 100; ++i) {
        all.push_back(&start(text_request("claude-sonnet-4-5")));
        ASSERT_EQ(all.back()->status, CS_OK);
    }
    for (StreamRun *r : all) {
        ASSERT_TRUE(r->ev.wait(60s));
        EXPECT_TRUE(r->ev.ended_with(CS_STOP_END_TURN)) << r->ev.describe();
        EXPECT_EQ(r->ev.text, "[12345,67890]");
        release(*r);
    }
    EXPECT_EQ(fake->request_count(), 100u);
    EXPECT_LE(fake->peak_in_flight(), 8u);
    EXPECT_GE(fake->peak_in_flight(), 2u) << "the streams did overlap";
}

// ---- Keys and options -----------------------------------------------------------------------

TEST_F(Claude, TheKeyNeverReachesLogsOrErrors) {
    LogCapture logs;
    for (const char *action : {R"({"fault": "rate_limit", "retry_after": "1"})", R"({"fault": "reset"})",
                               R"({"fault": "malformed", "after_events": 2})", R"({"fault": "server_error"})", "{}"}) {
        boot(std::string(R"({"default": )") + action + "}");
        StreamRun &r = run(text_request("claude-sonnet-4-5"));
        EXPECT_EQ(r.ev.message.find(kKey), std::string::npos) << r.ev.message;
        TearDown();
    }
    boot(R"({"api_key": "another"})");
    StreamRun &r = run(text_request("claude-sonnet-4-5"));
    EXPECT_TRUE(r.ev.failed_with(CS_ERR_AUTH));
    EXPECT_EQ(r.ev.message.find(kKey), std::string::npos) << r.ev.message;
    std::string text = LogCapture::captured();
    EXPECT_NE(text.find("claude"), std::string::npos) << "the plugin did log";
    EXPECT_NE(text.find("status=429"), std::string::npos) << text;
    EXPECT_EQ(text.find(kKey), std::string::npos) << "the key is in the logs";
    EXPECT_EQ(text.find("headache"), std::string::npos) << "the prompt is in the logs";
    EXPECT_EQ(text.find("12345"), std::string::npos) << "the answer is in the logs";
}

TEST_F(Claude, OptionsAreValidatedWithTheirPath) {
    EXPECT_NE(create_error("claude", {{"api_key_env", kKeyEnv}, {"bogus", 1}}).find("provider.claude.bogus: unknown key"),
              std::string::npos);
    std::string inline_key = create_error("claude", {{"api_key", kKey}});
    EXPECT_NE(inline_key.find("provider.claude.api_key"), std::string::npos) << inline_key;
    EXPECT_NE(inline_key.find("api_key_env"), std::string::npos) << inline_key;
    EXPECT_EQ(inline_key.find(kKey), std::string::npos) << "the refusal repeats the key";
    ::unsetenv("CONSILIUM_TEST_CLAUDE_NO_KEY");
    std::string missing = create_error("claude", {{"api_key_env", "CONSILIUM_TEST_CLAUDE_NO_KEY"}});
    EXPECT_NE(missing.find("CONSILIUM_TEST_CLAUDE_NO_KEY"), std::string::npos) << missing;
    EXPECT_NE(create_error("claude", {{"api_key_env", kKeyEnv}, {"max_concurrent", 0}}).find("provider.claude.max_concurrent"),
              std::string::npos);
    EXPECT_NE(create_error("claude", {{"api_key_env", kKeyEnv}, {"base_url", "api.anthropic.com"}}).find("provider.claude.base_url"),
              std::string::npos);
    EXPECT_EQ(create_error("claude", {{"api_key_env", kKeyEnv}}), "");
}

TEST_F(Claude, TheKeyCanComeFromAFile) {
    std::string file = dir.str() + "/anthropic.key";
    {
        std::ofstream out(file);
        out << kKey << "\n";
    }
    start_fake(FakeKind::anthropic, json{{"api_key", kKey}}.dump());
    load("claude", {{"base_url", fake->base_url()}, {"api_key_file", file}, {"api_key_env", ""}});
    StreamRun &r = run(text_request("claude-sonnet-4-5"));
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_END_TURN)) << r.ev.describe();
}

}  // namespace
}  // namespace consilium::test
