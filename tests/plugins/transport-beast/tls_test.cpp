// The Beast transport over TLS: a self-signed certificate made at test time, HTTP, WebSocket
// (wss) and SSE through a TLS client, plain clients refused cleanly on a TLS-only port (or served
// with tls_also_plain), and start refused with the option named when the files do not load.
#include "fake_front.hpp"

#include "plugin/instance.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <future>

namespace consilium::test {
namespace {

using json = nlohmann::json;
using net::ClientTls;
using net::HttpClient;
using namespace std::chrono_literals;

class BeastTls : public TransportTest {
protected:
    void SetUp() override {
        cert_ = (dir_.path() / "cert.pem").string();
        key_ = (dir_.path() / "key.pem").string();
        std::string error;
        ASSERT_TRUE(net::write_self_signed_cert(cert_, key_, error)) << error;
    }

    // TLS with the test certificate; extra may name other files.
    json tls_options(json extra = json::object()) {
        if (!extra.contains("tls_cert_file")) extra["tls_cert_file"] = cert_;
        if (!extra.contains("tls_key_file")) extra["tls_key_file"] = key_;
        return extra;
    }

    // The message create() fails with for these options, or "" when it does not fail.
    std::string create_error(const json &options) {
        try {
            PluginHarness h("transport", "beast", options.dump(), dir_.str(), front_.api(), front_.ctx());
        } catch (const PluginError &e) {
            return e.what();
        }
        return {};
    }

    std::string cert_, key_;
};

TEST_F(BeastTls, HttpAndWebSocketWorkOverTls) {
    ASSERT_TRUE(start(tls_options()));
    HttpClient https(host(), port(), ClientTls{true, "localhost"});
    for (int i = 0; i < 3; ++i) {  // kept alive over the one TLS connection
        auto r = https.request("POST", "/v1/things", R"({"a":1})", {{"Content-Type", "application/json"}});
        ASSERT_EQ(r.status, 200) << r.error;
        auto j = json::parse(r.body);
        EXPECT_EQ(j["body"], R"({"a":1})");
        EXPECT_EQ(j["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
    }
    EXPECT_EQ(front_.http_calls().size(), 3u);

    net::WsOptions wss;
    wss.tls.enabled = true;
    net::WsClient ws(wss);
    ASSERT_TRUE(ws.connect(host(), port(), "/v1/chat", {{"Authorization", "Bearer tls-tok"}})) << ws.error();
    ASSERT_TRUE(ws.send_text("over tls"));
    EXPECT_EQ(ws.receive_text(5s), "echo:over tls");
    EXPECT_EQ(front_.chat(0).bearer, "tls-tok");
    EXPECT_TRUE(ws.close(1000, "bye"));
    ASSERT_TRUE(front_.wait_for([&] { return front_.chat(0).close_calls == 1; }));
}

TEST_F(BeastTls, SseWorksOverTls) {
    ASSERT_TRUE(start(tls_options()));
    HttpClient https(host(), port(), ClientTls{true});
    auto created = https.request("POST", "/v1/chat/sessions", "", {{"Authorization", "Bearer greet"}});
    ASSERT_EQ(created.status, 201) << created.error << created.body;
    auto session = json::parse(created.body);
    net::SseClient sse(host(), port(), ClientTls{true});
    ASSERT_TRUE(sse.open(session["events"], {{"Authorization", "Bearer greet"}})) << sse.error() << sse.body();
    auto ready = sse.next(5s);
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->data, "ready");
    auto sent = https.request("POST", session["send"].get<std::string>(), "hello", {{"Authorization", "Bearer greet"}});
    EXPECT_EQ(sent.status, 202) << sent.error;
    auto echo = sse.next(5s);
    ASSERT_TRUE(echo);
    EXPECT_EQ(echo->data, "echo:hello");
    EXPECT_EQ(echo->id, "2");
}

TEST_F(BeastTls, PlainClientsOnATlsOnlyPortFailCleanly) {
    ASSERT_TRUE(start(tls_options()));
    HttpClient plain(host(), port(), 3s);
    auto t0 = std::chrono::steady_clock::now();
    auto r = plain.get("/v1/x");
    EXPECT_EQ(r.status, 0);
    EXPECT_FALSE(r.error.empty());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "the server neither answered nor closed";
    std::string raw = net::raw_exchange(host(), port(), "GET /v1/x HTTP/1.1\r\nHost: a\r\n\r\n", 3s);
    EXPECT_TRUE(raw.empty()) << raw;
    net::WsClient ws;
    EXPECT_FALSE(ws.connect(host(), port(), "/v1/chat", {}, 3s));
    EXPECT_TRUE(front_.http_calls().empty());
    EXPECT_EQ(front_.chat_count(), 0u);

    // The listener is fine afterwards.
    HttpClient https(host(), port(), ClientTls{true});
    EXPECT_EQ(https.get("/v1/x").status, 200);
}

TEST_F(BeastTls, TlsAlsoPlainServesBothOnOnePort) {
    ASSERT_TRUE(start(tls_options({{"tls_also_plain", true}})));
    HttpClient plain(host(), port());
    HttpClient https(host(), port(), ClientTls{true});
    EXPECT_EQ(plain.get("/v1/plain").status, 200);
    EXPECT_EQ(https.get("/v1/tls").status, 200);
    net::WsClient ws;
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    ASSERT_TRUE(ws.send_text("p"));
    EXPECT_EQ(ws.receive_text(5s), "echo:p");
}

TEST_F(BeastTls, RefusalsAreAnsweredOverTlsToo) {
    ASSERT_TRUE(start(tls_options({{"max_connections_per_ip", 1}})));
    HttpClient first(host(), port(), ClientTls{true});
    ASSERT_EQ(first.get("/v1/x").status, 200);
    HttpClient second(host(), port(), ClientTls{true});
    auto r = second.get("/v1/x");
    EXPECT_EQ(r.status, 503) << r.error;
    EXPECT_NE(r.body.find("too_many_connections"), std::string::npos) << r.body;
}

TEST_F(BeastTls, StopClosesTlsConnections) {
    ASSERT_TRUE(start(tls_options({{"ws_handshake_timeout_ms", 1000}})));
    net::WsOptions wss;
    wss.tls.enabled = true;
    net::WsClient ws(wss);
    ASSERT_TRUE(ws.connect(host(), port())) << ws.error();
    HttpClient https(host(), port(), ClientTls{true});
    ASSERT_EQ(https.get("/v1/x").status, 200);
    auto t0 = std::chrono::steady_clock::now();
    auto stopping = std::async(std::launch::async, [&] {
        stop();
        front_.mark();
    });
    ASSERT_TRUE(ws.wait_closed(5s));
    EXPECT_EQ(ws.close_info()->code, 1001);
    stopping.get();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
    harness_.reset();
    EXPECT_EQ(front_.calls_after_mark(), 0);
    EXPECT_EQ(front_.chat(0).close_calls, 1);
}

TEST_F(BeastTls, StartIsRefusedNamingTheOptionWhenTheFilesDoNotLoad) {
    auto missing = create_error(tls_options({{"tls_cert_file", (dir_.path() / "nope.pem").string()}}));
    EXPECT_NE(missing.find("tls_cert_file"), std::string::npos) << missing;

    auto only_cert = create_error({{"tls_cert_file", cert_}});
    EXPECT_NE(only_cert.find("tls_key_file"), std::string::npos) << only_cert;

    std::string garbage = (dir_.path() / "garbage.pem").string();
    std::ofstream(garbage) << "not a certificate\n";
    auto bad_cert = create_error(tls_options({{"tls_cert_file", garbage}}));
    EXPECT_NE(bad_cert.find("tls_cert_file"), std::string::npos) << bad_cert;
    EXPECT_NE(bad_cert.find("cannot load"), std::string::npos) << bad_cert;
    auto bad_key = create_error(tls_options({{"tls_key_file", garbage}}));
    EXPECT_NE(bad_key.find("tls_key_file"), std::string::npos) << bad_key;

    // A key that is not the certificate's.
    std::string other_cert = (dir_.path() / "other-cert.pem").string();
    std::string other_key = (dir_.path() / "other-key.pem").string();
    std::string error;
    ASSERT_TRUE(net::write_self_signed_cert(other_cert, other_key, error)) << error;
    auto mismatch = create_error(tls_options({{"tls_key_file", other_key}}));
    EXPECT_NE(mismatch.find("tls_key_file"), std::string::npos) << mismatch;
    EXPECT_NE(mismatch.find("does not match"), std::string::npos) << mismatch;

    EXPECT_EQ(create_error(tls_options()), "");
}

}  // namespace
}  // namespace consilium::test
