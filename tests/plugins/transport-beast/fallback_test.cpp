// The chat channel's fallback transports (SSE and long-polling over /v1/chat/sessions): a session
// per client mapped onto chat_open/chat_frame/chat_close, the engine's frames numbered and
// replayed (Last-Event-ID, after=), long-poll waits, idle expiry calling chat_close exactly once,
// sessions bound to the creating Authorization header, backpressure, the engine's close, stop().
#include "fake_front.hpp"

#include <nlohmann/json.hpp>

#include <future>

namespace consilium::test {
namespace {

using json = nlohmann::json;
using net::HttpClient;
using net::HttpResponse;
using net::SseClient;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Session {
    std::string id, events, poll, send;
    net::Headers auth;
};

class BeastFallback : public TransportTest {
protected:
    // Creates a session with this bearer token ("greet": the fake sends "ready" from chat_open).
    Session create(const std::string &token, const std::string &query = "") {
        HttpClient http(host(), port());
        net::Headers auth;
        if (!token.empty()) auth.emplace_back("Authorization", "Bearer " + token);
        auto r = http.request("POST", "/v1/chat/sessions" + query, "", auth);
        EXPECT_EQ(r.status, 201) << r.error << r.body;
        Session s;
        s.auth = auth;
        json j = json::parse(r.body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return s;
        s.id = j.value("session", "");
        s.events = j.value("events", "");
        s.poll = j.value("poll", "");
        s.send = j.value("send", "");
        return s;
    }

    HttpResponse post_frame(const Session &s, const std::string &frame) {
        HttpClient http(host(), port());
        return http.request("POST", s.send, frame, s.auth);
    }

    HttpResponse poll(const Session &s, uint64_t after, int wait_ms, const net::Headers *auth = nullptr) {
        HttpClient http(host(), port(), 40s);
        return http.get(s.poll + "?after=" + std::to_string(after) + "&wait_ms=" + std::to_string(wait_ms),
                        auth ? *auth : s.auth);
    }

    static json events_of(const HttpResponse &r) {
        EXPECT_EQ(r.status, 200) << r.error << r.body;
        json j = json::parse(r.body, nullptr, false);
        EXPECT_TRUE(j.is_object() && j.contains("events")) << r.body;
        return j.is_object() ? j : json::object();
    }

    int closed_calls(size_t i) {
        front_.wait_for([&] { return front_.chat(i).close_calls > 0; });
        std::this_thread::sleep_for(50ms);
        return front_.chat(i).close_calls;
    }
};

TEST_F(BeastFallback, CreatingASessionOpensAChat) {
    ASSERT_TRUE(start());
    HttpClient http(host(), port());
    auto r = http.request("POST", "/v1/chat/sessions?locale=ar", "",
                          {{"Authorization", "Bearer tok-1"}, {"Origin", "https://app.example"}, {"X-Extra", "1"}});
    ASSERT_EQ(r.status, 201) << r.error << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("cache-control"), "no-store");
    json j = json::parse(r.body);
    std::string id = j["session"];
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_EQ(j["events"], "/v1/chat/sessions/" + id + "/events");
    EXPECT_EQ(j["poll"], "/v1/chat/sessions/" + id + "/poll");
    EXPECT_EQ(j["send"], "/v1/chat/sessions/" + id + "/frames");

    ASSERT_EQ(front_.chat_count(), 1u);
    auto chat = front_.chat(0);
    EXPECT_EQ(chat.transport, "sse");
    EXPECT_EQ(chat.bearer, "tok-1");
    EXPECT_EQ(chat.origin, "https://app.example");
    EXPECT_EQ(chat.target, "/v1/chat?locale=ar");
    EXPECT_EQ(chat.headers["x-extra"], "1");
    EXPECT_EQ(chat.peer.rfind("127.0.0.1:", 0), 0u) << chat.peer;
    EXPECT_TRUE(front_.http_calls().empty()) << "the fallback went to http()";

    // Ids differ from session to session.
    EXPECT_NE(create("tok-2").id, id);
}

TEST_F(BeastFallback, WrongMethodsAndPathsAreRefused) {
    ASSERT_TRUE(start());
    auto s = create("a");
    HttpClient http(host(), port());
    auto r = http.get("/v1/chat/sessions", s.auth);
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.header("allow"), "POST");
    r = http.request("POST", s.poll, "", s.auth);
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.header("allow"), "GET");
    EXPECT_EQ(http.get(s.send, s.auth).status, 405);
    EXPECT_EQ(http.get("/v1/chat/sessions/" + s.id + "/other", s.auth).status, 404);
    EXPECT_EQ(http.get("/v1/chat/sessions/zzz/poll", s.auth).status, 404);
    EXPECT_EQ(http.get(s.poll + "?after=x", s.auth).status, 400);
    EXPECT_TRUE(front_.http_calls().empty());
}

TEST_F(BeastFallback, SseDeliversEveryFrameInOrderWithIds) {
    ASSERT_TRUE(start());
    auto s = create("greet");
    SseClient sse(host(), port());
    ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.error() << sse.body();
    EXPECT_EQ(sse.header("content-type"), "text/event-stream");
    EXPECT_EQ(sse.header("cache-control"), "no-store");
    auto ready = sse.next(5s);
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->id, "1");
    EXPECT_EQ(ready->event, "");
    EXPECT_EQ(ready->data, "ready");

    constexpr int n = 20;
    for (int i = 0; i < n; ++i) {
        auto r = post_frame(s, R"({"type":"message","n":)" + std::to_string(i) + "}");
        ASSERT_EQ(r.status, 202) << r.error << r.body;
    }
    for (int i = 0; i < n; ++i) {
        auto ev = sse.next(5s);
        ASSERT_TRUE(ev) << i;
        EXPECT_EQ(ev->id, std::to_string(i + 2));
        EXPECT_EQ(ev->data, R"(echo:{"type":"message","n":)" + std::to_string(i) + "}");
    }
    auto chat = front_.chat(0);
    ASSERT_EQ(chat.frames.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(chat.frames[i], R"({"type":"message","n":)" + std::to_string(i) + "}");
}

TEST_F(BeastFallback, FramesWithLineBreaksBecomeSeveralDataLines) {
    ASSERT_TRUE(start());
    auto s = create("a");
    SseClient sse(host(), port());
    ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.error();
    ASSERT_EQ(post_frame(s, "a\nb\r\nc").status, 202);
    auto ev = sse.next(5s);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->data, "echo:a\nb\nc");
}

TEST_F(BeastFallback, ReconnectingWithLastEventIdReplaysExactlyTheMissingOnes) {
    ASSERT_TRUE(start());
    auto s = create("greet");
    {
        SseClient sse(host(), port());
        ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.error();
        for (int i = 0; i < 4; ++i) ASSERT_EQ(post_frame(s, "m" + std::to_string(i)).status, 202);
        for (int id = 1; id <= 5; ++id) {
            auto ev = sse.next(5s);
            ASSERT_TRUE(ev) << id;
            EXPECT_EQ(ev->id, std::to_string(id));
        }
        sse.drop();
    }
    // While no client is attached the engine goes on sending.
    for (int i = 4; i < 7; ++i) ASSERT_EQ(post_frame(s, "m" + std::to_string(i)).status, 202);
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).frames.size() == 7; }));

    // The client saw up to id 3 (4 and 5 were lost in flight, say).
    SseClient again(host(), port());
    auto headers = s.auth;
    headers.emplace_back("Last-Event-ID", "3");
    ASSERT_TRUE(again.open(s.events, headers)) << again.error();
    for (int id = 4; id <= 8; ++id) {
        auto ev = again.next(5s);
        ASSERT_TRUE(ev) << id;
        EXPECT_EQ(ev->id, std::to_string(id));
        EXPECT_EQ(ev->data, "echo:m" + std::to_string(id - 2));
    }
    EXPECT_FALSE(again.next(300ms)) << "more than the missing events";
    EXPECT_FALSE(again.ended());
    // And it continues live.
    ASSERT_EQ(post_frame(s, "live").status, 202);
    auto live = again.next(5s);
    ASSERT_TRUE(live);
    EXPECT_EQ(live->id, "9");
    EXPECT_EQ(live->data, "echo:live");

    // A second stream for the session replaces the first, which is told so.
    SseClient third(host(), port());
    ASSERT_TRUE(third.open(s.events + "?after=9", s.auth)) << third.error();
    auto replaced = again.next(5s);
    ASSERT_TRUE(replaced);
    EXPECT_EQ(replaced->event, "replaced");
    EXPECT_FALSE(again.next(2s));
    EXPECT_TRUE(again.ended());
    EXPECT_TRUE(again.ended_cleanly());
}

TEST_F(BeastFallback, LongPollAnswersAtOnceWhenEventsWaitAndWaitsOtherwise) {
    ASSERT_TRUE(start());
    auto s = create("greet");
    auto t0 = Clock::now();
    json first = events_of(poll(s, 0, 5000));
    EXPECT_LT(Clock::now() - t0, 1s);
    ASSERT_EQ(first["events"].size(), 1u) << first.dump();
    EXPECT_EQ(first["events"][0]["id"], 1);
    EXPECT_EQ(first["events"][0]["frame"], "ready");

    t0 = Clock::now();
    json empty = events_of(poll(s, 1, 300));
    auto waited = Clock::now() - t0;
    EXPECT_TRUE(empty["events"].empty()) << empty.dump();
    EXPECT_GE(waited, 250ms);
    EXPECT_LT(waited, 3s);

    // A frame that arrives while the poll waits answers it.
    t0 = Clock::now();
    auto pending = std::async(std::launch::async, [&] { return poll(s, 1, 20000); });
    std::this_thread::sleep_for(200ms);
    ASSERT_EQ(post_frame(s, "x").status, 202);
    json got = events_of(pending.get());
    EXPECT_LT(Clock::now() - t0, 3s);
    ASSERT_EQ(got["events"].size(), 1u) << got.dump();
    EXPECT_EQ(got["events"][0]["id"], 2);
    EXPECT_EQ(got["events"][0]["frame"], "echo:x");

    // after= replays from the session's buffer, like Last-Event-ID.
    json all = events_of(poll(s, 0, 0));
    ASSERT_EQ(all["events"].size(), 2u) << all.dump();
    EXPECT_FALSE(all.contains("closed"));
    // wait_ms is capped (25 s): a huge one is not an error.
    EXPECT_EQ(poll(s, 2, 0).status, 200);
    HttpClient http(host(), port());
    t0 = Clock::now();
    EXPECT_EQ(http.get(s.poll + "?after=1&wait_ms=99999999999", s.auth).status, 200);
    EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(BeastFallback, FramesPostedReachChatFrameInOrder) {
    ASSERT_TRUE(start());
    auto s = create("a");
    HttpClient http(host(), port());  // one kept-alive connection, like a browser
    constexpr int n = 50;
    for (int i = 0; i < n; ++i) {
        auto r = http.request("POST", s.send, "f" + std::to_string(i), s.auth);
        ASSERT_EQ(r.status, 202) << r.error;
    }
    auto chat = front_.chat(0);
    ASSERT_EQ(chat.frames.size(), static_cast<size_t>(n)) << "202 came before chat_frame";
    for (int i = 0; i < n; ++i) EXPECT_EQ(chat.frames[i], "f" + std::to_string(i));
    // A frame over ws_max_message is refused like on the WebSocket.
    harness_.reset();
    ASSERT_TRUE(start({{"ws_max_message", 16}}));
    auto small = create("a");
    EXPECT_EQ(post_frame(small, std::string(16, 'a')).status, 202);
    auto big = post_frame(small, std::string(17, 'a'));
    EXPECT_EQ(big.status, 413);
    EXPECT_NE(big.body.find("frame_too_large"), std::string::npos);
}

TEST_F(BeastFallback, AnIdleSessionIsClosedExactlyOnce) {
    ASSERT_TRUE(start({{"fallback_session_idle_ms", 300}}));
    auto s = create("a");
    auto t0 = Clock::now();
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).close_calls > 0; }, 5s));
    EXPECT_GE(Clock::now() - t0, 250ms);
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(front_.chat(0).close_calls, 1);
    // Gone for the client too.
    EXPECT_EQ(poll(s, 0, 0).status, 404);
    EXPECT_EQ(post_frame(s, "late").status, 404);
    EXPECT_TRUE(front_.chat(0).frames.empty());
}

TEST_F(BeastFallback, AnAttachedClientKeepsTheSessionAndItsDepartureStartsTheCountdown) {
    ASSERT_TRUE(start({{"fallback_session_idle_ms", 300}}));
    auto s = create("a");
    {
        SseClient sse(host(), port());
        ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.error();
        std::this_thread::sleep_for(800ms);
        EXPECT_EQ(front_.chat(0).close_calls, 0) << "closed with a client attached";
        ASSERT_EQ(post_frame(s, "alive").status, 202);
        EXPECT_TRUE(sse.next(5s));
    }  // dropped
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).close_calls > 0; }, 5s));
    EXPECT_EQ(closed_calls(0), 1);

    // Long-polling keeps it alive as well.
    auto p = create("b");
    for (int i = 0; i < 4; ++i) EXPECT_EQ(poll(p, 0, 250).status, 200);  // ~1 s, never idle 300 ms
    EXPECT_EQ(front_.chat(1).close_calls, 0);
    EXPECT_EQ(closed_calls(1), 1);
}

TEST_F(BeastFallback, AnotherTokenCannotUseTheSession) {
    ASSERT_TRUE(start());
    auto s = create("owner");
    net::Headers other{{"Authorization", "Bearer intruder"}};
    net::Headers none;
    for (const auto *auth : {&other, &none}) {
        HttpClient http(host(), port());
        auto r = http.request("POST", s.send, "hijack", *auth);
        EXPECT_EQ(r.status, 404) << r.body;
        EXPECT_NE(r.body.find("not_found"), std::string::npos);
        EXPECT_EQ(poll(s, 0, 0, auth).status, 404);
        EXPECT_EQ(http.request("DELETE", "/v1/chat/sessions/" + s.id, "", *auth).status, 404);
        SseClient sse(host(), port());
        EXPECT_FALSE(sse.open(s.events, *auth));
        EXPECT_EQ(sse.status(), 404);
    }
    EXPECT_TRUE(front_.chat(0).frames.empty());
    EXPECT_EQ(front_.chat(0).close_calls, 0);
    // The owner still can.
    EXPECT_EQ(post_frame(s, "mine").status, 202);
    // A session made without a token is bound to having none.
    auto anonymous = create("");
    EXPECT_EQ(poll(anonymous, 0, 0).status, 200);
    EXPECT_EQ(poll(anonymous, 0, 0, &other).status, 404);
}

TEST_F(BeastFallback, TheEnginesCloseReachesSseAndPoll) {
    ASSERT_TRUE(start());
    auto s = create("a");
    SseClient sse(host(), port());
    ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.error();
    ASSERT_EQ(post_frame(s, "before").status, 202);
    ASSERT_EQ(post_frame(s, "close:4001:auth timeout").status, 202);
    auto before = sse.next(5s);
    ASSERT_TRUE(before);
    EXPECT_EQ(before->data, "echo:before");
    auto closed = sse.next(5s);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->event, "close");
    json info = json::parse(closed->data);
    EXPECT_EQ(info["code"], 4001);
    EXPECT_EQ(info["reason"], "auth timeout");
    EXPECT_FALSE(sse.next(2s));
    EXPECT_TRUE(sse.ended_cleanly());
    EXPECT_EQ(front_.chat(0).send_after_close, -1);
    EXPECT_EQ(closed_calls(0), 1);

    // What is left stays readable, with how it ended; no more frames are taken.
    json rest = events_of(poll(s, 0, 5000));
    ASSERT_EQ(rest["events"].size(), 1u);
    EXPECT_EQ(rest["closed"]["code"], 4001);
    auto refused = post_frame(s, "after");
    EXPECT_EQ(refused.status, 410);
    EXPECT_NE(refused.body.find("session_closed"), std::string::npos);
    EXPECT_EQ(front_.chat(0).frames.size(), 2u);
}

TEST_F(BeastFallback, DeleteEndsTheSession) {
    ASSERT_TRUE(start());
    auto s = create("a");
    HttpClient http(host(), port());
    EXPECT_EQ(http.request("DELETE", "/v1/chat/sessions/" + s.id, "", s.auth).status, 204);
    EXPECT_EQ(closed_calls(0), 1);
    EXPECT_EQ(poll(s, 0, 0).status, 404);
}

TEST_F(BeastFallback, DeliveredFramesBeyondTheBufferAreDroppedAndReportedAsAGap) {
    ASSERT_TRUE(start({{"fallback_buffer_bytes", 64}}));
    auto s = create("a");
    for (int i = 0; i < 10; ++i) ASSERT_EQ(post_frame(s, "frame-" + std::to_string(i)).status, 202);
    // Not yet delivered: all kept, whatever the buffer size.
    json all = events_of(poll(s, 0, 0));
    ASSERT_EQ(all["events"].size(), 10u);
    EXPECT_FALSE(all.contains("gap"));
    // Acknowledged (after=10): only the newest that fit in 64 bytes stay for replay.
    events_of(poll(s, 10, 0));
    json replay = events_of(poll(s, 0, 0));
    ASSERT_TRUE(replay.contains("gap")) << replay.dump();
    EXPECT_EQ(replay["gap"]["from"], 1);
    uint64_t to = replay["gap"]["to"];
    ASSERT_FALSE(replay["events"].empty());
    EXPECT_EQ(replay["events"][0]["id"], to + 1);
    EXPECT_EQ(replay["events"].back()["id"], 10);
    SseClient sse(host(), port());
    ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.error();
    auto gap = sse.next(5s);
    ASSERT_TRUE(gap);
    EXPECT_EQ(gap->event, "gap");
    EXPECT_EQ(json::parse(gap->data)["to"], to);
    auto next = sse.next(5s);
    ASSERT_TRUE(next);
    EXPECT_EQ(next->id, std::to_string(to + 1));
}

TEST_F(BeastFallback, SseIsPingedWithComments) {
    ASSERT_TRUE(start({{"fallback_ping_interval_ms", 100}}));
    auto s = create("a");
    SseClient sse(host(), port());
    ASSERT_TRUE(sse.open(s.events, s.auth)) << sse.error();
    EXPECT_FALSE(sse.next(700ms));
    EXPECT_GE(sse.comments(), 3);
    EXPECT_FALSE(sse.ended());
}

TEST_F(BeastFallback, UndeliveredFramesSignalDrainedAndAreBoundedLikeTheWebSocketQueue) {
    ASSERT_TRUE(start({{"queue_high_water", 4096}, {"queue_low_water", 1024}, {"write_queue_limit", 65536}}));
    auto s = create("a");
    ASSERT_EQ(post_frame(s, "fill:512:4096").status, 202);
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).fill_done; }));
    auto chat = front_.chat(0);
    EXPECT_GT(chat.fill_peak, 4096);
    json got = events_of(poll(s, 0, 0));
    uint64_t last = got["events"].back()["id"];
    EXPECT_EQ(front_.chat(0).drained_calls, 0) << "handed out is not yet delivered";
    events_of(poll(s, last, 0));  // acknowledges them
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).drained_calls == 1; }));
    EXPECT_EQ(front_.chat(0).drained_bytes, 0);

    // With nobody reading, the hard limit closes the session with 1008.
    ASSERT_EQ(post_frame(s, "flood:4096").status, 202);
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).flood_refused; }));
    EXPECT_EQ(closed_calls(0), 1);
    json rest = events_of(poll(s, last + 1, 0));
    EXPECT_EQ(rest["closed"]["code"], 1008);
    EXPECT_EQ(rest["closed"]["reason"], "send queue full");
}

TEST_F(BeastFallback, SessionsCountAgainstConnectionsPerIp) {
    ASSERT_TRUE(start({{"max_connections_per_ip", 3}}));
    HttpClient http(host(), port());  // one connection
    auto one = http.request("POST", "/v1/chat/sessions", "", {});
    ASSERT_EQ(one.status, 201);
    ASSERT_EQ(http.request("POST", "/v1/chat/sessions", "", {}).status, 201);
    auto third = http.request("POST", "/v1/chat/sessions", "", {});
    EXPECT_EQ(third.status, 503);
    EXPECT_NE(third.body.find("too_many_connections"), std::string::npos) << third.body;
    EXPECT_EQ(front_.chat_count(), 2u);
    // Ending one frees its place.
    std::string id = json::parse(one.body)["session"];
    EXPECT_EQ(http.request("DELETE", "/v1/chat/sessions/" + id, "", {}).status, 204);
    EXPECT_EQ(http.request("POST", "/v1/chat/sessions", "", {}).status, 201);
}

TEST_F(BeastFallback, StopEndsStreamsPollsAndSessions) {
    ASSERT_TRUE(start({{"ws_handshake_timeout_ms", 1000}}));
    auto streamed = create("a");
    auto polled = create("b");
    auto idle = create("c");
    SseClient sse(host(), port());
    ASSERT_TRUE(sse.open(streamed.events, streamed.auth)) << sse.error();
    auto waiting = std::async(std::launch::async, [&] { return poll(polled, 0, 20000); });
    std::this_thread::sleep_for(200ms);

    auto t0 = Clock::now();
    auto stopping = std::async(std::launch::async, [&] {
        stop();
        front_.mark();
    });
    auto closed = sse.next(5s);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->event, "close");
    EXPECT_EQ(json::parse(closed->data)["code"], 1001);
    json answered = events_of(waiting.get());
    EXPECT_EQ(answered["closed"]["code"], 1001);
    stopping.get();
    EXPECT_LT(Clock::now() - t0, 4s);
    harness_.reset();
    EXPECT_EQ(front_.calls_after_mark(), 0);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(front_.chat(i).close_calls, 1) << i;
}

}  // namespace
}  // namespace consilium::test
