// The "openai_compatible" provider plugin through PluginHarness against the fake OpenAI server:
// every recorded Chat Completions stream maps to the right events (first choice only, refusals,
// usage), the request follows the API (Bearer key or none, system message, image_url and file
// parts, the max tokens field), every fault maps to its error kind with exactly one terminal
// event, retry hints are read from each of their headers, cancel is prompt and keys never leak.
#include "provider_test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

namespace consilium::test {
namespace {

using fakes::FakeKind;

const char *kKeyEnv = "CONSILIUM_TEST_OPENAI_KEY";
const std::string kKey = "sk-proj-test-NEVER-LOG-ME-27182818284";

class OpenAi : public ProviderFixture {
protected:
    void SetUp() override { ::setenv(kKeyEnv, kKey.c_str(), 1); }

    void boot(const std::string &script_body = "", json extra_options = json::object(), bool fake_wants_key = true) {
        json script = script_body.empty() ? json::object() : json::parse(script_body);
        if (fake_wants_key && !script.contains("api_key")) script["api_key"] = kKey;
        start_fake(FakeKind::openai, script.dump());
        json opts = {{"base_url", fake->base_url()}, {"api_key_env", kKeyEnv}};
        for (auto it = extra_options.begin(); it != extra_options.end(); ++it) opts[it.key()] = it.value();
        load("openai_compatible", opts);
    }
};

// ---- Recorded streams -----------------------------------------------------------------------

struct Expected {
    std::string text, refusal, model, finish;
    int64_t input = -1, output = -1;
};

Expected expected_from(const std::string &rel) {
    std::ifstream in(protocols_dir() + "/" + rel, std::ios::binary);
    Expected e;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("data: ", 0) != 0 || line == "data: [DONE]") continue;
        json j = json::parse(line.substr(6));
        if (e.model.empty()) e.model = j.value("model", "");
        for (const json &c : j["choices"]) {
            if (c.value("index", 0) != 0) continue;
            const json &d = c["delta"];
            if (d.contains("content") && d["content"].is_string()) e.text += d["content"].get<std::string>();
            if (d.contains("refusal") && d["refusal"].is_string()) e.refusal += d["refusal"].get<std::string>();
            if (c.contains("finish_reason") && c["finish_reason"].is_string()) e.finish = c["finish_reason"];
        }
        if (j.contains("usage") && j["usage"].is_object()) {
            e.input = j["usage"]["prompt_tokens"];
            e.output = j["usage"]["completion_tokens"];
        }
    }
    return e;
}

struct RecordingCase {
    const char *file;
    cs_stop_reason stop;
};

class OpenAiRecordings : public OpenAi, public ::testing::WithParamInterface<RecordingCase> {};

TEST_P(OpenAiRecordings, MapToTheRightEvents) {
    const RecordingCase &c = GetParam();
    for (int chunked : {0, 1}) {
        SCOPED_TRACE(chunked ? "written 5 bytes at a time" : "written an event at a time");
        json script = {{"default", {{"replay", std::string("openai_chat/") + c.file}}}};
        if (chunked) script["default"]["chunk_bytes"] = 5;
        boot(script.dump());
        StreamRun &r = run(text_request("gpt-4o"));
        Expected e = expected_from(std::string("openai_chat/") + c.file);
        EXPECT_EQ(r.ev.text, e.text + e.refusal) << "the text, or the model's words of refusal";
        EXPECT_EQ(r.ev.model, e.model);
        EXPECT_EQ(r.ev.input_tokens, e.input);
        EXPECT_EQ(r.ev.output_tokens, e.output);
        EXPECT_TRUE(r.ev.ended_with(c.stop)) << r.ev.describe();
        EXPECT_EQ(r.ev.after_terminal, 0);
        TearDown();
        runs.clear();
    }
}

INSTANTIATE_TEST_SUITE_P(Recorded, OpenAiRecordings,
                         ::testing::Values(RecordingCase{"stream_text.sse", CS_STOP_END_TURN},
                                           RecordingCase{"stream_finish_length.sse", CS_STOP_MAX_TOKENS},
                                           RecordingCase{"stream_refusal.sse", CS_STOP_REFUSAL},
                                           RecordingCase{"stream_tool_call.sse", CS_STOP_END_TURN},
                                           RecordingCase{"stream_parallel_tool_calls.sse", CS_STOP_END_TURN},
                                           RecordingCase{"stream_n3_choices.sse", CS_STOP_END_TURN},
                                           RecordingCase{"stream_logprobs.sse", CS_STOP_END_TURN}));

TEST_F(OpenAi, TheRecordedTextStreamInDetail) {
    boot();
    StreamRun &r = run(text_request("gpt-4o"));
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_END_TURN)) << r.ev.describe();
    EXPECT_EQ(r.ev.model, "gpt-4o-2024-08-06");
    EXPECT_EQ(r.ev.text.rfind("I'm unable to provide", 0), 0u) << r.ev.text;
    EXPECT_EQ(r.ev.usage_events, 1);
}

TEST_F(OpenAi, OnlyTheFirstOfSeveralChoices) {
    boot(R"({"default": {"replay": "openai_chat/stream_n3_choices.sse"}})");
    StreamRun &r = run(text_request("gpt-4o"));
    Expected e = expected_from("openai_chat/stream_n3_choices.sse");
    EXPECT_FALSE(e.text.empty());
    EXPECT_EQ(r.ev.text, e.text);
}

// ---- The request sent -----------------------------------------------------------------------

TEST_F(OpenAi, TheRequestFollowsChatCompletions) {
    boot("", {{"organization", "org-test"}, {"extra_headers", {{"X-Tenant", "clinic-7"}}}});
    json rq = text_request("gpt-4o");
    rq["messages"] = json::array(
        {{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "first question"}}})}},
         {{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "first answer"}}})}},
         {{"role", "user"},
          {"content", json::array({{{"type", "image"}, {"media_type", "image/jpeg"}, {"data", "/9j/4AAQ"}},
                                   {{"type", "document"}, {"media_type", "application/pdf"}, {"data", "JVBERi0xLjQK"},
                                    {"title", "labs.pdf"}},
                                   {{"type", "text"}, {"text", "see attached"}}})}}});
    StreamRun &r = run(rq);
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_END_TURN)) << r.ev.describe();
    auto seen = fake->requests();
    ASSERT_EQ(seen.size(), 1u);
    const auto &q = seen[0];
    EXPECT_EQ(q.target, "/v1/chat/completions");
    EXPECT_EQ(q.header("authorization"), "Bearer " + kKey);
    EXPECT_EQ(q.header("openai-organization"), "org-test");
    EXPECT_EQ(q.header("x-tenant"), "clinic-7");
    EXPECT_EQ(q.header("content-type"), "application/json");
    json body = json::parse(q.body);
    EXPECT_EQ(body["model"], "gpt-4o");
    EXPECT_EQ(body["stream"], true);
    EXPECT_EQ(body["stream_options"], (json{{"include_usage", true}}));
    EXPECT_EQ(body["max_completion_tokens"], 512);
    EXPECT_FALSE(body.contains("max_tokens"));
    EXPECT_EQ(body["temperature"], 0.3);
    ASSERT_EQ(body["messages"].size(), 4u);
    EXPECT_EQ(body["messages"][0], (json{{"role", "system"}, {"content", "You are a careful clinician."}}));
    EXPECT_EQ(body["messages"][1], (json{{"role", "user"}, {"content", "first question"}}));
    EXPECT_EQ(body["messages"][2], (json{{"role", "assistant"}, {"content", "first answer"}}));
    const json &parts = body["messages"][3]["content"];
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[0], (json{{"type", "image_url"}, {"image_url", {{"url", "data:image/jpeg;base64,/9j/4AAQ"}}}}));
    EXPECT_EQ(parts[1], (json{{"type", "file"},
                              {"file", {{"filename", "labs.pdf"}, {"file_data", "data:application/pdf;base64,JVBERi0xLjQK"}}}}));
    EXPECT_EQ(parts[2], (json{{"type", "text"}, {"text", "see attached"}}));
}

TEST_F(OpenAi, NoFilePartWithoutDocumentsAndTheOlderMaxTokensField) {
    boot("", {{"max_tokens_field", "max_tokens"}});
    run(text_request("llama3"));
    json body = json::parse(fake->requests().at(0).body);
    EXPECT_EQ(body["max_tokens"], 512);
    EXPECT_FALSE(body.contains("max_completion_tokens"));
    EXPECT_EQ(body.dump().find("\"file\""), std::string::npos);
    EXPECT_EQ(body.dump().find("image_url"), std::string::npos);
}

TEST_F(OpenAi, ALocalServerNeedsNoKey) {
    ::unsetenv("CONSILIUM_TEST_OPENAI_NO_KEY");
    start_fake(FakeKind::openai);
    load("openai_compatible", {{"base_url", fake->base_url()}, {"api_key_env", "CONSILIUM_TEST_OPENAI_NO_KEY"}});
    StreamRun &r = run(text_request("qwen2.5:7b"));
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_END_TURN)) << r.ev.describe();
    EXPECT_FALSE(fake->requests().at(0).has_header("authorization"));
}

// ---- Faults ---------------------------------------------------------------------------------

struct FaultCase {
    const char *name;
    const char *action;
    cs_stream_event_type type;
    uint32_t detail;
    int status;
    int64_t retry_after_ms;  // -2: do not check
};

class OpenAiFaults : public OpenAi, public ::testing::WithParamInterface<FaultCase> {};

TEST_P(OpenAiFaults, MapToOneTerminalEvent) {
    const FaultCase &c = GetParam();
    boot(std::string(R"({"default": )") + c.action + "}");
    StreamRun &r = run(text_request("gpt-4o"), 15s);
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
        EXPECT_EQ(r.ev.message.find(kKey), std::string::npos);
        EXPECT_EQ(r.ev.message.find("headache"), std::string::npos);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, OpenAiFaults,
    ::testing::Values(
        FaultCase{"RateLimitRetryAfter", R"({"fault": "rate_limit", "retry_after": "2"})", CS_EV_ERROR, CS_ERR_RATE_LIMITED, 429, 2000},
        FaultCase{"RateLimitRetryAfterMs", R"({"fault": "rate_limit", "retry_after_ms": "1500"})", CS_EV_ERROR, CS_ERR_RATE_LIMITED, 429, 1500},
        FaultCase{"RateLimitResetRequests", R"({"fault": "rate_limit", "reset_requests": "6m0s"})", CS_EV_ERROR, CS_ERR_RATE_LIMITED, 429, 360000},
        FaultCase{"RateLimitNoHint", R"({"fault": "rate_limit"})", CS_EV_ERROR, CS_ERR_RATE_LIMITED, 429, -1},
        FaultCase{"InsufficientQuotaIsAuth", R"({"fault": "insufficient_quota"})", CS_EV_ERROR, CS_ERR_AUTH, 429, -2},
        FaultCase{"ContextTooLong", R"({"fault": "context_too_long"})", CS_EV_ERROR, CS_ERR_CONTEXT_TOO_LONG, 400, -2},
        FaultCase{"ContentFilter", R"({"fault": "content_filter"})", CS_EV_ERROR, CS_ERR_CONTENT_FILTER, 400, -2},
        FaultCase{"ServerError", R"({"fault": "server_error"})", CS_EV_ERROR, CS_ERR_SERVER, 500, -2},
        FaultCase{"Unavailable", R"({"fault": "unavailable"})", CS_EV_ERROR, CS_ERR_OVERLOADED, 503, -2},
        FaultCase{"Overloaded529", R"({"fault": "overloaded"})", CS_EV_ERROR, CS_ERR_OVERLOADED, 529, -2},
        FaultCase{"ResetBeforeHeaders", R"({"fault": "reset"})", CS_EV_ERROR, CS_ERR_CONNECTION, 0, -2},
        FaultCase{"CutMidStream", R"({"fault": "cut", "after_events": 3})", CS_EV_ERROR, CS_ERR_CONNECTION, 200, -2},
        FaultCase{"MalformedChunk", R"({"fault": "malformed", "after_events": 3})", CS_EV_ERROR, CS_ERR_PROTOCOL, 200, -2},
        // No [DONE] but the choice finished: complete.
        FaultCase{"NoDoneAfterFinish", R"({"fault": "no_end"})", CS_EV_END, CS_STOP_END_TURN, 0, -2},
        // The body ends cleanly before any finish_reason: truncated.
        FaultCase{"EofBeforeFinish", R"({"fault": "eof", "after_events": 4})", CS_EV_ERROR, CS_ERR_PROTOCOL, 200, -2},
        FaultCase{"StallThenContinue", R"({"fault": "stall", "after_events": 3, "ms": 300})", CS_EV_END, CS_STOP_END_TURN, 0, -2},
        FaultCase{"LateFirstByte", R"({"delay_ms": 300})", CS_EV_END, CS_STOP_END_TURN, 0, -2}),
    [](const ::testing::TestParamInfo<FaultCase> &i) { return std::string(i.param.name); });

TEST_F(OpenAi, InStreamErrorObjects) {
    // A server that fails after streaming a little: data: {"error": {...}}.
    std::string file = dir.str() + "/midstream_error.sse";
    {
        std::ofstream out(file, std::ios::binary);
        out << "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"vllm-model\",\"choices\":[{\"index\":0,"
               "\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
            << "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,"
               "\"code\":null}}\n\n";
    }
    boot(json{{"default", {{"replay", file}}}}.dump());
    StreamRun &r = run(text_request("gpt-4o"));
    EXPECT_TRUE(r.ev.failed_with(CS_ERR_SERVER)) << r.ev.describe();
    EXPECT_EQ(r.ev.text, "Hel");
    EXPECT_EQ(r.ev.model, "vllm-model");
    // vLLM puts the HTTP status in code.
    {
        std::ofstream out(file, std::ios::binary);
        out << "data: {\"object\":\"error\",\"message\":\"too long\",\"type\":\"BadRequestError\",\"code\":400}\n\n";
    }
    StreamRun &v = run(text_request("gpt-4o"));
    EXPECT_TRUE(v.ev.failed_with(CS_ERR_BAD_REQUEST)) << v.ev.describe();
}

TEST_F(OpenAi, AWrongKeyIsAnAuthErrorThatDoesNotRepeatIt) {
    LogCapture logs;
    boot(R"({"api_key": "the-right-key"})");
    StreamRun &r = run(text_request("gpt-4o"));
    ASSERT_TRUE(r.ev.failed_with(CS_ERR_AUTH)) << r.ev.describe();
    EXPECT_EQ(r.ev.last.http_status, 401);
    EXPECT_NE(r.ev.message.find("invalid_api_key"), std::string::npos) << r.ev.message;
    EXPECT_EQ(r.ev.message.find(kKey), std::string::npos) << "the fake echoed the key; the plugin must not";
    EXPECT_EQ(LogCapture::captured().find(kKey), std::string::npos);
}

TEST_F(OpenAi, DownForAWhileThenHealthy) {
    boot(R"({"default": {"fault": "down", "ms": 400, "as": "reset"}})");
    StreamRun &first = run(text_request("gpt-4o"));
    EXPECT_TRUE(first.ev.failed_with(CS_ERR_CONNECTION)) << first.ev.describe();
    std::this_thread::sleep_for(600ms);
    StreamRun &later = run(text_request("gpt-4o"));
    EXPECT_TRUE(later.ev.ended_with(CS_STOP_END_TURN)) << later.ev.describe();
}

TEST_F(OpenAi, PrefillIsRejectedByTheFake) {
    boot(R"({"default": {"fault": "reject_prefill"}})");
    json rq = text_request("gpt-4o");
    rq["messages"].push_back({{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "Sure,"}}})}});
    StreamRun &r = run(rq);
    EXPECT_TRUE(r.ev.failed_with(CS_ERR_BAD_REQUEST)) << r.ev.describe();
}

// ---- Cancellation and load ------------------------------------------------------------------

TEST_F(OpenAi, CancelAbortsPromptly) {
    boot(R"({"default": {"fault": "stall", "after_events": 2, "ms": 20000}})");
    StreamRun &r = start(text_request("gpt-4o"));
    ASSERT_EQ(r.status, CS_OK);
    ASSERT_TRUE(fake->wait_for_requests(1, 5s));
    std::this_thread::sleep_for(100ms);
    auto t0 = Clock::now();
    cancel(r);
    ASSERT_TRUE(r.ev.wait(5s));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(r.ev.terminal_at - t0).count();
    EXPECT_LT(took, 1000) << "cancel took " << took << " ms (goal: < 100 ms)";
    EXPECT_TRUE(r.ev.ended_with(CS_STOP_CANCELLED)) << r.ev.describe();
    EXPECT_TRUE(fake->wait_for_client_aborts(1, 5s));
}

TEST_F(OpenAi, AHundredStreamsWithEightAtATime) {
    boot(R"({"default": {"replay": "openai_chat/stream_finish_length.sse", "event_delay_ms": 2}})", {{"max_concurrent", 8}});
    std::vector<StreamRun *> all;
    for (int i = 0; i < 100; ++i) all.push_back(&start(text_request("gpt-4o")));
    for (StreamRun *r : all) {
        ASSERT_EQ(r->status, CS_OK);
        ASSERT_TRUE(r->ev.wait(60s));
        EXPECT_TRUE(r->ev.ended_with(CS_STOP_MAX_TOKENS)) << r->ev.describe();
        release(*r);
    }
    EXPECT_EQ(fake->request_count(), 100u);
    EXPECT_LE(fake->peak_in_flight(), 8u);
    EXPECT_GE(fake->peak_in_flight(), 2u) << "the streams did overlap";
}

// ---- Options --------------------------------------------------------------------------------

TEST_F(OpenAi, OptionsAreValidatedWithTheirPath) {
    const std::string id = "openai_compatible";
    EXPECT_NE(create_error(id, {{"bogus", true}}).find("provider.openai_compatible.bogus: unknown key"), std::string::npos);
    std::string inline_key = create_error(id, {{"api_key", kKey}});
    EXPECT_NE(inline_key.find("api_key_env"), std::string::npos) << inline_key;
    EXPECT_EQ(inline_key.find(kKey), std::string::npos);
    EXPECT_NE(create_error(id, {{"max_tokens_field", "max_new_tokens"}}).find("provider.openai_compatible.max_tokens_field"),
              std::string::npos);
    EXPECT_NE(create_error(id, {{"extra_headers", {{"Authorization", "Bearer x"}}}}).find("api_key_env"), std::string::npos);
    EXPECT_NE(create_error(id, {{"extra_headers", {{"X-A", 1}}}}).find("provider.openai_compatible.extra_headers.X-A"),
              std::string::npos);
    EXPECT_NE(create_error(id, {{"extra_headers", {{"X-A", "a\r\nB: c"}}}}).find("not a valid header"), std::string::npos);
    EXPECT_EQ(create_error(id, {{"base_url", "http://127.0.0.1:11434/v1/"}}), "");
}

}  // namespace
}  // namespace consilium::test
