// Issue 5's checks of the chat channel over real sockets: resume after a dropped socket and after
// a host restart without a gap or a duplicate, rate limits that stop a flood without hurting a
// second client, concurrent-turn limits, Origin and idle closes, a reader that stops reading
// while the host's memory stays bounded, and SIGTERM during 50 streams.
#include "chat_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <thread>

namespace consilium::test {
namespace {

using namespace std::chrono_literals;

bool is(const json &f, const char *type) { return f.value("type", "") == type; }

// What a client reconstructs from the events it processed: each event once, by seq; a merged
// chunk counts for seq_from..seq.
struct Timeline {
    int64_t last = 0;
    std::map<int64_t, json> events;
    std::string text;
    bool ended = false;

    // Applies one frame the way docs/protocol.md's client does: skips what it already has.
    // Returns false for a duplicate that overlaps partially (a protocol violation).
    bool apply(const json &f) {
        if (!f.contains("seq")) return true;
        int64_t seq = f["seq"].get<int64_t>();
        int64_t from = f.value("seq_from", seq);
        if (seq <= last) return true;  // already processed
        if (from <= last) return false;
        events[seq] = f;
        last = seq;
        if (is(f, "stream_chunk")) text += f.value("text", "");
        if (is(f, "stream_restart")) text.clear();
        if (is(f, "stream_end")) ended = true;
        return true;
    }
};

std::string stored_answer(uint16_t port, const std::string &token, const std::string &consultation) {
    net::HttpClient http("127.0.0.1", port);
    auto r = http.get("/v1/consultations/" + consultation, {{"Authorization", "Bearer " + token}});
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("messages")) return "<" + std::to_string(r.status) + " " + r.body + ">";
    std::string last;
    for (const auto &m : j["messages"])
        if (m.value("role", "") == "specialist" && m["text"].is_string()) last = m["text"];
    return last;
}

TEST(Channel, ClientDroppedMidStreamResumesWithoutGapOrDuplicate) {
    HostProcess host({"providers.mock.tokens_per_second=80", "providers.mock.reply_tokens=240",
                      "providers.mock.first_token_ms=10"});
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());

    Timeline t;
    std::string consultation;
    {
        ChatClient a(host.port());
        ASSERT_TRUE(a.connect(guest.access_token));
        ASSERT_TRUE(a.send({{"type", "message"}, {"id", "m1"}, {"text", "my knee hurts when I climb stairs"}}));
        int chunks = 0;
        auto head = a.until([&](const json &f) { return is(f, "stream_chunk") && ++chunks == 10; });
        ASSERT_FALSE(head.empty());
        consultation = head.front().value("consultation_id", "");
        for (const auto &f : head) ASSERT_TRUE(t.apply(f));
        a.ws().drop();  // no close handshake: the network went away
    }
    std::this_thread::sleep_for(300ms);  // the stream goes on without the client

    ChatClient b(host.port());
    ASSERT_TRUE(b.connect(guest.access_token));
    ASSERT_TRUE(b.send({{"type", "resume"}, {"consultation_id", consultation}, {"after_seq", t.last}}));
    int64_t expected = t.last + 1;
    auto rest = b.until([](const json &f) { return is(f, "stream_end"); }, 30s);
    ASSERT_FALSE(rest.empty());
    for (const auto &f : rest) {
        if (!f.contains("seq")) continue;
        // Exactly the next events: nothing missing, nothing again.
        ASSERT_EQ(f.value("seq_from", f["seq"].get<int64_t>()), expected) << f.dump();
        expected = f["seq"].get<int64_t>() + 1;
        ASSERT_TRUE(t.apply(f));
    }
    ASSERT_TRUE(t.ended);
    EXPECT_EQ(t.events.rbegin()->second.value("stop_reason", ""), "end_turn");
    EXPECT_EQ(t.text, stored_answer(host.port(), guest.access_token, consultation));

    // Sending m1 again on a new connection makes no second turn: the same ack comes back.
    ChatClient c(host.port());
    ASSERT_TRUE(c.connect(guest.access_token));
    ASSERT_TRUE(c.send({{"type", "message"}, {"id", "m1"}, {"text", "my knee hurts when I climb stairs"}}));
    auto again = c.until_stream_end(10s);
    ASSERT_FALSE(again.empty());
    EXPECT_TRUE(is(again.front(), "ack"));
    EXPECT_EQ(again.front()["seq"], t.events.begin()->first);
    EXPECT_EQ(again.back()["seq"], t.last);
}

TEST(Channel, HostRestartedMidConsultationIsResumedAfterwards) {
    TempDir data;
    std::vector<std::string> paced = {"providers.mock.tokens_per_second=40", "providers.mock.reply_tokens=400",
                                      "server.drain_timeout_ms=200"};
    GuestToken guest;
    Timeline t;
    std::string consultation;
    {
        HostProcess host(paced, data.path());
        ASSERT_TRUE(host.start()) << host.log();
        guest = new_guest(host.port());
        ChatClient a(host.port());
        ASSERT_TRUE(a.connect(guest.access_token));
        ASSERT_TRUE(a.send({{"type", "message"}, {"id", "r1"}, {"text", "I get headaches behind my eyes every afternoon"}}));
        int chunks = 0;
        auto head = a.until([&](const json &f) { return is(f, "stream_chunk") && ++chunks == 5; });
        ASSERT_FALSE(head.empty());
        consultation = head.front().value("consultation_id", "");
        for (const auto &f : head) ASSERT_TRUE(t.apply(f));
        // The client misses everything from here: the host restarts under it.
        a.ws().drop();
        ASSERT_EQ(host.stop(), 0) << host.log();
    }
    HostProcess host(paced, data.path());
    ASSERT_TRUE(host.start()) << host.log();
    ChatClient b(host.port());
    ASSERT_TRUE(b.connect(guest.access_token)) << "the guest's token survives a restart";
    ASSERT_TRUE(b.send({{"type", "resume"}, {"consultation_id", consultation}, {"after_seq", t.last}}));
    auto rest = b.until([](const json &f) { return is(f, "stream_end"); }, 20s);
    ASSERT_FALSE(rest.empty());
    int64_t expected = t.last + 1;
    for (const auto &f : rest) {
        if (!f.contains("seq")) continue;
        ASSERT_EQ(f.value("seq_from", f["seq"].get<int64_t>()), expected) << f.dump();
        expected = f["seq"].get<int64_t>() + 1;
        ASSERT_TRUE(t.apply(f));
    }
    const json &end = t.events.rbegin()->second;
    ASSERT_TRUE(is(end, "stream_end")) << end.dump();
    EXPECT_EQ(end["error"].value("code", ""), "shutting_down") << end.dump();
    EXPECT_EQ(t.text, stored_answer(host.port(), guest.access_token, consultation))
        << "what the client saw is what was stored";

    // The consultation goes on after the restart.
    ASSERT_TRUE(b.send({{"type", "message"}, {"id", "r2"}, {"consultation_id", consultation},
                        {"text", "they are worse when I look at screens"}}));
    auto next = b.until_stream_end(30s);
    ASSERT_FALSE(next.empty());
    EXPECT_EQ(next.front()["seq"].get<int64_t>(), t.last + 1);
    EXPECT_EQ(next.back().value("stop_reason", ""), "end_turn") << next.back().dump();
}

TEST(Channel, FloodIsRateLimitedWhileAnotherClientIsServedNormally) {
    HostProcess host({"providers.mock.tokens_per_second=0", "providers.mock.reply_tokens=20",
                      "limits.guest_messages_per_minute=6", "limits.close_after_violations=12",
                      "limits.guest_concurrent_turns=20"});
    ASSERT_TRUE(host.start()) << host.log();
    auto flooder = new_guest(host.port());
    auto patient = new_guest(host.port());

    ChatClient flood(host.port());
    ASSERT_TRUE(flood.connect(flooder.access_token));
    for (int i = 0; i < 10; ++i)
        ASSERT_TRUE(flood.send({{"type", "message"}, {"id", "f" + std::to_string(i)}, {"text", "hello?"}}));
    int limited = 0, acked = 0;
    flood.until([&](const json &f) {
        if (is(f, "error") && f.value("code", "") == "rate_limited") {
            ++limited;
            EXPECT_GT(f.value("retry_after_ms", 0), 0) << f.dump();
            EXPECT_FALSE(f.value("reply_to", "").empty());
        }
        if (is(f, "ack")) ++acked;
        return limited + acked == 10;
    }, 10s);
    EXPECT_EQ(acked, 3) << "a guest's connection bucket holds 3 messages at 6 per minute";
    EXPECT_EQ(limited, 7);
    // Still connected.
    ASSERT_TRUE(flood.send({{"type", "ping"}}));
    EXPECT_FALSE(flood.until([](const json &f) { return is(f, "pong"); }, 5s).empty());

    // Meanwhile another client is served as usual.
    ChatClient other(host.port());
    ASSERT_TRUE(other.connect(patient.access_token));
    ASSERT_TRUE(other.send({{"type", "message"}, {"id", "p1"}, {"text", "I have a dry cough at night"}}));
    auto frames = other.until_stream_end(15s);
    ASSERT_FALSE(frames.empty());
    EXPECT_TRUE(is(frames.front(), "ack")) << frames.front().dump();
    EXPECT_EQ(frames.back().value("stop_reason", ""), "end_turn");

    // A flooder that keeps going after being told is closed with 1008.
    for (int i = 10; i < 40 && flood.ws().is_open(); ++i)
        flood.send({{"type", "message"}, {"id", "f" + std::to_string(i)}, {"text", "hello?"}});
    EXPECT_TRUE(flood.ws().wait_closed(10s));
    ASSERT_TRUE(flood.ws().close_info().has_value());
    EXPECT_EQ(flood.ws().close_info()->code, 1008);
}

TEST(Channel, ConcurrentAnswersPerAccountAreLimited) {
    HostProcess host({"providers.mock.tokens_per_second=20", "providers.mock.reply_tokens=200",
                      "limits.guest_concurrent_turns=2"});
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());
    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(guest.access_token));
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "c" + std::to_string(i)}, {"text", "I feel dizzy when I stand up"}}));
    auto frames = chat.until([](const json &f) { return is(f, "error"); }, 10s);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().value("code", ""), "too_many_streams") << frames.back().dump();
    // Each message starts its own consultation, and consultations run side by side: whichever
    // came third to the limit is refused, not necessarily the third sent.
    const std::string refused = frames.back().value("reply_to", "");
    EXPECT_TRUE(refused == "c0" || refused == "c1" || refused == "c2") << frames.back().dump();
    // Cancelling one frees its slot.
    std::string stream;
    for (const auto &f : frames)
        if (is(f, "stream_start") && stream.empty()) stream = f.value("stream_id", "");
    if (stream.empty()) {
        auto s = chat.until([](const json &f) { return is(f, "stream_start"); }, 10s);
        ASSERT_FALSE(s.empty());
        stream = s.back().value("stream_id", "");
    }
    ASSERT_TRUE(chat.send({{"type", "cancel"}, {"stream_id", stream}}));
    ASSERT_FALSE(chat.until([&](const json &f) { return is(f, "stream_end") && f.value("stream_id", "") == stream; }, 10s).empty());
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", refused}, {"text", "I feel dizzy when I stand up"}}));
    auto ok = chat.until([](const json &f) { return is(f, "ack") || is(f, "error"); }, 10s);
    ASSERT_FALSE(ok.empty());
    EXPECT_TRUE(is(ok.back(), "ack")) << ok.back().dump();
}

TEST(Channel, OriginsOutsideTheAllowListAreClosedWith4003) {
    HostProcess host({"chat.allowed_origins=[\"https://app.example.org\"]"});
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());
    net::Headers auth = {{"Authorization", "Bearer " + guest.access_token}};

    net::WsClient evil;
    auto headers = auth;
    headers.push_back({"Origin", "https://evil.example.com"});
    ASSERT_TRUE(evil.connect("127.0.0.1", host.port(), "/v1/chat", headers)) << evil.error();
    EXPECT_TRUE(evil.wait_closed(5s));
    ASSERT_TRUE(evil.close_info().has_value());
    EXPECT_EQ(evil.close_info()->code, 4003);

    for (const char *origin : {"https://app.example.org", ""}) {
        net::WsClient ok;
        auto h = auth;
        if (*origin) h.push_back({"Origin", origin});
        ASSERT_TRUE(ok.connect("127.0.0.1", host.port(), "/v1/chat", h)) << ok.error();
        auto ready = ok.receive_text(5s);
        ASSERT_TRUE(ready.has_value()) << origin;
        EXPECT_NE(ready->find("\"ready\""), std::string::npos) << *ready;
    }
}

TEST(Channel, IdleAndSilentConnectionsAreClosed) {
    HostProcess host({"chat.idle_timeout_ms=1500", "transports.http.ws_ping_interval_ms=300",
                      "transports.http.ws_pong_timeout_ms=500"});
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());

    // Authenticated but sends nothing: closed as idle (4002), though it answers pings.
    ChatClient idle(host.port());
    ASSERT_TRUE(idle.connect(guest.access_token));
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(idle.ws().wait_closed(10s));
    ASSERT_TRUE(idle.ws().close_info().has_value());
    EXPECT_EQ(idle.ws().close_info()->code, 4002);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 1400ms);

    // A client that pings now and then stays.
    ChatClient busy(host.port());
    ASSERT_TRUE(busy.connect(guest.access_token));
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(busy.send({{"type", "ping"}}));
        ASSERT_FALSE(busy.until([](const json &f) { return is(f, "pong"); }, 2s).empty()) << i;
        std::this_thread::sleep_for(400ms);
    }
    EXPECT_TRUE(busy.ws().is_open());

    // A peer that stops answering the server's pings (it reads nothing) is dropped.
    ChatClient silent(host.port());
    ASSERT_TRUE(silent.connect(guest.access_token));
    std::this_thread::sleep_for(1200ms);  // no reads: pings go unanswered
    EXPECT_TRUE(silent.ws().wait_closed(3s));
}

TEST(Channel, AReaderThatStopsReadingCannotGrowTheHostWithoutBound) {
    // The mock at full speed writes a long answer into a client that reads nothing.
    HostProcess host({"providers.mock.tokens_per_second=0", "providers.mock.reply_tokens=60000",
                      "transports.http.write_queue_limit=2097152", "chat.merge_above_bytes=65536",
                      "limits.guest_concurrent_turns=8"});
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());
    long before = host.rss_kib();
    ASSERT_GT(before, 0);

    net::WsOptions small;
    small.receive_buffer_bytes = 4096;
    net::WsClient slow(small);
    ASSERT_TRUE(slow.connect("127.0.0.1", host.port(), "/v1/chat", {{"Authorization", "Bearer " + guest.access_token}}));
    ASSERT_TRUE(slow.receive_text(5s).has_value());  // ready
    ASSERT_TRUE(slow.send_text(R"({"type":"message","id":"big","text":"tell me everything about my sore throat"})"));
    long peak = before;
    double queue_peak = 0;
    net::HttpClient metrics("127.0.0.1", host.port());
    for (int i = 0; i < 40; ++i) {  // 4 s of not reading
        std::this_thread::sleep_for(100ms);
        peak = std::max(peak, host.rss_kib());
        // What the transport holds for its WebSocket clients, all of them (the gauge).
        std::string body = metrics.get("/metrics").body;
        auto at = body.find("\nconsilium_transport_websocket_queued_bytes");
        ASSERT_NE(at, std::string::npos);
        auto space = body.find(' ', body.find_first_of("} ", at + 1));
        queue_peak = std::max(queue_peak, std::strtod(body.c_str() + space + 1, nullptr));
    }
    // The send queue never grows past its limit plus the frame that reached it. (How far it
    // fills depends on how much the kernel's socket buffers absorb; the transport's own tests
    // fill it to the limit and see the 1008 close.)
    EXPECT_LE(queue_peak, 2097152 + 65536) << "the send queue grew past write_queue_limit";
#if !defined(__SANITIZE_ADDRESS__)
    // (AddressSanitizer keeps freed memory in quarantine, so RSS says little there.)
    EXPECT_LT(peak - before, 48 * 1024) << "RSS grew from " << before << " KiB to " << peak << " KiB";
#endif

    // Either the queue limit closed it (1008), or merged chunks kept it within bounds. Both
    // ways the consultation is intact: resume on a new connection gets the whole answer.
    Timeline t;
    std::string consultation;
    for (;;) {
        auto f = slow.receive_text(2s);
        if (!f) break;
        json j = json::parse(*f, nullptr, false);
        if (j.contains("consultation_id")) consultation = j["consultation_id"];
        if (!t.apply(j)) ADD_FAILURE() << "overlapping event " << *f;
        if (t.ended) break;
    }
    ASSERT_FALSE(consultation.empty());
    if (!t.ended) {
        ChatClient b(host.port());
        ASSERT_TRUE(b.connect(guest.access_token));
        ASSERT_TRUE(b.send({{"type", "resume"}, {"consultation_id", consultation}, {"after_seq", t.last}}));
        auto rest = b.until([](const json &f) { return is(f, "stream_end"); }, 60s);
        int64_t expected = t.last + 1;
        for (const auto &f : rest) {
            if (!f.contains("seq")) continue;
            ASSERT_EQ(f.value("seq_from", f["seq"].get<int64_t>()), expected) << f.dump().substr(0, 200);
            expected = f["seq"].get<int64_t>() + 1;
            t.apply(f);
        }
    }
    ASSERT_TRUE(t.ended);
    EXPECT_EQ(t.text, stored_answer(host.port(), guest.access_token, consultation));
}

TEST(Channel, SigtermDuring50StreamsEndsEveryOneProperly) {
    HostProcess host({"providers.mock.tokens_per_second=20", "providers.mock.reply_tokens=400",
                      "server.drain_timeout_ms=300"});
    ASSERT_TRUE(host.start()) << host.log();
    std::vector<std::unique_ptr<ChatClient>> clients;
    for (int i = 0; i < 50; ++i) {
        auto g = new_guest(host.port());
        auto c = std::make_unique<ChatClient>(host.port());
        ASSERT_TRUE(c->connect(g.access_token)) << i;
        ASSERT_TRUE(c->send({{"type", "message"}, {"id", "d" + std::to_string(i)}, {"text", "my ankle is swollen after a fall"}}));
        clients.push_back(std::move(c));
    }
    for (auto &c : clients) ASSERT_FALSE(c->until([](const json &f) { return is(f, "stream_chunk"); }).empty());
    int code = -2;
    std::thread stopper([&] { code = host.stop(); });
    for (auto &c : clients) {
        auto rest = c->until([](const json &f) { return is(f, "stream_end"); }, 15s);
        ASSERT_FALSE(rest.empty());
        const json &end = rest.back();
        ASSERT_TRUE(is(end, "stream_end")) << end.dump();
        EXPECT_EQ(end.value("stop_reason", ""), "error");
        EXPECT_EQ(end["error"].value("code", ""), "shutting_down");
        // Then the server closes with "going away": reconnect elsewhere and resume.
        EXPECT_TRUE(c->ws().wait_closed(10s));
        if (c->ws().close_info()) {
            EXPECT_EQ(c->ws().close_info()->code, 1001);
        }
    }
    stopper.join();
    EXPECT_EQ(code, 0) << host.log();
}

}  // namespace
}  // namespace consilium::test
