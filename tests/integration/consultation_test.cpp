// Issue 2's end-to-end check: the real host, a guest, one streamed consultation over a real
// WebSocket, a cancelled second stream, and both turns read back after a restart.
#include "chat_client.hpp"

#include <gtest/gtest.h>

#include <set>

namespace consilium::test {
namespace {

// The mock paced so a stream takes a few seconds: long enough to cancel one mid-way.
const std::vector<std::string> kPaced = {"providers.mock.tokens_per_second=100", "providers.mock.first_token_ms=20",
                                         "providers.mock.reply_tokens=800"};

void expect_seq_rises_by_one(const std::vector<json> &frames, int64_t &last, const std::string &consultation) {
    for (const auto &f : frames) {
        if (!f.contains("seq")) continue;
        EXPECT_EQ(f.value("consultation_id", ""), consultation) << f.dump();
        EXPECT_EQ(f["seq"].get<int64_t>(), last + 1) << f.dump();
        last = f["seq"].get<int64_t>();
    }
}

std::string text_of(const std::vector<json> &frames) {
    std::string s;
    for (const auto &f : frames)
        if (f.value("type", "") == "stream_chunk") s += f.value("text", "");
    return s;
}

TEST(Consultation, StreamsStoresCancelsAndSurvivesRestart) {
    HostProcess host(kPaced);
    ASSERT_TRUE(host.start()) << host.log();
    GuestToken guest = new_guest(host.port());
    ASSERT_FALSE(guest.access_token.empty());

    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(guest.access_token)) << chat.ws().error();

    // 1. A message: ack, stream_start naming a specialist, chunks, exactly one stream_end.
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "m1"},
                           {"text", "I have an itchy red rash with silvery scaly patches on my elbows and knees"}}));
    auto frames = chat.until_stream_end();
    ASSERT_FALSE(frames.empty());
    ASSERT_EQ(frames.front().value("type", ""), "ack") << frames.front().dump();
    EXPECT_EQ(frames.front().value("id", ""), "m1");
    std::string consultation = frames.front().value("consultation_id", "");
    ASSERT_FALSE(consultation.empty());
    int64_t last = frames.front()["seq"].get<int64_t>() - 1;
    EXPECT_EQ(last, 0);
    expect_seq_rises_by_one(frames, last, consultation);

    ASSERT_GE(frames.size(), 4u);
    const json &start = frames[1];
    ASSERT_EQ(start.value("type", ""), "stream_start") << start.dump();
    EXPECT_EQ(start.value("reply_to", ""), "m1");
    EXPECT_EQ(start["specialist"].value("id", ""), "dermatology") << start.dump();
    EXPECT_FALSE(start["specialist"].value("name", "").empty());
    std::string stream_id = start.value("stream_id", "");
    size_t chunks = 0, ends = 0;
    for (const auto &f : frames) {
        if (f.value("type", "") == "stream_chunk") {
            ++chunks;
            EXPECT_EQ(f.value("stream_id", ""), stream_id);
        }
        if (f.value("type", "") == "stream_end") ++ends;
    }
    EXPECT_GT(chunks, 10u);
    EXPECT_EQ(ends, 1u);
    const json &end = frames.back();
    EXPECT_EQ(end.value("stop_reason", ""), "end_turn") << end.dump();
    EXPECT_EQ(end.value("stream_id", ""), stream_id);
    EXPECT_FALSE(end["follow_ups"].empty()) << end.dump();
    EXPECT_FALSE(end["citations"].empty()) << end.dump();
    std::string first_answer = text_of(frames);
    EXPECT_EQ(first_answer.find("[[follow-ups]]"), std::string::npos) << "the marker must not reach the patient";

    // 2. A second message in the same consultation, cancelled mid-stream.
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "m2"}, {"consultation_id", consultation},
                           {"text", "It gets worse in winter. What creams can I use?"}}));
    auto head = chat.until([](const json &f) { return f.value("type", "") == "stream_chunk"; });
    ASSERT_FALSE(head.empty());
    ASSERT_EQ(head.back().value("type", ""), "stream_chunk") << head.back().dump();
    std::string second_stream;
    for (const auto &f : head)
        if (f.value("type", "") == "stream_start") second_stream = f.value("stream_id", "");
    ASSERT_FALSE(second_stream.empty());
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(chat.send({{"type", "cancel"}, {"stream_id", second_stream}}));
    auto tail = chat.until_stream_end(std::chrono::seconds(5));
    ASSERT_FALSE(tail.empty());
    EXPECT_EQ(tail.back().value("type", ""), "stream_end");
    EXPECT_EQ(tail.back().value("stop_reason", ""), "cancelled") << tail.back().dump();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    head.insert(head.end(), tail.begin(), tail.end());
    expect_seq_rises_by_one(head, last, consultation);
    chat.ws().close();

    // 3. Restart on the same data dir: both turns are there.
    ASSERT_EQ(host.stop(), 0) << host.log();
    ASSERT_TRUE(host.start()) << host.log();
    net::HttpClient http("127.0.0.1", host.port());
    auto r = http.get("/v1/consultations/" + consultation, {{"Authorization", "Bearer " + guest.access_token}});
    ASSERT_EQ(r.status, 200) << r.body;
    json c = json::parse(r.body);
    ASSERT_EQ(c["messages"].size(), 4u) << r.body;
    EXPECT_EQ(c["messages"][0]["role"], "patient");
    EXPECT_EQ(c["messages"][0]["text"], "I have an itchy red rash with silvery scaly patches on my elbows and knees");
    EXPECT_EQ(c["messages"][1]["role"], "specialist");
    EXPECT_EQ(c["messages"][1]["text"], first_answer);
    EXPECT_EQ(c["messages"][1]["stop_reason"], "end_turn");
    EXPECT_EQ(c["messages"][2]["text"], "It gets worse in winter. What creams can I use?");
    EXPECT_EQ(c["messages"][3]["stop_reason"], "cancelled");

    auto list = http.get("/v1/consultations", {{"Authorization", "Bearer " + guest.access_token}});
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(json::parse(list.body)["consultations"].size(), 1u);
    EXPECT_EQ(host.stop(), 0);
}

TEST(Consultation, GuestsSeeOnlyTheirOwn) {
    HostProcess host({"providers.mock.tokens_per_second=0", "providers.mock.first_token_ms=0"});
    ASSERT_TRUE(host.start()) << host.log();
    GuestToken a = new_guest(host.port()), b = new_guest(host.port());
    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(a.access_token));
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "x1"}, {"text", "how much water should I drink each day"}}));
    auto frames = chat.until_stream_end();
    ASSERT_FALSE(frames.empty());
    std::string id = frames.front().value("consultation_id", "");

    net::HttpClient http("127.0.0.1", host.port());
    EXPECT_EQ(http.get("/v1/consultations/" + id, {{"Authorization", "Bearer " + a.access_token}}).status, 200);
    auto other = http.get("/v1/consultations/" + id, {{"Authorization", "Bearer " + b.access_token}});
    EXPECT_EQ(other.status, 404) << "another account's consultation must look missing, not forbidden";
    auto list = http.get("/v1/consultations", {{"Authorization", "Bearer " + b.access_token}});
    EXPECT_EQ(json::parse(list.body)["consultations"].size(), 0u);
    EXPECT_EQ(http.get("/v1/consultations/" + id).status, 401);

    // Nor through the chat channel.
    ChatClient intruder(host.port());
    ASSERT_TRUE(intruder.connect(b.access_token));
    ASSERT_TRUE(intruder.send({{"type", "resume"}, {"consultation_id", id}, {"after_seq", 0}}));
    auto f = intruder.next();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->value("type", ""), "error");
    EXPECT_EQ(f->value("code", ""), "not_found");
    ASSERT_TRUE(intruder.send({{"type", "message"}, {"id", "y1"}, {"consultation_id", id}, {"text", "hello"}}));
    f = intruder.next();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->value("code", ""), "not_found");
}

TEST(Consultation, SameIdTwiceIsOneTurn) {
    HostProcess host({"providers.mock.tokens_per_second=0", "providers.mock.first_token_ms=0"});
    ASSERT_TRUE(host.start()) << host.log();
    GuestToken g = new_guest(host.port());
    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(g.access_token));
    json msg = {{"type", "message"}, {"id", "dup-1"}, {"text", "my knee hurts when I climb stairs"}};
    ASSERT_TRUE(chat.send(msg));
    auto first = chat.until_stream_end();
    ASSERT_FALSE(first.empty());
    std::string id = first.front().value("consultation_id", "");
    // Again, as a client would after a lost ack: the same events, no second turn.
    ASSERT_TRUE(chat.send(msg));
    auto again = chat.until_stream_end();
    ASSERT_EQ(again.size(), first.size());
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(again[i], first[i]);
    net::HttpClient http("127.0.0.1", host.port());
    auto r = http.get("/v1/consultations/" + id, {{"Authorization", "Bearer " + g.access_token}});
    EXPECT_EQ(json::parse(r.body)["messages"].size(), 2u);
    auto list = http.get("/v1/consultations", {{"Authorization", "Bearer " + g.access_token}});
    EXPECT_EQ(json::parse(list.body)["consultations"].size(), 1u);
}

TEST(Consultation, EmergencyFrameComesBeforeTheAnswer) {
    HostProcess host({"providers.mock.tokens_per_second=0", "providers.mock.first_token_ms=0"});
    ASSERT_TRUE(host.start()) << host.log();
    GuestToken g = new_guest(host.port());
    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(g.access_token));
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "e1"},
                           {"text", "crushing pain in my chest spreading to my left arm and I am sweating"}}));
    auto frames = chat.until_stream_end();
    ASSERT_GE(frames.size(), 3u);
    EXPECT_EQ(frames[0].value("type", ""), "ack");
    ASSERT_EQ(frames[1].value("type", ""), "emergency") << frames[1].dump();
    EXPECT_FALSE(frames[1]["numbers"].empty());
    EXPECT_FALSE(frames[1].value("message", "").empty());
    EXPECT_EQ(frames[2].value("type", ""), "stream_start");
}

}  // namespace
}  // namespace consilium::test
