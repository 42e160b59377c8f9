// The Beast transport's HTTP side: passthrough to the front API, limits, errors in the API shape,
// timeouts, options, connection limits, stop_accepting and stop.
#include "fake_front.hpp"

#include "plugin/instance.hpp"

#include <nlohmann/json.hpp>

#include <future>

namespace consilium::test {
namespace {

using json = nlohmann::json;
using net::HttpClient;
using net::HttpResponse;
using namespace std::chrono_literals;

json body_of(const HttpResponse &r) {
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON";
    return j;
}

void expect_api_error(const HttpResponse &r, int status, const std::string &code) {
    EXPECT_EQ(r.status, status) << r.error;
    EXPECT_EQ(r.header("content-type"), "application/json");
    json j = body_of(r);
    ASSERT_TRUE(j.contains("error")) << r.body;
    EXPECT_EQ(j["error"]["code"], code);
    EXPECT_TRUE(j["error"]["message"].is_string());
}

using BeastHttp = TransportTest;

TEST_F(BeastHttp, StartReturnsTheBoundAddress) {
    ASSERT_TRUE(start());
    EXPECT_EQ(host(), "127.0.0.1");
    EXPECT_GT(port(), 0);
}

TEST_F(BeastHttp, PassesMethodTargetHeadersBodyAndPeerToTheFront) {
    ASSERT_TRUE(start());
    HttpClient http(host(), port());
    auto r = http.request("POST", "/v1/things?x=1&y=%20", R"({"a":1})",
                          {{"Content-Type", "application/json"}, {"X-Test", "abc"},
                           {"Authorization", "Bearer tok"}});
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("x-fake"), "yes");
    EXPECT_EQ(r.header("cache-control"), "no-store");
    json j = body_of(r);
    EXPECT_EQ(j["method"], "POST");
    EXPECT_EQ(j["target"], "/v1/things?x=1&y=%20");
    EXPECT_EQ(j["body"], R"({"a":1})");
    EXPECT_EQ(j["headers"]["x-test"], "abc");
    EXPECT_EQ(j["headers"]["authorization"], "Bearer tok");
    EXPECT_EQ(j["headers"]["content-type"], "application/json");
    std::string peer = j["peer"];
    EXPECT_EQ(peer.rfind("127.0.0.1:", 0), 0u) << peer;
    EXPECT_EQ(front_.http_calls().size(), 1u);
}

TEST_F(BeastHttp, KeepsConnectionsAliveAndAnswersFromOtherThreads) {
    ASSERT_TRUE(start());
    HttpClient http(host(), port());
    std::string first_peer;
    for (int i = 0; i < 5; ++i) {
        auto r = http.get(i % 2 ? "/async/" + std::to_string(i) : "/v1/x/" + std::to_string(i));
        ASSERT_EQ(r.status, 200) << r.error;
        std::string peer = body_of(r)["peer"];
        if (i == 0) first_peer = peer;
        EXPECT_EQ(peer, first_peer) << "a new connection for request " << i;
    }
}

TEST_F(BeastHttp, EngineStatusHeadAndCacheControl) {
    ASSERT_TRUE(start());
    HttpClient http(host(), port());
    EXPECT_EQ(http.get("/status/418").status, 418);
    auto cached = http.get("/cached");
    EXPECT_EQ(cached.header("cache-control"), "max-age=60");

    auto get = http.get("/v1/head-me");
    auto head = http.request("HEAD", "/v1/head-me");
    ASSERT_EQ(head.status, 200) << head.error;
    EXPECT_TRUE(head.body.empty());
    EXPECT_EQ(head.header("content-length"), std::to_string(get.body.size() + 1))
        << "the fake's echo says HEAD instead of GET";
}

TEST_F(BeastHttp, HeadersTheEngineMayNotSetAreDropped) {
    ASSERT_TRUE(start());
    HttpClient http(host(), port());
    auto r = http.get("/bad-header");
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.header("x-evil"), "");
    EXPECT_EQ(r.header("injected"), "");
    EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
    // The connection is still usable.
    EXPECT_EQ(http.get("/v1/after").status, 200);
}

TEST_F(BeastHttp, BodyOverTheLimitIs413) {
    ASSERT_TRUE(start({{"body_limit", 1024}}));
    HttpClient http(host(), port());
    auto ok = http.request("POST", "/v1/small", std::string(1024, 'a'));
    EXPECT_EQ(ok.status, 200) << ok.error;
    // Larger than the socket buffers, so the server answers before it read the body.
    auto r = http.request("POST", "/v1/big", std::string(4 << 20, 'b'));
    expect_api_error(r, 413, "body_too_large");
    EXPECT_EQ(front_.http_calls().size(), 1u) << "the over-limit request reached the engine";
    EXPECT_EQ(http.get("/v1/next").status, 200);
}

TEST_F(BeastHttp, HeaderOverTheLimitIs431) {
    ASSERT_TRUE(start({{"header_limit", 2048}}));
    HttpClient http(host(), port());
    auto r = http.get("/v1/x", {{"X-Big", std::string(4000, 'h')}});
    expect_api_error(r, 431, "headers_too_large");
    EXPECT_TRUE(front_.http_calls().empty());
    EXPECT_EQ(http.get("/v1/x", {{"X-Small", std::string(500, 'h')}}).status, 200);
}

TEST_F(BeastHttp, MalformedRequestIs400) {
    ASSERT_TRUE(start());
    std::string reply = net::raw_exchange(host(), port(),
                                          "GET /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: zz\r\n\r\n");
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
    EXPECT_NE(reply.find("\"bad_request\""), std::string::npos) << reply;
    EXPECT_NE(reply.find("application/json"), std::string::npos) << reply;
    EXPECT_TRUE(front_.http_calls().empty());
}

TEST_F(BeastHttp, ExpectContinueGetsAnInterimResponse) {
    ASSERT_TRUE(start());
    std::string reply = net::raw_exchange(
        host(), port(),
        "POST /v1/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: close\r\n"
        "Content-Length: 5\r\n\r\nhello");
    EXPECT_EQ(reply.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 0), 0u) << reply;
    ASSERT_EQ(front_.http_calls().size(), 1u);
    EXPECT_EQ(front_.http_calls()[0].body, "hello");
}

TEST_F(BeastHttp, AnIncompleteRequestTimesOut) {
    ASSERT_TRUE(start({{"read_timeout_ms", 200}}));
    auto t0 = std::chrono::steady_clock::now();
    std::string reply = net::raw_exchange(host(), port(), "GET /v1/x HTTP/1.1\r\nHost: a\r\n", 5s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "the server kept the connection open";
    EXPECT_TRUE(reply.empty()) << reply;
}

TEST_F(BeastHttp, DrainingHostClosesKeptAliveConnections) {
    ASSERT_TRUE(start());
    HttpClient http(host(), port());
    front_.accepting = false;
    auto r = http.get("/v1/x");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("connection"), "close");
}

TEST_F(BeastHttp, UnknownOptionsAreRefusedWithTheirPath) {
    try {
        PluginHarness h("transport", "beast", R"({"listen":"127.0.0.1:0","bogus":1})", dir_.str(),
                        front_.api(), front_.ctx());
        FAIL() << "an unknown key was accepted";
    } catch (const PluginError &e) {
        EXPECT_NE(std::string(e.what()).find("transport.beast.bogus"), std::string::npos) << e.what();
    }
    for (const char *bad : {R"({"listen":"nowhere"})", R"({"listen":"example.com:80"})",
                            R"({"listen":"127.0.0.1:70000"})", R"({"threads":0})",
                            R"({"static_dir":"/definitely/not/here"})"}) {
        EXPECT_THROW(PluginHarness("transport", "beast", bad, dir_.str(), front_.api(), front_.ctx()),
                     PluginError)
            << bad;
    }
}

TEST_F(BeastHttp, PortInUseIsAnError) {
    ASSERT_TRUE(start());
    PluginHarness other("transport", "beast", json{{"listen", "127.0.0.1:" + std::to_string(port())}}.dump(),
                        dir_.str(), front_.api(), front_.ctx());
    auto *vt = other.instance->vtable<cs_transport_vtable>();
    char address[64];
    cs_error err{};
    EXPECT_EQ(vt->start(other.instance->instance(), address, sizeof address, &err), CS_E_IO);
    EXPECT_NE(std::string(err.message).find("cannot listen"), std::string::npos) << err.message;
}

TEST_F(BeastHttp, OverMaxConnectionsNewOnesGet503) {
    ASSERT_TRUE(start({{"max_connections", 2}}));
    net::WsClient a, b;
    ASSERT_TRUE(a.connect(host(), port())) << a.error();
    ASSERT_TRUE(b.connect(host(), port())) << b.error();
    HttpClient http(host(), port());
    auto r = http.get("/v1/x");
    expect_api_error(r, 503, "overloaded");
    net::WsClient c;
    EXPECT_FALSE(c.connect(host(), port()));
    EXPECT_EQ(c.handshake_status(), 503);

    ASSERT_TRUE(a.close());
    // The slot frees once the server side has finished with the connection.
    bool ok = false;
    for (int i = 0; i < 50 && !ok; ++i) {
        ok = http.get("/v1/x").status == 200;
        if (!ok) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(ok);
}

TEST_F(BeastHttp, OverMaxConnectionsPerIpNewOnesFromThatAddressGet503) {
    ASSERT_TRUE(start({{"max_connections_per_ip", 3}}));
    // Every kind of connection counts: a kept-alive HTTP connection and WebSockets.
    HttpClient kept(host(), port());
    ASSERT_EQ(kept.get("/v1/x").status, 200);
    net::WsClient a, b;
    ASSERT_TRUE(a.connect(host(), port())) << a.error();
    ASSERT_TRUE(b.connect(host(), port())) << b.error();

    HttpClient fourth(host(), port());
    auto r = fourth.get("/v1/x");
    expect_api_error(r, 503, "too_many_connections");
    EXPECT_EQ(r.header("connection"), "close");
    net::WsClient c;
    EXPECT_FALSE(c.connect(host(), port()));
    EXPECT_EQ(c.handshake_status(), 503);
    EXPECT_EQ(front_.http_calls().size(), 1u) << "a refused request reached the engine";
    EXPECT_EQ(front_.chat_count(), 2u);

    // The kept-alive connection still works; closing one lets a new one in.
    EXPECT_EQ(kept.get("/v1/y").status, 200);
    ASSERT_TRUE(a.close());
    bool ok = false;
    for (int i = 0; i < 50 && !ok; ++i) {
        ok = fourth.get("/v1/x").status == 200;
        if (!ok) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(ok);
}

TEST_F(BeastHttp, OptionsOfTheQueueMarksAreChecked) {
    for (const char *bad : {R"({"queue_low_water":262144})", R"({"queue_high_water":9000000})",
                            R"({"max_connections_per_ip":0})", R"({"ws_pong_timeout_ms":0})"}) {
        try {
            PluginHarness h("transport", "beast", bad, dir_.str(), front_.api(), front_.ctx());
            ADD_FAILURE() << "accepted " << bad;
        } catch (const PluginError &e) {
            std::string key = json::parse(bad).begin().key();
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(PluginHarness("transport", "beast", R"({"ws_idle_timeout_ms":1000})", dir_.str(),
                               front_.api(), front_.ctx()),
                 PluginError)
        << "replaced by ws_ping_interval_ms and ws_pong_timeout_ms";
}

TEST_F(BeastHttp, StopAcceptingRefusesNewConnectionsButServesOpenOnes) {
    ASSERT_TRUE(start());
    HttpClient open_http(host(), port());
    ASSERT_EQ(open_http.get("/v1/before").status, 200);
    net::WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();

    stop_accepting();
    HttpClient fresh(host(), port(), 2s);
    auto refused = fresh.get("/v1/after");
    EXPECT_EQ(refused.status, 0);
    EXPECT_FALSE(refused.error.empty());

    EXPECT_EQ(open_http.get("/v1/still").status, 200);
    ASSERT_TRUE(ws.send_text("hi"));
    EXPECT_EQ(ws.receive_text(5s), "echo:hi");
    stop_accepting();  // idempotent
}

TEST_F(BeastHttp, StopWhileTheEngineStillOwesAResponse) {
    ASSERT_TRUE(start({{"ws_handshake_timeout_ms", 300}}));
    auto pending = std::async(std::launch::async, [&] {
        HttpClient http(host(), port(), 5s);
        return http.get("/hold");
    });
    for (int i = 0; i < 100 && front_.held_count() == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(front_.held_count(), 1u);

    stop();  // waits a little for the response, then gives up on it
    front_.release_held();  // the engine answers late: dropped without harm
    auto r = pending.get();
    EXPECT_EQ(r.status, 0);
    stop();  // idempotent
    harness_.reset();
}

TEST_F(BeastHttp, LateResponseDuringStopIsStillWritten) {
    ASSERT_TRUE(start({{"ws_handshake_timeout_ms", 3000}}));
    auto pending = std::async(std::launch::async, [&] {
        HttpClient http(host(), port(), 5s);
        return http.get("/hold");
    });
    for (int i = 0; i < 100 && front_.held_count() == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(front_.held_count(), 1u);
    auto stopping = std::async(std::launch::async, [&] { stop(); });
    std::this_thread::sleep_for(100ms);
    front_.release_held();
    auto r = pending.get();
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.header("connection"), "close");
    stopping.get();
}

}  // namespace
}  // namespace consilium::test
