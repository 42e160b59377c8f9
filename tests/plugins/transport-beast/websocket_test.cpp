// The Beast transport's chat channel (WebSocket GET /v1/chat): what reaches chat_open and
// chat_frame, the sink in both directions, every way a connection ends calling chat_close exactly
// once, limits (message size, write queue), the backpressure signal (chat_drained), keep-alive
// pings, stop() and many connections at once.
#include "fake_front.hpp"

#include <future>

namespace consilium::test {
namespace {

using net::WsClient;
using namespace std::chrono_literals;

class BeastWebSocket : public TransportTest {
protected:
    // Waits until chat i has been closed, then a little more for a second (wrong) call; returns
    // how many times it was closed.
    int closed_calls(size_t i) {
        front_.wait_for([&] { return front_.chat(i).close_calls > 0; });
        std::this_thread::sleep_for(50ms);
        return front_.chat(i).close_calls;
    }
};

TEST_F(BeastWebSocket, BearerOriginAndPeerReachChatOpen) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port(), "/v1/chat",
                           {{"Authorization", "Bearer tok-123"}, {"Origin", "https://app.example"}}))
        << ws.error();
    EXPECT_EQ(ws.handshake_status(), 101);
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat_count() == 1; }));
    auto chat = front_.chat(0);
    EXPECT_EQ(chat.bearer, "tok-123");
    EXPECT_EQ(chat.origin, "https://app.example");
    EXPECT_EQ(chat.transport, "websocket");
    EXPECT_EQ(chat.peer.rfind("127.0.0.1:", 0), 0u) << chat.peer;
    EXPECT_TRUE(front_.http_calls().empty()) << "the upgrade went to http()";

    WsClient anonymous;
    ASSERT_TRUE(anonymous.connect(host(), port(), "/v1/chat?x=1", {{"Authorization", "Basic abc"}}));
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat_count() == 2; }));
    EXPECT_EQ(front_.chat(1).bearer, "");
    EXPECT_EQ(front_.chat(1).origin, "");
}

TEST_F(BeastWebSocket, UpgradesElsewhereGoToTheEngine) {
    ASSERT_TRUE(start());
    WsClient ws;
    EXPECT_FALSE(ws.connect(host(), port(), "/v1/other"));
    EXPECT_EQ(ws.handshake_status(), 200);  // the fake answers every HTTP request with 200
    EXPECT_EQ(front_.chat_count(), 0u);
    EXPECT_EQ(front_.http_calls().size(), 1u);
}

TEST_F(BeastWebSocket, FramesReachTheEngineInOrderAndEchoesComeBack) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    constexpr int n = 200;
    for (int i = 0; i < n; ++i) ASSERT_TRUE(ws.send_text("m" + std::to_string(i)));
    for (int i = 0; i < n; ++i) {
        auto got = ws.receive_text(5s);
        ASSERT_TRUE(got) << "frame " << i;
        EXPECT_EQ(*got, "echo:m" + std::to_string(i));
    }
    auto chat = front_.chat(0);
    ASSERT_EQ(chat.frames.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(chat.frames[i], "m" + std::to_string(i));
}

TEST_F(BeastWebSocket, BinaryFramesPassTheirBytes) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    std::string bytes("\x00\x01bin\x7f", 6);
    ASSERT_TRUE(ws.send_binary(bytes));
    EXPECT_EQ(ws.receive_text(5s), "echo:" + bytes);
    // Not UTF-8: the bytes still reach the engine as they are (its echo, sent as a text frame,
    // would be invalid, so it is not read here).
    std::string raw("\xff\xfe\x00", 3);
    ASSERT_TRUE(ws.send_binary(raw));
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).frames.size() == 2; }));
    EXPECT_EQ(front_.chat(0).frames.at(0), bytes);
    EXPECT_EQ(front_.chat(0).frames.at(1), raw);
}

TEST_F(BeastWebSocket, SinkSendFromOtherThreadsAndFromChatOpen) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port(), "/v1/chat", {{"Authorization", "Bearer greet"}}));
    EXPECT_EQ(ws.receive_text(5s), "ready");
    ASSERT_TRUE(ws.send_text("async:from-elsewhere"));
    EXPECT_EQ(ws.receive_text(5s), "from-elsewhere");
}

TEST_F(BeastWebSocket, SinkCloseReachesTheClientAndLaterSendsAreRefused) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("before"));
    ASSERT_TRUE(ws.send_text("close:4000:x"));
    EXPECT_EQ(ws.receive_text(5s), "echo:before");
    auto next = ws.receive_text(5s);
    EXPECT_FALSE(next) << "got " << *next;
    ASSERT_TRUE(ws.closed());
    EXPECT_EQ(ws.close_info()->code, 4000);
    EXPECT_EQ(ws.close_info()->reason, "x");
    EXPECT_EQ(front_.chat(0).send_after_close, -1);
    EXPECT_EQ(closed_calls(0), 1);
}

TEST_F(BeastWebSocket, InvalidCloseCodesFromTheEngineBecome1000) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("close:1005:" + std::string(300, 'r')));
    ASSERT_TRUE(ws.wait_closed(5s));
    EXPECT_EQ(ws.close_info()->code, 1000);
    EXPECT_EQ(ws.close_info()->reason.size(), 123u);
    EXPECT_EQ(closed_calls(0), 1);
}

TEST_F(BeastWebSocket, ClientCloseCallsChatCloseOnce) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("hello"));
    EXPECT_EQ(ws.receive_text(5s), "echo:hello");
    EXPECT_TRUE(ws.close(1000, "bye"));
    EXPECT_EQ(ws.close_info()->code, 1000);
    EXPECT_EQ(closed_calls(0), 1);
}

TEST_F(BeastWebSocket, ClientDropCallsChatCloseOnce) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat_count() == 1; }));
    ws.drop();
    EXPECT_EQ(closed_calls(0), 1);
}

TEST_F(BeastWebSocket, MessageOverTheLimitCloses1009) {
    ASSERT_TRUE(start({{"ws_max_message", 1024}}));
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text(std::string(1024, 'a')));
    EXPECT_EQ(ws.receive_text(5s), "echo:" + std::string(1024, 'a'));
    ws.send_text(std::string(1025, 'b'));
    ASSERT_TRUE(ws.wait_closed(5s));
    EXPECT_EQ(ws.close_info()->code, 1009);
    EXPECT_EQ(front_.chat(0).frames.size(), 1u);
    EXPECT_EQ(closed_calls(0), 1);
}

TEST_F(BeastWebSocket, WriteQueueOverflowCloses1008) {
    ASSERT_TRUE(start({{"write_queue_limit", 65536}, {"queue_high_water", 32768}, {"queue_low_water", 8192}}));
    net::WsOptions small;
    small.receive_buffer_bytes = 4096;
    WsClient ws(small);
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("flood:16384"));
    // The client reads nothing until the engine's sends are refused.
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).flood_refused; }, 30s));
    auto chat = front_.chat(0);
    EXPECT_GT(chat.flood_sent, 3);

    int received = 0;
    while (auto frame = ws.receive_text(5s)) {
        EXPECT_EQ(frame->size(), 16384u);
        ++received;
    }
    ASSERT_TRUE(ws.closed());
    EXPECT_EQ(ws.close_info()->code, 1008);
    EXPECT_EQ(ws.close_info()->reason, "send queue full");
    EXPECT_GT(received, 0);
    EXPECT_LE(received, chat.flood_sent);
    EXPECT_EQ(closed_calls(0), 1);
}

TEST_F(BeastWebSocket, AQueueOverHighWaterSignalsDrainedOnceBelowLowWater) {
    // The queue is filled to 12 MiB while the kernel's send buffer on loopback absorbs at most
    // tcp_wmem's maximum (4 MiB on Debian): the queue stays far over low water until the client
    // reads.
    ASSERT_TRUE(start({{"queue_high_water", 1 << 20}, {"queue_low_water", 65536}, {"write_queue_limit", 32 << 20}}));
    net::WsOptions small;
    small.receive_buffer_bytes = 4096;
    WsClient ws(small);
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("fill:16384:12582912"));
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).fill_done; }, 30s));
    auto chat = front_.chat(0);
    EXPECT_GT(chat.fill_peak, 1 << 20);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(front_.chat(0).drained_calls, 0) << "drained while the client read nothing";

    // Reading again drains the queue: exactly one signal for the one crossing.
    for (int64_t i = 0; i < chat.fill_sent; ++i) {
        auto frame = ws.receive_text(5s);
        ASSERT_TRUE(frame) << "frame " << i << " of " << chat.fill_sent;
        EXPECT_EQ(frame->size(), 16384u);
    }
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).drained_calls > 0; }));
    std::this_thread::sleep_for(100ms);
    chat = front_.chat(0);
    EXPECT_EQ(chat.drained_calls, 1);
    EXPECT_GE(chat.drained_bytes, 0);
    EXPECT_LT(chat.drained_bytes, 65536);

    // Traffic under high water signals nothing; a second crossing signals again.
    ASSERT_TRUE(ws.send_text("small"));
    EXPECT_EQ(ws.receive_text(5s), "echo:small");
    EXPECT_EQ(front_.chat(0).drained_calls, 1);
    ASSERT_TRUE(ws.send_text("fill:16384:12582912"));
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).fill_done; }, 30s));
    while (ws.receive_text(500ms)) {
    }
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).drained_calls == 2; }));
    EXPECT_TRUE(ws.is_open());
}

TEST_F(BeastWebSocket, DrainedIsNotCalledOnFrontsWithoutIt) {
    // An older front (struct_size before chat_drained): the transport must not read the field.
    auto &api = const_cast<cs_front_api &>(*front_.api());
    api.struct_size = static_cast<uint32_t>(offsetof(cs_front_api, chat_drained));
    ASSERT_TRUE(start({{"queue_high_water", 65536}, {"queue_low_water", 16384}}));
    net::WsOptions small;
    small.receive_buffer_bytes = 4096;
    WsClient ws(small);
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("fill:8192:65536"));
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).fill_done; }, 30s));
    while (ws.receive_text(500ms)) {
    }
    EXPECT_EQ(front_.chat(0).drained_calls, 0);
    api.struct_size = sizeof(cs_front_api);
}

TEST_F(BeastWebSocket, ASilentClientThatDoesNotAnswerPingsIsClosed) {
    ASSERT_TRUE(start({{"ws_ping_interval_ms", 200}, {"ws_pong_timeout_ms", 300}}));
    WsClient ws;  // never reads: Beast answers pings only inside a read
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).close_calls == 1; }, 10s));
    auto took = std::chrono::steady_clock::now() - t0;
    // Pinged after 200 ms of silence, closed 300 ms later; cut within a second after that.
    EXPECT_GE(took, 450ms);
    EXPECT_LT(took, 3s);
    // What the client finds once it reads: the ping, then the close frame (unless the cut came
    // first).
    ASSERT_TRUE(ws.wait_closed(5s));
    int code = ws.close_info()->code;
    EXPECT_TRUE(code == 1008 || code == 1006) << code;
    if (code == 1008) {
        EXPECT_EQ(ws.close_info()->reason, "ping timeout");
    }
    EXPECT_EQ(closed_calls(0), 1);
}

TEST_F(BeastWebSocket, AClientThatAnswersPingsStaysOpen) {
    ASSERT_TRUE(start({{"ws_ping_interval_ms", 100}, {"ws_pong_timeout_ms", 150}}));
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    // Reading (nothing arrives) answers the server's pings, several intervals long.
    EXPECT_FALSE(ws.receive_text(1500ms));
    EXPECT_TRUE(ws.is_open());
    ASSERT_TRUE(ws.send_text("still here"));
    EXPECT_EQ(ws.receive_text(5s), "echo:still here");
    EXPECT_EQ(front_.chat(0).close_calls, 0);
}

TEST_F(BeastWebSocket, FramesCountAsActivityAndPingsCanBeTurnedOff) {
    {
        ASSERT_TRUE(start({{"ws_ping_interval_ms", 300}, {"ws_pong_timeout_ms", 100},
                           {"ws_handshake_timeout_ms", 200}}));
        WsClient ws;  // never reads, but talks more often than the interval
        ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
        for (int i = 0; i < 8; ++i) {
            std::this_thread::sleep_for(100ms);
            ASSERT_TRUE(ws.send_text("tick"));
        }
        ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).frames.size() == 8; }));
        EXPECT_EQ(front_.chat(0).close_calls, 0);
        harness_.reset();
    }
    ASSERT_TRUE(start({{"ws_ping_interval_ms", 0}, {"ws_pong_timeout_ms", 1}}));
    WsClient quiet;
    ASSERT_TRUE(quiet.connect(host(), port())) << quiet.error();
    std::this_thread::sleep_for(600ms);
    ASSERT_TRUE(quiet.send_text("hi"));
    EXPECT_EQ(quiet.receive_text(5s), "echo:hi");
    EXPECT_EQ(front_.chat(1).close_calls, 0);
}

TEST_F(BeastWebSocket, StopClosesWithGoingAway) {
    ASSERT_TRUE(start());
    WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("hi"));
    EXPECT_EQ(ws.receive_text(5s), "echo:hi");

    auto stopping = std::async(std::launch::async, [&] {
        stop();
        front_.mark();  // from here on the front must hear nothing
    });
    ASSERT_TRUE(ws.wait_closed(5s));
    EXPECT_EQ(ws.close_info()->code, 1001);
    EXPECT_EQ(ws.close_info()->reason, "going away");
    stopping.get();
    EXPECT_EQ(front_.chat(0).close_calls, 1);
    stop();  // twice is fine
    harness_.reset();
    EXPECT_EQ(front_.calls_after_mark(), 0);
    EXPECT_EQ(front_.chat(0).close_calls, 1);
}

TEST_F(BeastWebSocket, StopWithClientsThatDoNotAnswerAndEnginesThatKeepSending) {
    ASSERT_TRUE(start({{"ws_handshake_timeout_ms", 300}, {"write_queue_limit", 1 << 20}}));
    net::WsOptions small;
    small.receive_buffer_bytes = 4096;
    std::vector<std::unique_ptr<WsClient>> clients;
    for (int i = 0; i < 8; ++i) {
        clients.push_back(std::make_unique<WsClient>(small));
        ASSERT_TRUE(clients.back()->connect(host(), port())) << clients.back()->error();
        // Small frames: the floods run for a while, racing with stop().
        ASSERT_TRUE(clients.back()->send_text("flood:64"));
    }
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat_count() == 8; }));
    auto t0 = std::chrono::steady_clock::now();
    stop();
    front_.mark();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(front_.total_chat_close_calls(), 8);
    harness_.reset();
    EXPECT_EQ(front_.calls_after_mark(), 0);
}

TEST_F(BeastWebSocket, ConnectionsDuringStopAreClosedToo) {
    ASSERT_TRUE(start({{"ws_handshake_timeout_ms", 1000}}));
    std::atomic<bool> done{false};
    std::thread churn([&] {
        while (!done) {
            WsClient ws;
            if (ws.connect(host(), port(), "/v1/chat", {}, 1s)) {
                ws.send_text("x", 1s);
                ws.receive_text(50ms);
            }
        }
    });
    std::this_thread::sleep_for(200ms);
    stop();
    front_.mark();
    done = true;
    churn.join();
    harness_.reset();
    EXPECT_EQ(front_.calls_after_mark(), 0);
    for (size_t i = 0; i < front_.chat_count(); ++i) EXPECT_EQ(front_.chat(i).close_calls, 1) << i;
}

TEST_F(BeastWebSocket, ManyConcurrentConnections) {
    ASSERT_TRUE(start({{"threads", 2}}));
    constexpr int n = 200;
    std::vector<std::unique_ptr<WsClient>> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<WsClient>());
        ASSERT_TRUE(clients.back()->connect(host(), port())) << i << ": " << clients.back()->error();
    }
    for (int i = 0; i < n; ++i) ASSERT_TRUE(clients[i]->send_text("c" + std::to_string(i)));
    for (int i = 0; i < n; ++i) EXPECT_EQ(clients[i]->receive_text(5s), "echo:c" + std::to_string(i));
    ASSERT_EQ(front_.chat_count(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_TRUE(clients[i]->close()) << i;
    ASSERT_TRUE(front_.wait_for([&] { return front_.total_chat_close_calls() == n; }));
    for (int i = 0; i < n; ++i) EXPECT_EQ(front_.chat(i).close_calls, 1);
}

TEST_F(BeastWebSocket, ManyConnectionsFromManyThreads) {
    ASSERT_TRUE(start({{"threads", 4}}));
    constexpr int threads = 8, per_thread = 25;
    std::atomic<int> ok{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                WsClient ws;
                if (!ws.connect(host(), port())) continue;
                std::string msg = "t" + std::to_string(t) + "-" + std::to_string(i);
                if (ws.send_text(msg) && ws.receive_text(5s) == "echo:" + msg && ws.close()) ++ok;
            }
        });
    }
    for (auto &t : pool) t.join();
    EXPECT_EQ(ok.load(), threads * per_thread);
    ASSERT_TRUE(front_.wait_for([&] { return front_.total_chat_close_calls() == threads * per_thread; }));
}

}  // namespace
}  // namespace consilium::test
