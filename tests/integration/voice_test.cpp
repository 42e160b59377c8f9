// Voice consultations through the host (docs/voice.md), with the mock's simulated realtime
// service: minting a browser credential, the relay WebSocket with its transcripts stored as
// turns, red flags in spoken words, transcripts posted back by a WebRTC client.
#include "chat_client.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace consilium::test {
namespace {

using namespace std::chrono_literals;

json get_consultation(uint16_t port, const std::string &token, const std::string &id) {
    net::HttpClient http("127.0.0.1", port);
    auto r = http.get("/v1/consultations/" + id, {{"Authorization", "Bearer " + token}});
    return json::parse(r.body, nullptr, false);
}

bool eventually(const std::function<bool()> &f) {
    for (int i = 0; i < 100; ++i) {
        if (f()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

TEST(Voice, SessionMintsACredentialForThePersona) {
    HostProcess host;
    ASSERT_TRUE(host.start()) << host.log();
    auto g = new_guest(host.port());
    net::HttpClient http("127.0.0.1", host.port());
    auto r = http.request("POST", "/v1/voice/session", R"({"specialist": "cardiology", "locale": "en"})",
                          {{"Authorization", "Bearer " + g.access_token}, {"Content-Type", "application/json"}});
    ASSERT_EQ(r.status, 201) << r.body;
    json s = json::parse(r.body);
    EXPECT_FALSE(s.value("client_secret", "").empty());
    EXPECT_EQ(s["specialist"]["id"], "cardiology");
    EXPECT_FALSE(s.value("consultation_id", "").empty());
    EXPECT_FALSE(s.value("voice", "").empty());
    // Someone else's consultation: not found.
    auto other = new_guest(host.port());
    auto denied = http.request("POST", "/v1/voice/session", json{{"consultation_id", s["consultation_id"]}}.dump(),
                               {{"Authorization", "Bearer " + other.access_token}});
    EXPECT_EQ(denied.status, 404);
    EXPECT_EQ(http.request("POST", "/v1/voice/session", "{}").status, 401);
}

TEST(Voice, TurnedOffAnswers503) {
    HostProcess host({"voice.model=\"\""});
    ASSERT_TRUE(host.start()) << host.log();
    auto g = new_guest(host.port());
    net::HttpClient http("127.0.0.1", host.port());
    auto r = http.request("POST", "/v1/voice/session", "{}", {{"Authorization", "Bearer " + g.access_token}});
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "voice_unavailable");
}

TEST(Voice, RelayForwardsEventsAndStoresTheTurns) {
    HostProcess host;
    ASSERT_TRUE(host.start()) << host.log();
    auto g = new_guest(host.port());
    net::WsClient ws;
    ASSERT_TRUE(ws.connect("127.0.0.1", host.port(), "/v1/voice/relay?specialist=neurology",
                           {{"Authorization", "Bearer " + g.access_token}}))
        << ws.error();
    std::string consultation;
    bool session_created = false;
    for (int i = 0; i < 10 && (consultation.empty() || !session_created); ++i) {
        auto f = ws.receive_text(5s);
        ASSERT_TRUE(f);
        json j = json::parse(*f);
        if (j["type"] == "consilium.ready") {
            consultation = j.value("consultation_id", "");
            EXPECT_EQ(j["specialist"]["id"], "neurology");
        }
        if (j["type"] == "session.created") session_created = true;
    }
    ASSERT_FALSE(consultation.empty());
    // The patient speaks (a text item here; audio is committed the same way).
    json item = {{"type", "conversation.item.create"},
                 {"item", {{"type", "message"}, {"role", "user"},
                           {"content", json::array({{{"type", "input_text"}, {"text", "my face is drooping on one side and my speech is slurred since ten minutes ago"}}})}}}};
    ASSERT_TRUE(ws.send_text(item.dump()));
    bool emergency = false, answer = false;
    for (int i = 0; i < 20 && !(emergency && answer); ++i) {
        auto f = ws.receive_text(5s);
        ASSERT_TRUE(f);
        json j = json::parse(*f);
        if (j["type"] == "consilium.emergency") {
            emergency = true;
            EXPECT_FALSE(j["numbers"].empty());
        }
        if (j["type"] == "response.output_audio_transcript.done") answer = true;
    }
    EXPECT_TRUE(emergency) << "spoken red flags raise the emergency like written ones";
    EXPECT_TRUE(answer);
    ws.close();
    EXPECT_TRUE(eventually([&] {
        json c = get_consultation(host.port(), g.access_token, consultation);
        return c.is_object() && c["messages"].size() == 2;
    })) << get_consultation(host.port(), g.access_token, consultation).dump();
    json c = get_consultation(host.port(), g.access_token, consultation);
    EXPECT_EQ(c["messages"][0]["role"], "patient");
    EXPECT_NE(c["messages"][0]["text"].get<std::string>().find("face is drooping"), std::string::npos);
    EXPECT_EQ(c["messages"][1]["role"], "specialist");
    EXPECT_EQ(c["messages"][1]["specialist"], "neurology");
    // The chat channel sees the same turns on resume, emergency included.
    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(g.access_token));
    ASSERT_TRUE(chat.send({{"type", "resume"}, {"consultation_id", consultation}, {"after_seq", 0}}));
    auto frames = chat.until([](const json &f) { return f.value("type", "") == "stream_end"; });
    std::vector<std::string> types;
    for (const auto &f : frames) types.push_back(f.value("type", ""));
    EXPECT_EQ(types, (std::vector<std::string>{"ack", "emergency", "stream_start", "stream_chunk", "stream_end"}));
}

TEST(Voice, RelayNeedsAuthentication) {
    HostProcess host({"chat.auth_timeout_ms=1000"});
    ASSERT_TRUE(host.start()) << host.log();
    net::WsClient ws;
    ASSERT_TRUE(ws.connect("127.0.0.1", host.port(), "/v1/voice/relay"));
    ASSERT_TRUE(ws.send_text(R"({"type": "session.update"})"));
    auto f = ws.receive_text(5s);
    ASSERT_TRUE(f);
    EXPECT_EQ(json::parse(*f)["code"], "unauthorized");
    EXPECT_TRUE(ws.wait_closed(5s));
    EXPECT_EQ(ws.close_info()->code, 4001);
}

TEST(Voice, WebRtcTranscriptsArePostedBackAndStored) {
    HostProcess host;
    ASSERT_TRUE(host.start()) << host.log();
    auto g = new_guest(host.port());
    net::HttpClient http("127.0.0.1", host.port());
    auto s = json::parse(http.request("POST", "/v1/voice/session", "{}", {{"Authorization", "Bearer " + g.access_token}}).body);
    std::string id = s["consultation_id"];
    json body = {{"consultation_id", id},
                 {"items", json::array({{{"id", "i1"}, {"role", "patient"}, {"text", "I get headaches every afternoon"}},
                                        {{"id", "i2"}, {"role", "specialist"}, {"text", "Let us look at what triggers them."}}})}};
    auto r = http.request("POST", "/v1/voice/transcript", body.dump(), {{"Authorization", "Bearer " + g.access_token}});
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_TRUE(json::parse(r.body)["emergency"].is_null());
    // The same items again: stored once.
    http.request("POST", "/v1/voice/transcript", body.dump(), {{"Authorization", "Bearer " + g.access_token}});
    EXPECT_TRUE(eventually([&] { return get_consultation(host.port(), g.access_token, id)["messages"].size() == 2; }));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(get_consultation(host.port(), g.access_token, id)["messages"].size(), 2u);
    // Red flags in a posted transcript come back in the answer.
    json urgent = {{"consultation_id", id},
                   {"items", json::array({{{"id", "i3"}, {"role", "patient"}, {"text", "I took all my pills, the whole bottle, an hour ago"}}})}};
    auto e = http.request("POST", "/v1/voice/transcript", urgent.dump(), {{"Authorization", "Bearer " + g.access_token}});
    ASSERT_EQ(e.status, 202);
    EXPECT_FALSE(json::parse(e.body)["emergency"].is_null()) << e.body;
}

}  // namespace
}  // namespace consilium::test
