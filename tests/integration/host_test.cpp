// The host process: configuration errors, health and readiness, metrics, SIGTERM drain.
#include "chat_client.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

#include <fstream>
#include <thread>

namespace consilium::test {
namespace {

TEST(Host, HealthReadinessAndMetrics) {
    HostProcess host;
    ASSERT_TRUE(host.start()) << host.log();
    net::HttpClient http("127.0.0.1", host.port());
    EXPECT_EQ(http.get("/healthz").status, 200);
    auto ready = http.get("/readyz");
    EXPECT_EQ(ready.status, 200) << ready.body;
    auto m = http.get("/metrics");
    EXPECT_EQ(m.status, 200);
    EXPECT_NE(m.header("content-type").find("text/plain"), std::string::npos);
    EXPECT_NE(m.body.find("# TYPE consilium_"), std::string::npos) << m.body;
    EXPECT_EQ(http.get("/v1/nothing-here").status, 404);
    auto spec = http.get("/v1/specialists");
    EXPECT_EQ(spec.status, 401);
    EXPECT_EQ(json::parse(spec.body)["error"]["code"], "unauthorized");
    EXPECT_EQ(host.stop(), 0);
}

TEST(Host, SpecialistsListThePanel) {
    HostProcess host;
    ASSERT_TRUE(host.start()) << host.log();
    auto g = new_guest(host.port());
    net::HttpClient http("127.0.0.1", host.port());
    auto r = http.get("/v1/specialists", {{"Authorization", "Bearer " + g.access_token}});
    ASSERT_EQ(r.status, 200);
    json list = json::parse(r.body)["specialists"];
    EXPECT_GE(list.size(), 5u);
    for (const auto &s : list)
        for (const char *k : {"id", "name", "specialty", "group"}) EXPECT_TRUE(s.contains(k)) << s.dump();
}

TEST(Host, BadConfigurationIsRefusedWithThePath) {
    auto run = [](std::vector<std::string> sets, const std::string &expect) {
        HostProcess host(std::move(sets));
        EXPECT_FALSE(host.start(std::chrono::seconds(10)));
        EXPECT_NE(host.stderr_text().find(expect), std::string::npos) << host.stderr_text();
    };
    run({"server.listne=1"}, "server.listne: unknown key");
    run({"connector.idle_timeout_ms=-5"}, "connector.idle_timeout_ms: must be between");
    run({"log.level=loud"}, "log.level: must be one of");
    run({"routing.default=[nope]"}, "routing.default: names 'nope'");
    run({"providers.mock.tokens_per_secnd=3"}, "providers.mock.tokens_per_secnd: unknown key");
    run({"storage.plugin=nosuch"}, "storage.plugin: no storage plugin 'nosuch'");
}

TEST(Host, ConfigFileOverlaysDefaults) {
    TempDir dir;
    std::ofstream(dir.path() / "c.yaml") << "log:\n  level: warn\nproviders:\n  mock:\n    reply_tokens: 7\n";
    HostProcess host({}, {}, {"--config", (dir.path() / "c.yaml").string()});
    ASSERT_TRUE(host.start()) << host.log();
    EXPECT_EQ(host.stop(), 0);
    std::ofstream(dir.path() / "bad.yaml") << "server:\n  listen: [1, 2\n";
    HostProcess bad({}, {}, {"--config", (dir.path() / "bad.yaml").string()});
    EXPECT_FALSE(bad.start(std::chrono::seconds(10)));
    EXPECT_NE(bad.stderr_text().find("bad.yaml:"), std::string::npos) << bad.stderr_text();
}

TEST(Host, SigtermEndsEveryOpenStreamThenExitsZero) {
    HostProcess host({"providers.mock.tokens_per_second=20", "providers.mock.reply_tokens=400",
                      "server.drain_timeout_ms=500"});
    ASSERT_TRUE(host.start()) << host.log();
    std::vector<std::unique_ptr<ChatClient>> clients;
    for (int i = 0; i < 5; ++i) {
        auto g = new_guest(host.port());
        auto c = std::make_unique<ChatClient>(host.port());
        ASSERT_TRUE(c->connect(g.access_token));
        ASSERT_TRUE(c->send({{"type", "message"}, {"id", "d" + std::to_string(i)}, {"text", "my ankle is swollen after a fall"}}));
        auto head = c->until([](const json &f) { return f.value("type", "") == "stream_chunk"; });
        ASSERT_FALSE(head.empty());
        clients.push_back(std::move(c));
    }
    int code = -2;
    std::thread stopper([&] { code = host.stop(); });
    for (auto &c : clients) {
        auto rest = c->until_stream_end(std::chrono::seconds(10));
        ASSERT_FALSE(rest.empty());
        const json &end = rest.back();
        ASSERT_EQ(end.value("type", ""), "stream_end") << end.dump();
        EXPECT_EQ(end.value("stop_reason", ""), "error");
        EXPECT_EQ(end["error"].value("code", ""), "shutting_down");
    }
    stopper.join();
    EXPECT_EQ(code, 0) << host.log();
}

}  // namespace
}  // namespace consilium::test
