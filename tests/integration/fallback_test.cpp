// The fallback transports against the real host (docs/protocol.md, "Fallback transports"): a
// consultation over Server-Sent Events + POST and over long-polling carries the same events with
// the same seq as over the WebSocket, survives a dropped SSE connection through Last-Event-ID
// without a gap or a duplicate, and keeps the same-id rule.
#include "chat_client.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace consilium::test {
namespace {

using namespace std::chrono_literals;

bool is(const json &f, const char *type) { return f.value("type", "") == type; }

struct FallbackSession {
    std::string events, poll, send;
    net::Headers auth;
};

FallbackSession open_session(uint16_t port, const std::string &token) {
    net::HttpClient http("127.0.0.1", port);
    net::Headers auth = {{"Authorization", "Bearer " + token}};
    auto r = http.request("POST", "/v1/chat/sessions", "", auth);
    EXPECT_EQ(r.status, 201) << r.body;
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object()) return {};
    return {j.value("events", ""), j.value("poll", ""), j.value("send", ""), auth};
}

int post(uint16_t port, const FallbackSession &s, const json &frame) {
    net::HttpClient http("127.0.0.1", port);
    return http.request("POST", s.send, frame.dump(), s.auth).status;
}

// Reads SSE events until pred matches a frame (included); remembers the last event id.
std::vector<json> sse_until(net::SseClient &sse, std::string &last_id, const std::function<bool(const json &)> &pred,
                            std::chrono::milliseconds timeout = 20s) {
    std::vector<json> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto ev = sse.next(1s);
        if (!ev) {
            if (sse.ended()) break;
            continue;
        }
        if (!ev->event.empty()) continue;  // transport events (gap, close, replaced)
        last_id = ev->id;
        json f = json::parse(ev->data, nullptr, false);
        EXPECT_TRUE(f.is_object()) << ev->data;
        out.push_back(f);
        if (pred(f)) break;
    }
    return out;
}

// The consultation events of a list of frames, by seq (without transport-only frames).
std::map<int64_t, json> by_seq(const std::vector<json> &frames) {
    std::map<int64_t, json> out;
    for (const auto &f : frames)
        if (f.contains("seq")) {
            EXPECT_TRUE(out.emplace(f["seq"].get<int64_t>(), f).second) << "seq twice: " << f.dump();
        }
    return out;
}

std::vector<std::string> paced = {"providers.mock.tokens_per_second=100", "providers.mock.reply_tokens=120",
                                  "providers.mock.first_token_ms=10"};

TEST(Fallback, SseCarriesTheSameEventsAsTheWebSocket) {
    HostProcess host(paced);
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());

    // A turn over the WebSocket.
    ChatClient ws(host.port());
    ASSERT_TRUE(ws.connect(guest.access_token));
    ASSERT_TRUE(ws.send({{"type", "message"}, {"id", "w1"}, {"text", "my knee is swollen after running"}}));
    auto live_ws = ws.until_stream_end();
    ASSERT_FALSE(live_ws.empty());
    std::string consultation = live_ws.front().value("consultation_id", "");

    // The same consultation over SSE: resume from 0 gives exactly what the WebSocket saw.
    auto s = open_session(host.port(), guest.access_token);
    net::SseClient sse("127.0.0.1", host.port());
    ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.status() << " " << sse.body();
    EXPECT_EQ(sse.header("content-type"), "text/event-stream");
    std::string last_id;
    auto ready = sse_until(sse, last_id, [](const json &f) { return is(f, "ready"); });
    ASSERT_FALSE(ready.empty());
    ASSERT_TRUE(is(ready.back(), "ready")) << ready.back().dump();
    ASSERT_EQ(post(host.port(), s, {{"type", "resume"}, {"consultation_id", consultation}, {"after_seq", 0}}), 202);
    auto replay = sse_until(sse, last_id, [](const json &f) { return is(f, "stream_end"); });
    auto a = by_seq(live_ws), b = by_seq(replay);
    ASSERT_EQ(a.size(), b.size());
    for (const auto &[seq, f] : a) {
        ASSERT_TRUE(b.count(seq)) << seq;
        EXPECT_EQ(b[seq]["type"], f["type"]) << seq;
        EXPECT_EQ(b[seq].value("text", ""), f.value("text", "")) << seq;
    }

    // A live turn over SSE + POST: contiguous seq after the first turn, ack before the stream.
    ASSERT_EQ(post(host.port(), s, {{"type", "message"}, {"id", "s1"}, {"consultation_id", consultation},
                                    {"text", "it also clicks when I bend it"}}),
              202);
    auto live_sse = sse_until(sse, last_id, [](const json &f) { return is(f, "stream_end"); });
    ASSERT_FALSE(live_sse.empty());
    EXPECT_TRUE(is(live_sse.front(), "ack")) << live_sse.front().dump();
    int64_t expected = a.rbegin()->first + 1;
    std::string text;
    for (const auto &f : live_sse) {
        if (!f.contains("seq")) continue;
        EXPECT_EQ(f.value("seq_from", f["seq"].get<int64_t>()), expected) << f.dump();
        expected = f["seq"].get<int64_t>() + 1;
        if (is(f, "stream_chunk")) text += f.value("text", "");
    }
    EXPECT_EQ(live_sse.back().value("stop_reason", ""), "end_turn");

    // The WebSocket client sees the same turn when it resumes.
    ASSERT_TRUE(ws.send({{"type", "resume"}, {"consultation_id", consultation}, {"after_seq", a.rbegin()->first}}));
    auto via_ws = ws.until([](const json &f) { return is(f, "stream_end"); });
    auto c = by_seq(via_ws), d = by_seq(live_sse);
    EXPECT_EQ(c.size(), d.size());
    for (const auto &[seq, f] : d) EXPECT_EQ(c[seq].value("text", ""), f.value("text", "")) << seq;
    ASSERT_FALSE(text.empty());
}

TEST(Fallback, ADroppedSseConnectionResumesWithLastEventId) {
    HostProcess host({"providers.mock.tokens_per_second=60", "providers.mock.reply_tokens=180",
                      "providers.mock.first_token_ms=10"});
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());
    auto s = open_session(host.port(), guest.access_token);
    std::string last_id;
    std::vector<json> seen;
    {
        net::SseClient sse("127.0.0.1", host.port());
        ASSERT_TRUE(sse.open(s.events, s.auth));
        sse_until(sse, last_id, [](const json &f) { return is(f, "ready"); });
        ASSERT_EQ(post(host.port(), s, {{"type", "message"}, {"id", "d1"}, {"text", "I have had a sore throat for a week"}}), 202);
        int chunks = 0;
        seen = sse_until(sse, last_id, [&](const json &f) { return is(f, "stream_chunk") && ++chunks == 8; });
        ASSERT_EQ(chunks, 8);
        sse.drop();
    }
    std::this_thread::sleep_for(400ms);  // the answer goes on without the client
    net::SseClient again("127.0.0.1", host.port());
    net::Headers headers = s.auth;
    headers.emplace_back("Last-Event-ID", last_id);
    ASSERT_TRUE(again.open(s.events, headers)) << again.status() << " " << again.body();
    auto rest = sse_until(again, last_id, [](const json &f) { return is(f, "stream_end"); });
    ASSERT_FALSE(rest.empty());
    seen.insert(seen.end(), rest.begin(), rest.end());
    auto all = by_seq(seen);  // fails on a duplicate seq
    int64_t expected = all.begin()->first;
    std::string text;
    for (const auto &[seq, f] : all) {
        EXPECT_EQ(f.value("seq_from", seq), expected) << "gap before " << f.dump();
        expected = seq + 1;
        if (is(f, "stream_chunk")) text += f.value("text", "");
    }
    EXPECT_EQ(all.rbegin()->second.value("stop_reason", ""), "end_turn");

    // What was streamed is what was stored.
    net::HttpClient http("127.0.0.1", host.port());
    std::string consultation = all.begin()->second.value("consultation_id", "");
    auto r = http.get("/v1/consultations/" + consultation, {{"Authorization", "Bearer " + guest.access_token}});
    json stored = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(stored.is_object()) << r.body;
    EXPECT_EQ(stored["messages"].back().value("text", ""), text);
}

TEST(Fallback, LongPollingCarriesATurnAndTheSameIdMakesNoSecondTurn) {
    HostProcess host(paced);
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());
    auto s = open_session(host.port(), guest.access_token);

    uint64_t after = 0;
    auto poll_until = [&](const std::function<bool(const json &)> &pred) {
        std::vector<json> out;
        net::HttpClient http("127.0.0.1", host.port(), 40s);
        for (int i = 0; i < 200; ++i) {
            auto r = http.get(s.poll + "?after=" + std::to_string(after) + "&wait_ms=2000", s.auth);
            EXPECT_EQ(r.status, 200) << r.body;
            json j = json::parse(r.body, nullptr, false);
            if (!j.is_object()) break;
            EXPECT_FALSE(j.contains("gap")) << r.body;
            for (const auto &e : j["events"]) {
                after = e["id"].get<uint64_t>();
                out.push_back(json::parse(e["frame"].get<std::string>()));
                if (pred(out.back())) return out;
            }
            if (j.contains("closed")) break;
        }
        return out;
    };
    auto ready = poll_until([](const json &f) { return is(f, "ready"); });
    ASSERT_FALSE(ready.empty());
    ASSERT_EQ(post(host.port(), s, {{"type", "message"}, {"id", "p1"}, {"text", "I keep waking up at 4 am"}}), 202);
    auto turn = poll_until([](const json &f) { return is(f, "stream_end"); });
    ASSERT_FALSE(turn.empty());
    ASSERT_TRUE(is(turn.back(), "stream_end"));
    auto first = by_seq(turn);
    int64_t expected = first.begin()->first;
    for (const auto &[seq, f] : first) {
        EXPECT_EQ(f.value("seq_from", seq), expected);
        expected = seq + 1;
    }
    std::string consultation = turn.front().value("consultation_id", "");

    // The same id again (a client that never saw the ack): that turn's events, no new turn.
    ASSERT_EQ(post(host.port(), s, {{"type", "message"}, {"id", "p1"}, {"text", "I keep waking up at 4 am"}}), 202);
    auto again = poll_until([](const json &f) { return is(f, "stream_end"); });
    ASSERT_FALSE(again.empty());
    for (const auto &f : again)
        if (f.contains("seq")) {
            EXPECT_LE(f["seq"].get<int64_t>(), first.rbegin()->first) << f.dump();
        }
    net::HttpClient http("127.0.0.1", host.port());
    auto r = http.get("/v1/consultations/" + consultation, {{"Authorization", "Bearer " + guest.access_token}});
    EXPECT_EQ(json::parse(r.body)["messages"].size(), 2u) << r.body;
}

}  // namespace
}  // namespace consilium::test
