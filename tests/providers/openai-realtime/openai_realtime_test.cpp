// The "openai_realtime" provider plugin through PluginHarness against the fake OpenAI Realtime
// server, always through the raw ABI 1.1 entries of cs_provider_vtable (voice_session,
// relay_open, relay_send, relay_close, relay_release) so that the ABI is what is tested:
//  - voice_session posts the GA client-secret shape (instructions, voice, VAD, transcription,
//    expiry) and maps the response; 401/403/429/5xx/connection failures map to statuses whose
//    messages never carry the key;
//  - a relay sends session.update first, carries client frames upstream in order and the fake's
//    events to the sink in order and byte for byte, and ends with exactly one on_close however it
//    ends (client close, upstream close or cut, upgrade refused, connect timeout, malformed frame,
//    send queue full, the instance going away); send after close is harmless; 20 relays at once;
//  - stream_start is refused; options are validated with their path; the key never reaches a log.
#include "http_client.hpp"
#include "provider_test_support.hpp"

#include <consilium/sdk/provider.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

namespace consilium::test {
namespace {

using fakes::FakeKind;
using ojson = nlohmann::ordered_json;

const char *kKeyEnv = "CONSILIUM_TEST_OPENAI_REALTIME_KEY";
const std::string kKey = "sk-proj-realtime-NEVER-LOG-ME-16180339887";
const std::string kInstructions = "You are Dr. Ada, a careful dermatologist. Speak plainly.";

std::string rt_dir() { return protocols_dir() + "/openai_realtime"; }

std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The voice request as the engine sends it (engine/src/voice/voice.cpp).
json voice_request() {
    return {{"model", "gpt-realtime"},
            {"instructions", kInstructions},
            {"voice", "marin"},
            {"turn_detection", {{"type", "server_vad"}}},
            {"input_audio_transcription", {{"model", "gpt-4o-transcribe"}}},
            {"expires_after_s", 600}};
}

// The constructed session sequence read independently of the fake: each server line as the real
// service would send it (the file's "_dir" annotation removed, everything else byte for byte).
struct SequenceLines {
    std::vector<std::string> opening;                             // before any client line
    std::map<std::string, std::vector<std::string>> after;        // after each client line type
};

SequenceLines sequence() {
    std::ifstream in(rt_dir() + "/constructed/ws_session_sequence.jsonl", std::ios::binary);
    SequenceLines s;
    std::vector<std::string> *into = &s.opening;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        ojson j = ojson::parse(line);
        std::string dir = j.value("_dir", "");
        j.erase("_dir");
        if (dir == "client") {
            into = &s.after[j.value("type", "")];
            continue;
        }
        into->push_back(j.dump());
    }
    return s;
}

// Is every key of `sent` present in `reference` at the same place, with a value of the same kind?
// (The GA request shape of constructed/client_secret_request_full.json, for instance.)
::testing::AssertionResult shape_within(const json &sent, const json &reference, const std::string &path = "") {
    if (sent.is_object()) {
        if (!reference.is_object()) return ::testing::AssertionFailure() << path << " is an object, not in the reference";
        for (auto it = sent.begin(); it != sent.end(); ++it) {
            std::string p = path.empty() ? it.key() : path + "." + it.key();
            if (!reference.contains(it.key())) return ::testing::AssertionFailure() << p << " is not in the reference shape";
            if (it.value().is_null()) continue;
            auto r = shape_within(it.value(), reference[it.key()], p);
            if (!r) return r;
        }
        return ::testing::AssertionSuccess();
    }
    if (sent.is_number() && reference.is_number()) return ::testing::AssertionSuccess();
    if (sent.type() != reference.type()) return ::testing::AssertionFailure() << path << " has another type than the reference";
    return ::testing::AssertionSuccess();
}

// Everything one relay delivered. LIFETIME: the sink context; kept until after the plugin is gone.
struct RelayEvents {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> frames;
    int closes = 0;
    int after_close = 0;  // frames or closes after the first close (must stay 0)
    int code = 0;
    std::string reason;
    Clock::time_point closed_at{};

    static void on_frame(void *ctx, cs_str f) {
        auto *self = static_cast<RelayEvents *>(ctx);
        std::lock_guard<std::mutex> lock(self->mu);
        if (self->closes > 0) {
            ++self->after_close;
            return;
        }
        self->frames.emplace_back(f.data, f.size);
        self->cv.notify_all();
    }
    static void on_close(void *ctx, int code, cs_str reason) {
        auto *self = static_cast<RelayEvents *>(ctx);
        std::lock_guard<std::mutex> lock(self->mu);
        if (self->closes++ > 0) {
            ++self->after_close;
            return;
        }
        self->code = code;
        self->reason.assign(reason.data, reason.size);
        self->closed_at = Clock::now();
        self->cv.notify_all();
    }
    bool wait_frames(size_t n, std::chrono::milliseconds d = 10s) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, d, [&] { return frames.size() >= n || closes > 0; }) && frames.size() >= n;
    }
    bool wait_close(std::chrono::milliseconds d = 10s) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, d, [&] { return closes > 0; });
    }
    bool closed() {
        std::lock_guard<std::mutex> lock(mu);
        return closes > 0;
    }
    std::vector<std::string> got() {
        std::lock_guard<std::mutex> lock(mu);
        return frames;
    }
    std::string describe() {
        std::lock_guard<std::mutex> lock(mu);
        return "closes=" + std::to_string(closes) + " code=" + std::to_string(code) + " reason=\"" + reason +
               "\" frames=" + std::to_string(frames.size());
    }
};

struct RelayRun {
    RelayEvents ev;
    cs_relay_sink sink{};
    cs_relay *relay = nullptr;
    cs_status status = CS_OK;
    cs_error err{};
    bool released = false;
};

struct Minted {
    cs_status status = CS_OK;
    std::string message;
    json out;
    int responds = 0;
};

class Realtime : public ProviderFixture {
protected:
    std::deque<RelayRun> relays;

    void SetUp() override { ::setenv(kKeyEnv, kKey.c_str(), 1); }

    void TearDown() override {
        if (harness) {
            for (auto &r : relays) {
                if (!r.relay || r.released) continue;
                if (!r.ev.closed()) close(r);
                EXPECT_TRUE(r.ev.wait_close(10s)) << "a relay never closed";
                release(r);
            }
        }
        ProviderFixture::TearDown();
        for (auto &r : relays) {
            std::lock_guard<std::mutex> lock(r.ev.mu);
            EXPECT_LE(r.ev.closes, 1) << "more than one on_close";
            EXPECT_EQ(r.ev.after_close, 0) << "something came after on_close";
            if (r.relay) {
                EXPECT_EQ(r.ev.closes, 1) << "an opened relay ended without on_close";
            }
        }
    }

    void boot(const std::string &script_body = "", json extra_options = json::object()) {
        json script = script_body.empty() ? json::object() : json::parse(script_body);
        if (!script.contains("api_key")) script["api_key"] = kKey;
        start_fake(FakeKind::openai_realtime, script.dump());
        json opts = {{"base_url", fake->base_url()}, {"api_key_env", kKeyEnv}};
        for (auto it = extra_options.begin(); it != extra_options.end(); ++it) opts[it.key()] = it.value();
        load("openai_realtime", opts);
    }

    Minted mint(const json &request) {
        Minted m;
        cs_error err{};
        std::string body = request.dump();
        m.status = vt()->voice_session(
            harness->instance->instance(), {body.data(), body.size()},
            [](void *c, cs_str j) {
                auto *mm = static_cast<Minted *>(c);
                ++mm->responds;
                mm->out = json::parse(std::string(j.data, j.size), nullptr, false);
            },
            &m, &err);
        m.message = err.message;
        return m;
    }

    RelayRun &open(const json &request) {
        RelayRun &r = relays.emplace_back();
        r.sink = cs_relay_sink{sizeof(cs_relay_sink), &r.ev, &RelayEvents::on_frame, &RelayEvents::on_close};
        std::string body = request.dump();
        r.status = vt()->relay_open(harness->instance->instance(), {body.data(), body.size()}, &r.sink, &r.relay, &r.err);
        if (r.status != CS_OK) r.relay = nullptr;
        return r;
    }
    void send(RelayRun &r, const std::string &frame) {
        vt()->relay_send(harness->instance->instance(), r.relay, {frame.data(), frame.size()});
    }
    void close(RelayRun &r) { vt()->relay_close(harness->instance->instance(), r.relay); }
    void release(RelayRun &r) {
        if (r.relay && !r.released) vt()->relay_release(harness->instance->instance(), r.relay);
        r.released = true;
    }

    // The upgrade number of the only (or the n-th) WebSocket the fake saw.
    int ws_number(size_t index = 0) {
        auto ws = fake->ws_sessions();
        return index < ws.size() ? ws[index].number : -1;
    }
    fakes::FakeWsSession ws_session(int number) {
        for (auto &w : fake->ws_sessions())
            if (w.number == number) return w;
        return {};
    }
    // Opens a relay and waits for the opening events (session.created, session.updated).
    RelayRun &open_ready(const json &request = voice_request()) {
        RelayRun &r = open(request);
        EXPECT_EQ(r.status, CS_OK) << r.err.message;
        EXPECT_TRUE(r.ev.wait_frames(2)) << r.ev.describe();
        return r;
    }
};

// A free port with nothing listening on it.
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

// ---- The plugin -----------------------------------------------------------------------------

TEST_F(Realtime, HasTheVoiceEntriesOfAbi11) {
    boot();
    const cs_provider_vtable *t = vt();
    EXPECT_GE(t->struct_size, sizeof(cs_provider_vtable));
    EXPECT_NE(t->voice_session, nullptr);
    EXPECT_NE(t->relay_open, nullptr);
    EXPECT_NE(t->relay_send, nullptr);
    EXPECT_NE(t->relay_close, nullptr);
    EXPECT_NE(t->relay_release, nullptr);
}

TEST_F(Realtime, TextStreamsAreRefused) {
    boot();
    StreamRun &r = start(text_request("gpt-realtime"));
    EXPECT_EQ(r.status, CS_E_UNSUPPORTED);
    EXPECT_NE(std::string(r.err.message).find("realtime voice only"), std::string::npos) << r.err.message;
    EXPECT_EQ(r.ev.terminal, 0);
    r.stream = nullptr;
    EXPECT_EQ(fake->request_count(), 0u);
}

// ---- voice_session --------------------------------------------------------------------------

TEST_F(Realtime, VoiceSessionPostsTheGaShape) {
    boot();
    Minted m = mint(voice_request());
    ASSERT_EQ(m.status, CS_OK) << m.message;
    EXPECT_EQ(m.responds, 1);
    auto seen = fake->requests();
    ASSERT_EQ(seen.size(), 1u);
    const auto &q = seen[0];
    EXPECT_EQ(q.method, "POST");
    EXPECT_EQ(q.target, "/v1/realtime/client_secrets");
    EXPECT_EQ(q.header("authorization"), "Bearer " + kKey);
    EXPECT_EQ(q.header("content-type"), "application/json");
    EXPECT_FALSE(q.has_header("openai-beta"));
    EXPECT_EQ(q.action, "replay");
    json body = json::parse(q.body);
    json want = {{"expires_after", {{"anchor", "created_at"}, {"seconds", 600}}},
                 {"session",
                  {{"type", "realtime"},
                   {"model", "gpt-realtime"},
                   {"instructions", kInstructions},
                   {"audio",
                    {{"input",
                      {{"turn_detection",
                        {{"type", "server_vad"}, {"threshold", 0.5}, {"prefix_padding_ms", 300}, {"silence_duration_ms", 500}}},
                       {"transcription", {{"model", "gpt-4o-transcribe"}}}}},
                     {"output", {{"voice", "marin"}}}}}}}};
    EXPECT_EQ(body, want) << body.dump(2);
    // The same shape as the GA reference request, key for key.
    json reference = json::parse(read_text(rt_dir() + "/constructed/client_secret_request_full.json"));
    EXPECT_TRUE(shape_within(body, reference));
    json minimal = json::parse(read_text(rt_dir() + "/client_secret_request.json"));
    EXPECT_TRUE(shape_within(minimal, body)) << "the spec's minimal request is part of what is sent";
}

TEST_F(Realtime, VoiceSessionMapsTheResponse) {
    boot();
    Minted m = mint(voice_request());
    ASSERT_EQ(m.status, CS_OK) << m.message;
    json recorded = json::parse(read_text(rt_dir() + "/client_secret_response.json"));
    json want = {{"client_secret", recorded["value"]},
                 {"expires_at", recorded["expires_at"]},
                 {"model", recorded["session"]["model"]},
                 {"voice", recorded["session"]["audio"]["output"]["voice"]},
                 {"webrtc_url", fake->base_url() + "/realtime/calls"}};
    EXPECT_EQ(m.out, want) << m.out.dump(2);
    EXPECT_EQ(m.out["client_secret"], "ek_68af296e8e408191a1120ab6383263c2");
    EXPECT_EQ(m.out["webrtc_url"], fake->base_url() + "/realtime/calls");
}

TEST_F(Realtime, OptionsAndRequestOverridesShapeTheSession) {
    boot("", {{"vad_threshold", 0.7},
              {"vad_prefix_padding_ms", 250},
              {"vad_silence_duration_ms", 800},
              {"transcription_model", "whisper-1"},
              {"expires_after_s", 120}});
    json bare = {{"model", "gpt-realtime"}, {"instructions", kInstructions}, {"voice", "cedar"}};
    ASSERT_EQ(mint(bare).status, CS_OK);
    json overrides = voice_request();
    overrides["turn_detection"] = {{"threshold", 0.3}, {"create_response", false}, {"idle_timeout_ms", 6000}};
    overrides["input_audio_transcription"] = {{"model", "gpt-4o-mini-transcribe"}, {"language", "fr"}};
    overrides["expires_after_s"] = 300;
    ASSERT_EQ(mint(overrides).status, CS_OK);
    json semantic = voice_request();
    semantic["turn_detection"] = {{"type", "semantic_vad"}, {"eagerness", "low"}};
    ASSERT_EQ(mint(semantic).status, CS_OK);
    json off = voice_request();
    off["turn_detection"] = nullptr;
    off["input_audio_transcription"] = nullptr;
    ASSERT_EQ(mint(off).status, CS_OK);

    auto seen = fake->requests();
    ASSERT_EQ(seen.size(), 4u);
    json a = json::parse(seen[0].body), b = json::parse(seen[1].body), c = json::parse(seen[2].body),
         d = json::parse(seen[3].body);
    EXPECT_EQ(a["expires_after"]["seconds"], 120);
    EXPECT_EQ(a["session"]["audio"]["input"]["turn_detection"],
              (json{{"type", "server_vad"}, {"threshold", 0.7}, {"prefix_padding_ms", 250}, {"silence_duration_ms", 800}}));
    EXPECT_EQ(a["session"]["audio"]["input"]["transcription"], (json{{"model", "whisper-1"}}));
    EXPECT_EQ(a["session"]["audio"]["output"]["voice"], "cedar");

    EXPECT_EQ(b["expires_after"]["seconds"], 300);
    EXPECT_EQ(b["session"]["audio"]["input"]["turn_detection"],
              (json{{"type", "server_vad"},
                    {"threshold", 0.3},
                    {"prefix_padding_ms", 250},
                    {"silence_duration_ms", 800},
                    {"create_response", false},
                    {"idle_timeout_ms", 6000}}));
    EXPECT_EQ(b["session"]["audio"]["input"]["transcription"], (json{{"model", "gpt-4o-mini-transcribe"}, {"language", "fr"}}));

    EXPECT_EQ(c["session"]["audio"]["input"]["turn_detection"], (json{{"type", "semantic_vad"}, {"eagerness", "low"}}));

    EXPECT_TRUE(d["session"]["audio"]["input"].contains("turn_detection"));
    EXPECT_TRUE(d["session"]["audio"]["input"]["turn_detection"].is_null()) << "null switches server VAD off";
    EXPECT_FALSE(d["session"]["audio"]["input"].contains("transcription"));
    for (const auto &q : seen) EXPECT_EQ(q.action, "replay") << "the fake accepted " << q.body;
}

TEST_F(Realtime, BadVoiceRequestsAreRefusedBeforeAnyRequest) {
    boot();
    struct Case {
        json request;
        const char *names;
    };
    json no_model = voice_request();
    no_model.erase("model");
    json bad_td = voice_request();
    bad_td["turn_detection"] = {{"type", "server_vad"}, {"thresold", 0.4}};
    json bad_type = voice_request();
    bad_type["turn_detection"] = {{"type", "push_to_talk"}};
    json bad_expiry = voice_request();
    bad_expiry["expires_after_s"] = 5;
    json bad_voice = voice_request();
    bad_voice["voice"] = 7;
    json bad_transcription = voice_request();
    bad_transcription["input_audio_transcription"] = {{"modle", "x"}};
    for (const Case &c : {Case{no_model, "model"}, Case{bad_td, "turn_detection.thresold"},
                          Case{bad_type, "turn_detection.type"}, Case{bad_expiry, "expires_after_s"},
                          Case{bad_voice, "voice"}, Case{bad_transcription, "input_audio_transcription.modle"}}) {
        Minted m = mint(c.request);
        EXPECT_EQ(m.status, CS_E_INVALID) << c.names;
        EXPECT_NE(m.message.find(c.names), std::string::npos) << m.message;
        EXPECT_EQ(m.responds, 0);
        RelayRun &r = open(c.request);
        EXPECT_EQ(r.status, CS_E_INVALID) << c.names;
        EXPECT_NE(std::string(r.err.message).find(c.names), std::string::npos) << r.err.message;
    }
    EXPECT_EQ(fake->request_count(), 0u);
}

struct MintCase {
    const char *name;
    const char *script;  // the fake's script (api_key added unless given)
    cs_status status;
    const char *says;    // in the message
};

class RealtimeMintErrors : public Realtime, public ::testing::WithParamInterface<MintCase> {};

TEST_P(RealtimeMintErrors, MapToAStatus) {
    const MintCase &c = GetParam();
    LogCapture logs;
    boot(c.script);
    Minted m = mint(voice_request());
    EXPECT_EQ(m.status, c.status) << m.message;
    EXPECT_EQ(m.responds, 0);
    EXPECT_NE(m.message.find("openai_realtime"), std::string::npos) << m.message;
    EXPECT_NE(m.message.find(c.says), std::string::npos) << m.message;
    EXPECT_EQ(m.message.find(kKey), std::string::npos) << "the key is in the message";
    EXPECT_EQ(m.message.find("dermatologist"), std::string::npos) << "the instructions are in the message";
    std::string text = LogCapture::captured();
    EXPECT_EQ(text.find(kKey), std::string::npos) << "the key is in the logs";
}

INSTANTIATE_TEST_SUITE_P(
    Errors, RealtimeMintErrors,
    ::testing::Values(
        MintCase{"WrongKey", R"({"api_key": "another-key"})", CS_E_INVALID, "credentials were refused (HTTP 401"},
        MintCase{"Forbidden", R"({"default": {"fault": "refuse_upgrade", "status": 403}})", CS_E_INVALID, "HTTP 403"},
        MintCase{"RateLimited", R"({"default": {"fault": "rate_limit", "retry_after": "3"}})", CS_E_BUSY, "retry after 3000 ms"},
        MintCase{"InsufficientQuota", R"({"default": {"fault": "insufficient_quota"}})", CS_E_BUSY, "insufficient_quota"},
        MintCase{"ServerError", R"({"default": {"fault": "server_error"}})", CS_E_IO, "HTTP 500"},
        MintCase{"Unavailable", R"({"default": {"fault": "unavailable"}})", CS_E_IO, "HTTP 503"},
        MintCase{"Reset", R"({"default": {"fault": "reset"}})", CS_E_IO, "connection failed"},
        MintCase{"BadRequest", R"({"default": {"replay": "openai_realtime/client_secret_response.json", "status": 400}})",
                 CS_E_INVALID, "HTTP 400"},
        MintCase{"NotTheGaResponse", R"({"default": {"replay": "openai_realtime/beta_sessions_response.json"}})", CS_E_IO,
                 "has no value"}),
    [](const ::testing::TestParamInfo<MintCase> &i) { return std::string(i.param.name); });

TEST_F(Realtime, AHangingMintIsBoundedByRequestTimeout) {
    boot(R"({"default": {"fault": "hang"}})", {{"request_timeout_ms", 1000}});
    auto t0 = Clock::now();
    Minted m = mint(voice_request());
    EXPECT_EQ(m.status, CS_E_IO);
    EXPECT_NE(m.message.find("within 1000 ms"), std::string::npos) << m.message;
    EXPECT_LT(Clock::now() - t0, 5s);
    EXPECT_TRUE(fake->wait_for_client_aborts(1, 5s)) << "the transfer was abandoned";
}

TEST_F(Realtime, AMintWithNothingListeningIsAnIoError) {
    load("openai_realtime", {{"base_url", "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1"}, {"api_key_env", kKeyEnv}});
    Minted m = mint(voice_request());
    EXPECT_EQ(m.status, CS_E_IO) << m.message;
}

// ---- The relay ------------------------------------------------------------------------------

TEST_F(Realtime, RelaySendsSessionUpdateFirstWithTheInstructions) {
    boot();
    RelayRun &r = open_ready();
    int n = ws_number();
    ASSERT_TRUE(fake->wait_for_ws_frames(n, 1, 5s));
    auto seen = fake->requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].target, "/v1/realtime?model=gpt-realtime");
    EXPECT_EQ(seen[0].header("authorization"), "Bearer " + kKey);
    EXPECT_FALSE(seen[0].has_header("openai-beta"));
    EXPECT_EQ(seen[0].action, "websocket");
    EXPECT_EQ(seen[0].status, 101);
    fakes::FakeWsSession w = ws_session(n);
    EXPECT_EQ(w.model, "gpt-realtime");
    ASSERT_GE(w.received.size(), 1u);
    json first = json::parse(w.received[0]);
    json want = {{"type", "session.update"},
                 {"session",
                  {{"type", "realtime"},
                   {"instructions", kInstructions},
                   {"audio",
                    {{"input",
                      {{"turn_detection",
                        {{"type", "server_vad"}, {"threshold", 0.5}, {"prefix_padding_ms", 300}, {"silence_duration_ms", 500}}},
                       {"transcription", {{"model", "gpt-4o-transcribe"}}}}},
                     {"output", {{"voice", "marin"}}}}}}}};
    EXPECT_EQ(first, want) << first.dump(2);
    json reference = json::parse(read_text(rt_dir() + "/constructed/client_secret_request_full.json"));
    EXPECT_TRUE(shape_within(first["session"], reference["session"]));
    EXPECT_TRUE(w.refused.empty()) << "the fake refused " << w.refused.front();
    SequenceLines seq = sequence();
    std::vector<std::string> expect = seq.opening;
    for (const auto &l : seq.after["session.update"]) expect.push_back(l);
    EXPECT_EQ(r.ev.got(), expect);
    close(r);
    ASSERT_TRUE(r.ev.wait_close());
    EXPECT_EQ(r.ev.code, 1000) << r.ev.describe();
    ASSERT_TRUE(fake->wait_for_ws_end(n, 5s));
    w = ws_session(n);
    EXPECT_EQ(w.end, "client_close");
    EXPECT_EQ(w.client_close_code, 1000);
}

TEST_F(Realtime, TheFakesEventsReachTheSinkInOrderByteForByte) {
    boot();
    RelayRun &r = open_ready();
    SequenceLines seq = sequence();
    const auto &turn = seq.after["input_audio_buffer.append"];
    ASSERT_GT(turn.size(), 15u);
    std::vector<std::string> expect = seq.opening;
    for (const auto &l : seq.after["session.update"]) expect.push_back(l);
    send(r, R"({"type":"response.create"})");
    for (const auto &l : turn) expect.push_back(l);
    ASSERT_TRUE(r.ev.wait_frames(expect.size())) << r.ev.describe();
    send(r, R"({"type":"input_audio_buffer.commit"})");
    for (const auto &l : turn) expect.push_back(l);
    send(r, R"({"type":"response.cancel"})");
    for (const auto &l : seq.after["response.cancel"]) expect.push_back(l);
    ASSERT_TRUE(r.ev.wait_frames(expect.size())) << r.ev.describe();
    std::vector<std::string> got = r.ev.got();
    ASSERT_EQ(got.size(), expect.size());
    for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(got[i], expect[i]) << "frame " << i;
    int n = ws_number();
    for (int i = 0; i < 200 && ws_session(n).sent.size() < got.size(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(got, ws_session(n).sent) << "what the fake sent is what the sink got";
}

TEST_F(Realtime, ClientFramesReachTheFakeInOrder) {
    boot();
    RelayRun &r = open(voice_request());
    ASSERT_EQ(r.status, CS_OK) << r.err.message;
    // Sent at once, most of them before the upgrade is done: they wait behind session.update.
    std::vector<std::string> frames;
    for (int i = 0; i < 300; ++i) {
        std::string audio(static_cast<size_t>(10 + (i * 97) % 3000), static_cast<char>('A' + i % 26));
        frames.push_back(R"({"type":"input_audio_buffer.append","event_id":"c)" + std::to_string(i) + R"(","audio":")" +
                         audio + R"("})");
        send(r, frames.back());
    }
    ASSERT_TRUE(fake->wait_for_requests(1, 5s));
    int n = ws_number();
    ASSERT_TRUE(fake->wait_for_ws_frames(n, frames.size() + 1, 10s));
    auto w = ws_session(n);
    ASSERT_EQ(w.received.size(), frames.size() + 1);
    EXPECT_EQ(json::parse(w.received[0])["type"], "session.update");
    for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(w.received[i + 1], frames[i]) << "frame " << i;
}

// ---- How a relay ends: exactly one on_close -------------------------------------------------

TEST_F(Realtime, UpstreamCloseIsForwardedOnce) {
    boot(R"({"default": {"fault": "close", "after_events": 2, "close_code": 1000}})");
    RelayRun &r = open(voice_request());
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1000);
    EXPECT_NE(r.ev.reason.find("upstream closed (1000"), std::string::npos) << r.ev.reason;
    EXPECT_EQ(r.ev.got().size(), 2u) << "session.created and session.updated came before the close";
    send(r, R"({"type":"response.create"})");  // after the close: dropped
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(ws_session(ws_number()).received.size(), 1u);
}

TEST_F(Realtime, UpstreamErrorCodesBecome1011WithTheCodeInTheReason) {
    for (int code : {1011, 4000, 1008}) {
        SCOPED_TRACE(code);
        boot(R"({"default": {"fault": "close", "after_events": 1, "close_code": )" + std::to_string(code) + "}}");
        RelayRun &r = open(voice_request());
        ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
        EXPECT_EQ(r.ev.code, 1011);
        EXPECT_NE(r.ev.reason.find(std::to_string(code)), std::string::npos) << r.ev.reason;
        TearDown();
        relays.clear();
    }
}

TEST_F(Realtime, AConnectionCutMidSessionIs1011) {
    boot(R"({"default": {"fault": "cut", "after_events": 6}})");
    RelayRun &r = open_ready();
    send(r, R"({"type":"response.create"})");
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1011);
    EXPECT_EQ(r.ev.reason, "upstream connection lost");
    EXPECT_EQ(r.ev.got().size(), 6u);
}

TEST_F(Realtime, AMalformedFrameEndsTheRelayAfterTheGoodOnes) {
    boot(R"({"default": {"fault": "malformed", "after_events": 4}})");
    RelayRun &r = open_ready();
    send(r, R"({"type":"response.create"})");
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1011);
    EXPECT_EQ(r.ev.reason, "malformed frame from upstream");
    SequenceLines seq = sequence();
    std::vector<std::string> got = r.ev.got();
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[2], seq.after["input_audio_buffer.append"][0]);
    int n = ws_number();
    ASSERT_TRUE(fake->wait_for_ws_end(n, 5s));
    EXPECT_EQ(ws_session(n).end, "client_close") << "the relay said goodbye upstream";
}

TEST_F(Realtime, AStallIsJustSilence) {
    boot(R"({"default": {"fault": "stall", "after_events": 5, "ms": 400}})");
    RelayRun &r = open_ready();
    send(r, R"({"type":"response.create"})");
    SequenceLines seq = sequence();
    size_t total = 2 + seq.after["input_audio_buffer.append"].size();
    ASSERT_TRUE(r.ev.wait_frames(total)) << r.ev.describe();
    EXPECT_FALSE(r.ev.closed());
}

struct RefusalCase {
    const char *name;
    const char *script;
    int code;
    const char *says;
};

class RealtimeRefusals : public Realtime, public ::testing::WithParamInterface<RefusalCase> {};

TEST_P(RealtimeRefusals, UpgradeRefusedClosesOnce) {
    const RefusalCase &c = GetParam();
    LogCapture logs;
    boot(c.script);
    RelayRun &r = open(voice_request());
    ASSERT_EQ(r.status, CS_OK) << "the upgrade happens after relay_open returned";
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, c.code) << r.ev.describe();
    EXPECT_NE(r.ev.reason.find(c.says), std::string::npos) << r.ev.reason;
    EXPECT_LE(r.ev.reason.size(), 123u);
    EXPECT_TRUE(r.ev.got().empty());
    EXPECT_EQ(r.ev.reason.find(kKey), std::string::npos);
    send(r, R"({"type":"response.create"})");
    close(r);
    std::this_thread::sleep_for(50ms);
    std::string text = LogCapture::captured();
    EXPECT_NE(text.find("relay 1 closed code=" + std::to_string(c.code)), std::string::npos) << text;
    EXPECT_EQ(text.find(kKey), std::string::npos) << "the key is in the logs";
}

INSTANTIATE_TEST_SUITE_P(
    Refusals, RealtimeRefusals,
    ::testing::Values(RefusalCase{"WrongKey", R"({"api_key": "another-key"})", 1011, "credentials (HTTP 401)"},
                      RefusalCase{"RefuseUpgrade", R"({"default": {"fault": "refuse_upgrade"}})", 1011, "HTTP 401"},
                      RefusalCase{"Forbidden", R"({"default": {"fault": "refuse_upgrade", "status": 403}})", 1011, "HTTP 403"},
                      RefusalCase{"RateLimited", R"({"default": {"fault": "rate_limit"}})", 1013, "HTTP 429"},
                      RefusalCase{"ServerError", R"({"default": {"fault": "server_error"}})", 1013, "HTTP 500"},
                      RefusalCase{"Down", R"({"default": {"fault": "down", "ms": 60000}})", 1013, "HTTP 503"},
                      RefusalCase{"NotFound", R"({"default": {"fault": "refuse_upgrade", "status": 404}})", 1011,
                                  "refused the upgrade (HTTP 404)"},
                      RefusalCase{"ResetBeforeTheAnswer", R"({"default": {"fault": "reset"}})", 1011, "upgrade failed"},
                      RefusalCase{"UpgradeNeverAnswered", R"({"default": {"fault": "hang"}})", 1013, "connect timeout"}),
    [](const ::testing::TestParamInfo<RefusalCase> &i) { return std::string(i.param.name); });

TEST_F(Realtime, ConnectTimeoutWhenTheUpgradeHangs) {
    boot(R"({"default": {"fault": "hang"}})", {{"connect_timeout_ms", 300}});
    auto t0 = Clock::now();
    RelayRun &r = open(voice_request());
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1013);
    EXPECT_EQ(r.ev.reason, "upstream connect timeout (300 ms)");
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(r.ev.closed_at - t0).count();
    EXPECT_GE(took, 250);
    EXPECT_LT(took, 2000);
    EXPECT_TRUE(fake->wait_for_client_aborts(1, 5s)) << "the connection was really dropped";
}

TEST_F(Realtime, ConnectTimeoutWhenTheSynIsNotAnswered) {
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
    load("openai_realtime", {{"base_url", "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/v1"},
                             {"api_key_env", kKeyEnv},
                             {"connect_timeout_ms", 300}});
    auto t0 = Clock::now();
    RelayRun &r = open(voice_request());
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1013) << r.ev.describe();
    EXPECT_LT(Clock::now() - t0, 3s);
    TearDown();
    relays.clear();
    ::close(filler);
    ::close(listener);
}

TEST_F(Realtime, NothingListeningIs1013) {
    load("openai_realtime", {{"base_url", "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1"}, {"api_key_env", kKeyEnv}});
    RelayRun &r = open(voice_request());
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1013);
    EXPECT_EQ(r.ev.reason, "upstream unreachable");
}

TEST_F(Realtime, WssVerifiesTlsAndFailsOnceAgainstAPlainServer) {
    start_fake(FakeKind::openai_realtime, json{{"api_key", kKey}}.dump());
    std::string https = "https://127.0.0.1:" + std::to_string(fake->port()) + "/v1";
    load("openai_realtime", {{"base_url", https}, {"api_key_env", kKeyEnv}});
    RelayRun &r = open(voice_request());
    ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1011);
    EXPECT_EQ(r.ev.reason, "TLS handshake with upstream failed");
    Minted m = mint(voice_request());
    EXPECT_EQ(m.status, CS_E_IO) << m.message;
    EXPECT_EQ(m.message.find(kKey), std::string::npos);
}

TEST_F(Realtime, SendAfterCloseIsHarmless) {
    boot();
    RelayRun &r = open_ready();
    close(r);
    close(r);  // idempotent
    for (int i = 0; i < 20; ++i) send(r, R"({"type":"input_audio_buffer.append","audio":"AAAA"})");
    ASSERT_TRUE(r.ev.wait_close());
    for (int i = 0; i < 20; ++i) send(r, R"({"type":"input_audio_buffer.append","audio":"AAAA"})");
    close(r);
    int n = ws_number();
    ASSERT_TRUE(fake->wait_for_ws_end(n, 5s));
    EXPECT_EQ(ws_session(n).received.size(), 1u) << "only session.update went upstream";
    release(r);
    EXPECT_EQ(r.ev.closes, 1);
}

TEST_F(Realtime, AFullSendQueueCloses1008) {
    boot(R"({"default": {"delay_ms": 2000}})", {{"send_queue_limit", 2048}});
    RelayRun &r = open(voice_request());
    ASSERT_EQ(r.status, CS_OK);
    std::string frame = R"({"type":"input_audio_buffer.append","audio":")" + std::string(500, 'Q') + R"("})";
    auto t0 = Clock::now();
    for (int i = 0; i < 10; ++i) send(r, frame);
    ASSERT_TRUE(r.ev.wait_close(3s)) << r.ev.describe();
    EXPECT_EQ(r.ev.code, 1008);
    EXPECT_EQ(r.ev.reason, "send queue full");
    EXPECT_LT(r.ev.closed_at - t0, 1s) << "closed before the upstream answered";
}

TEST_F(Realtime, CloseAndSendFromManyThreads) {
    boot();
    for (int round = 0; round < 5; ++round) {
        RelayRun &r = open_ready();
        std::vector<std::thread> threads;
        for (int t = 0; t < 6; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < 100; ++i) {
                    send(r, R"({"type":"input_audio_buffer.append","audio":"T)" + std::to_string(t) + "\"}");
                    if (t % 3 == 0 && i == 50) close(r);
                }
            });
        for (auto &th : threads) th.join();
        ASSERT_TRUE(r.ev.wait_close()) << r.ev.describe();
        EXPECT_EQ(r.ev.code, 1000);
        release(r);
    }
    std::this_thread::sleep_for(100ms);
    for (auto &r : relays) EXPECT_EQ(r.ev.closes, 1);
}

TEST_F(Realtime, TwentyRelaysAtOnce) {
    boot(R"({"default": {"event_delay_ms": 2}})");
    std::vector<RelayRun *> all;
    for (int i = 0; i < 20; ++i) {
        json rq = voice_request();
        rq["instructions"] = kInstructions + " #" + std::to_string(i);
        all.push_back(&open(rq));
        ASSERT_EQ(all.back()->status, CS_OK);
    }
    for (RelayRun *r : all) ASSERT_TRUE(r->ev.wait_frames(2)) << r->ev.describe();
    EXPECT_EQ(fake->ws_sessions().size(), 20u);
    for (auto &w : fake->ws_sessions()) EXPECT_FALSE(w.ended) << "all 20 are open together";
    for (RelayRun *r : all) send(*r, R"({"type":"response.create"})");
    SequenceLines seq = sequence();
    std::vector<std::string> expect = seq.opening;
    for (const auto &l : seq.after["session.update"]) expect.push_back(l);
    for (const auto &l : seq.after["input_audio_buffer.append"]) expect.push_back(l);
    for (RelayRun *r : all) {
        ASSERT_TRUE(r->ev.wait_frames(expect.size(), 20s)) << r->ev.describe();
        EXPECT_EQ(r->ev.got(), expect);
        close(*r);
    }
    for (RelayRun *r : all) {
        ASSERT_TRUE(r->ev.wait_close()) << r->ev.describe();
        EXPECT_EQ(r->ev.code, 1000);
        release(*r);
    }
    std::set<std::string> instructions;
    for (auto &w : fake->ws_sessions())
        instructions.insert(json::parse(w.received.at(0))["session"]["instructions"].get<std::string>());
    EXPECT_EQ(instructions.size(), 20u) << "each relay sent its own session.update";
}

TEST_F(Realtime, DestroyingTheInstanceClosesItsRelays1001) {
    boot();
    RelayRun &a = open_ready();
    RelayRun &b = open_ready();
    RelayRun &c = open(voice_request());  // may still be connecting
    // The host releases relays after their close; here the instance goes first, so the handles
    // are freed by hand afterwards, with the library kept loaded for their destructors.
    host::LoadedPlugin keep = host::load_plugin(plugin_file("provider", "openai_realtime"));
    for (RelayRun *r : {&a, &b, &c}) r->released = true;
    harness.reset();
    for (RelayRun *r : {&a, &b, &c}) {
        std::lock_guard<std::mutex> lock(r->ev.mu);
        EXPECT_EQ(r->ev.closes, 1);
        EXPECT_EQ(r->ev.code, 1001);
        EXPECT_EQ(r->ev.reason, "going away");
    }
    for (RelayRun *r : {&a, &b, &c}) delete reinterpret_cast<consilium::sdk::Relay *>(r->relay);
}

TEST_F(Realtime, BetaSendsTheHeaderAndTheBetaSessionShape) {
    boot("", {{"beta", true}});
    RelayRun &r = open_ready();
    auto seen = fake->requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].header("openai-beta"), "realtime=v1");
    auto w = ws_session(ws_number());
    EXPECT_TRUE(w.beta);
    json first = json::parse(w.received.at(0));
    EXPECT_EQ(first, (json{{"type", "session.update"},
                           {"session",
                            {{"instructions", kInstructions},
                             {"voice", "marin"},
                             {"input_audio_transcription", {{"model", "gpt-4o-transcribe"}}},
                             {"turn_detection",
                              {{"type", "server_vad"}, {"threshold", 0.5}, {"prefix_padding_ms", 300}, {"silence_duration_ms", 500}}}}}}))
        << first.dump(2);
    EXPECT_TRUE(w.refused.empty());
    EXPECT_EQ(json::parse(r.ev.got().at(1))["type"], "session.updated");
}

TEST_F(Realtime, TheKeyAndTheConversationNeverReachTheLogs) {
    LogCapture logs;
    boot();
    ASSERT_EQ(mint(voice_request()).status, CS_OK);
    RelayRun &r = open_ready();
    send(r, R"({"type":"response.create"})");
    ASSERT_TRUE(r.ev.wait_frames(2 + sequence().after["input_audio_buffer.append"].size()));
    close(r);
    ASSERT_TRUE(r.ev.wait_close());
    TearDown();
    relays.clear();
    boot(R"({"api_key": "another-key"})");
    EXPECT_EQ(mint(voice_request()).status, CS_E_INVALID);
    RelayRun &refused = open(voice_request());
    ASSERT_TRUE(refused.ev.wait_close());
    std::string text = LogCapture::captured();
    EXPECT_NE(text.find("openai_realtime: ready"), std::string::npos) << text;
    EXPECT_NE(text.find("relay 1 closed code=1000"), std::string::npos) << text;
    EXPECT_NE(text.find("frames_in=" + std::to_string(2 + sequence().after["input_audio_buffer.append"].size())),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find(kKey), std::string::npos) << "the key is in the logs";
    EXPECT_EQ(text.find("dermatologist"), std::string::npos) << "the instructions are in the logs";
    EXPECT_EQ(text.find("Loud and clear"), std::string::npos) << "the answer is in the logs";
    EXPECT_EQ(text.find("can you hear me"), std::string::npos) << "the patient's words are in the logs";
    EXPECT_EQ(text.find("ek_68af"), std::string::npos) << "the client secret is in the logs";
}

TEST_F(Realtime, OptionsAreValidatedWithTheirPath) {
    auto err = [&](json o) {
        if (!o.contains("api_key_env")) o["api_key_env"] = kKeyEnv;
        return create_error("openai_realtime", o);
    };
    EXPECT_NE(err({{"bogus", 1}}).find("provider.openai_realtime.bogus: unknown key"), std::string::npos);
    std::string inline_key = err({{"api_key", kKey}});
    EXPECT_NE(inline_key.find("provider.openai_realtime.api_key"), std::string::npos) << inline_key;
    EXPECT_EQ(inline_key.find(kKey), std::string::npos) << "the refusal repeats the key";
    ::unsetenv("CONSILIUM_TEST_REALTIME_NO_KEY");
    EXPECT_NE(err({{"api_key_env", "CONSILIUM_TEST_REALTIME_NO_KEY"}}).find("CONSILIUM_TEST_REALTIME_NO_KEY"), std::string::npos);
    EXPECT_NE(err({{"vad_threshold", 1.5}}).find("provider.openai_realtime.vad_threshold"), std::string::npos);
    EXPECT_NE(err({{"expires_after_s", 5}}).find("provider.openai_realtime.expires_after_s"), std::string::npos);
    EXPECT_NE(err({{"send_queue_limit", 10}}).find("provider.openai_realtime.send_queue_limit"), std::string::npos);
    EXPECT_NE(err({{"connect_timeout_ms", 0}}).find("provider.openai_realtime.connect_timeout_ms"), std::string::npos);
    EXPECT_NE(err({{"beta", "yes"}}).find("provider.openai_realtime.beta"), std::string::npos);
    EXPECT_NE(err({{"base_url", "api.openai.com/v1"}}).find("provider.openai_realtime.base_url"), std::string::npos);
    EXPECT_EQ(err(json::object()), "");
    EXPECT_EQ(err({{"base_url", "http://[::1]:8080/v1"}}), "");
}

TEST_F(Realtime, TheKeyCanComeFromAFile) {
    std::string file = dir.str() + "/openai.key";
    {
        std::ofstream out(file);
        out << kKey << "\n";
    }
    start_fake(FakeKind::openai_realtime, json{{"api_key", kKey}}.dump());
    load("openai_realtime", {{"base_url", fake->base_url()}, {"api_key_file", file}, {"api_key_env", ""}});
    EXPECT_EQ(mint(voice_request()).status, CS_OK);
    RelayRun &r = open_ready();
    EXPECT_FALSE(r.ev.closed()) << r.ev.describe();
}

// ---- The fake itself ------------------------------------------------------------------------

struct Posted {
    int status = 0;
    json body;
};

Posted post(const std::string &url, const std::string &body, const std::string &key) {
    struct H : providers::HttpHandler {
        std::promise<void> done;
        int status = 0;
        std::string body;
        void on_head(const providers::HttpHead &h) override { status = h.status; }
        bool on_body(std::string_view b) override {
            body.append(b);
            return true;
        }
        void on_end(const providers::HttpResult &) override { done.set_value(); }
    };
    auto h = std::make_shared<H>();
    auto done = h->done.get_future();
    providers::HttpClient client(providers::HttpClientOptions{});
    providers::HttpRequest rq;
    rq.url = url;
    rq.body = body;
    rq.headers = {"content-type: application/json"};
    if (!key.empty()) rq.headers.push_back("authorization: Bearer " + key);
    client.start(std::move(rq), h);
    done.wait();
    return {h->status, json::parse(h->body, nullptr, false)};
}

TEST(FakeRealtime, ValidatesTheClientSecretRequestLikeTheGaApi) {
    fakes::FakeProviderServer fake(FakeKind::openai_realtime, protocols_dir());
    std::string url = fake.base_url() + "/realtime/client_secrets";
    std::string ga = read_text(rt_dir() + "/client_secret_request.json");
    Posted ok = post(url, ga, "k");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body, json::parse(read_text(rt_dir() + "/client_secret_response.json")));
    Posted full = post(url, read_text(rt_dir() + "/constructed/client_secret_request_full.json"), "k");
    EXPECT_EQ(full.status, 200);
    // The beta /realtime/sessions body is not the GA shape.
    std::string beta = R"({"model": "gpt-realtime", "modalities": ["audio", "text"], "instructions": "x"})";
    Posted b = post(url, beta, "k");
    EXPECT_EQ(b.status, 400);
    EXPECT_EQ(b.body["error"]["code"], "unknown_parameter");
    Posted beta_in_session = post(url, R"({"session": {"type": "realtime", "voice": "alloy"}})", "k");
    EXPECT_EQ(beta_in_session.status, 400);
    EXPECT_EQ(beta_in_session.body["error"]["param"], "session.voice");
    Posted no_type = post(url, R"({"session": {"model": "gpt-realtime"}})", "k");
    EXPECT_EQ(no_type.status, 400);
    EXPECT_EQ(no_type.body["error"]["param"], "session.type");
    Posted bad_expiry = post(url, R"({"expires_after": {"anchor": "now", "seconds": 5}, "session": {"type": "realtime"}})", "k");
    EXPECT_EQ(bad_expiry.status, 400);
    Posted no_key = post(url, ga, "");
    EXPECT_EQ(no_key.status, 401);
    fake.set_script(R"({"api_key": "right"})");
    EXPECT_EQ(post(url, ga, "wrong").status, 401);
    EXPECT_EQ(post(url, ga, "right").status, 200);
    auto seen = fake.requests();
    EXPECT_EQ(seen.at(2).action, "invalid");
}

TEST(FakeRealtime, RefusesUnknownScriptKeys) {
    fakes::FakeProviderServer fake(FakeKind::openai_realtime, protocols_dir());
    EXPECT_THROW(fake.set_script(R"({"default": {"fault": "close", "close_cod": 1000}})"), std::invalid_argument);
    EXPECT_NO_THROW(fake.set_script(R"({"default": {"fault": "close", "close_code": 1011, "after_events": 3}})"));
    EXPECT_EQ(fakes::parse_fake_kind("openai_realtime"), FakeKind::openai_realtime);
}

}  // namespace
}  // namespace consilium::test
