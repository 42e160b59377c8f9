// Voice consultations through the host with the openai_realtime plugin against the fake
// Realtime API (tests/fakes, replaying ../shared/protocols/openai_realtime): the client secret
// minted for a browser carries the persona's instructions, voice, server VAD and transcription;
// the relay opens the Realtime WebSocket, configures the session first, and the transcripts of
// a spoken turn are stored as the consultation's turns. The API key never reaches the log.
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

constexpr const char *kKey = "sk-realtime-test-key-do-not-log";

class VoiceRealtime : public ::testing::Test {
protected:
    void SetUp() override {
        ::setenv("CONSILIUM_TEST_REALTIME_KEY", kKey, 1);
        fake_ = std::make_unique<FakeProviderServer>(FakeKind::openai_realtime, CONSILIUM_TEST_SHARED_DIR "/protocols");
        auto config = dir_.path() / "voice.yaml";
        std::ofstream(config) << "providers:\n"
                                 "  realtime: {plugin: openai_realtime, base_url: \"" << fake_->base_url()
                              << "\", api_key_env: CONSILIUM_TEST_REALTIME_KEY}\n"
                                 "models:\n"
                                 "  voice: {provider: realtime, model: gpt-realtime}\n";
        host_ = std::make_unique<HostProcess>(std::vector<std::string>{}, std::filesystem::path{},
                                              std::vector<std::string>{"--config", config.string()});
        ASSERT_TRUE(host_->start()) << host_->log();
        token_ = new_guest(host_->port()).access_token;
    }
    void TearDown() override {
        if (host_ && host_->running()) {
            EXPECT_EQ(host_->stop(), 0);
            EXPECT_EQ(host_->log().find(kKey), std::string::npos) << "the API key is in the log";
            EXPECT_EQ(host_->stdout_text().find(kKey), std::string::npos);
        }
    }
    json consultation(const std::string &id) {
        net::HttpClient http("127.0.0.1", host_->port());
        return json::parse(http.get("/v1/consultations/" + id, {{"Authorization", "Bearer " + token_}}).body, nullptr, false);
    }

    TempDir dir_;
    std::unique_ptr<FakeProviderServer> fake_;
    std::unique_ptr<HostProcess> host_;
    std::string token_;
};

TEST_F(VoiceRealtime, TheMintedSecretCarriesThePersona) {
    net::HttpClient http("127.0.0.1", host_->port(), 30s);
    auto r = http.request("POST", "/v1/voice/session", R"({"specialist": "dermatology", "locale": "en"})",
                          {{"Authorization", "Bearer " + token_}});
    ASSERT_EQ(r.status, 201) << r.body << host_->log();
    json s = json::parse(r.body);
    EXPECT_EQ(s.value("client_secret", ""), "ek_68af296e8e408191a1120ab6383263c2") << "the fake's recorded secret";
    EXPECT_EQ(s["specialist"]["id"], "dermatology");

    auto reqs = fake_->requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].method, "POST");
    EXPECT_EQ(reqs[0].target, "/v1/realtime/client_secrets");
    EXPECT_EQ(reqs[0].header("authorization"), std::string("Bearer ") + kKey);
    json body = json::parse(reqs[0].body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << reqs[0].body;
    json session = body["session"];
    EXPECT_EQ(session["type"], "realtime");
    EXPECT_EQ(session["model"], "gpt-realtime");
    std::string instructions = session.value("instructions", "");
    EXPECT_NE(instructions.find("derm"), std::string::npos) << "the dermatologist's own instructions: " << instructions;
    EXPECT_EQ(session["audio"]["output"]["voice"], "ash") << "personas/dermatology.yaml's voice";
    // What the browser is told is what the service answered (the fake's recording says alloy).
    EXPECT_EQ(s["voice"], "alloy");
    EXPECT_EQ(session["audio"]["input"]["turn_detection"]["type"], "server_vad");
    EXPECT_FALSE(session["audio"]["input"]["transcription"].value("model", "").empty());
}

TEST_F(VoiceRealtime, TheRelayConfiguresTheSessionAndStoresTheSpokenTurn) {
    net::WsClient ws;
    ASSERT_TRUE(ws.connect("127.0.0.1", host_->port(), "/v1/voice/relay?specialist=otolaryngology",
                           {{"Authorization", "Bearer " + token_}}))
        << ws.error();
    std::string consultation_id;
    bool updated = false;
    for (int i = 0; i < 10 && !(updated && !consultation_id.empty()); ++i) {
        auto f = ws.receive_text(5s);
        ASSERT_TRUE(f) << host_->log();
        json j = json::parse(*f);
        if (j["type"] == "consilium.ready") consultation_id = j.value("consultation_id", "");
        if (j["type"] == "session.updated") updated = true;
    }
    ASSERT_FALSE(consultation_id.empty());
    EXPECT_TRUE(updated) << "the relay sent session.update and the fake accepted it";
    // The relay's first frame upstream configured the persona before anything of the client's.
    ASSERT_TRUE(fake_->wait_for_ws_frames(1, 1, 5s));
    auto sessions = fake_->ws_sessions();
    ASSERT_EQ(sessions.size(), 1u);
    json first = json::parse(sessions[0].received.at(0), nullptr, false);
    EXPECT_EQ(first["type"], "session.update");
    EXPECT_FALSE(first["session"].value("instructions", "").empty());

    // The patient speaks: audio in, committed; the fake answers with the recorded turn.
    ASSERT_TRUE(ws.send_text(R"({"type":"input_audio_buffer.append","audio":"AAAA"})"));
    ASSERT_TRUE(ws.send_text(R"({"type":"input_audio_buffer.commit"})"));
    bool done = false;
    for (int i = 0; i < 40 && !done; ++i) {
        auto f = ws.receive_text(5s);
        ASSERT_TRUE(f);
        done = json::parse(*f)["type"] == "response.done";
    }
    ASSERT_TRUE(done);
    ws.close();
    json c;
    for (int i = 0; i < 100; ++i) {
        c = consultation(consultation_id);
        if (c.is_object() && c["messages"].size() == 2) break;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(c.is_object() && c["messages"].size() == 2) << c.dump();
    EXPECT_EQ(c["messages"][0]["role"], "patient");
    EXPECT_EQ(c["messages"][0]["text"], "Hey, can you hear me?");
    EXPECT_EQ(c["messages"][1]["role"], "specialist");
    EXPECT_EQ(c["messages"][1]["text"], "Loud and clear!");
    EXPECT_EQ(c["messages"][1]["specialist"], "otolaryngology");
}

}  // namespace
}  // namespace consilium::test
