#include "config.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>

namespace consilium::host {
namespace {

std::string error_of(const ConfigSources &src) {
    try {
        load_config(src);
    } catch (const ConfigError &e) {
        return e.what();
    }
    return "";
}

TEST(Config, DefaultsNeedNoFile) {
    Config c = load_config({});
    EXPECT_EQ(c.tree["server"]["listen"], "127.0.0.1:8080");
    EXPECT_EQ(c.tree["providers"]["mock"]["plugin"], "mock");
    EXPECT_EQ(c.tree["storage"]["plugin"], "sqlite");
    EXPECT_TRUE(c.data_dir.is_absolute());
    EXPECT_TRUE(std::filesystem::exists(c.personas_dir)) << c.personas_dir;
}

TEST(Config, SetOverridesByDottedPathWithTypes) {
    ConfigSources s;
    s.sets = {{"providers.mock.tokens_per_second", "0"}, {"routing.force", "[clinical-fast]"},
              {"log.level", "debug"}, {"providers.extra.plugin", "mock"}};
    Config c = load_config(s);
    EXPECT_EQ(c.tree["providers"]["mock"]["tokens_per_second"], 0);
    EXPECT_EQ(c.tree["routing"]["force"], nlohmann::json::array({"clinical-fast"}));
    EXPECT_EQ(c.tree["log"]["level"], "debug");
    EXPECT_EQ(c.tree["providers"]["extra"]["plugin"], "mock");
}

TEST(Config, FileOverlaysAndNamesOnlyWhatChanges) {
    test::TempDir dir;
    std::ofstream(dir.path() / "c.yaml") << "server:\n  drain_timeout_ms: 5\nmodels:\n  big:\n    provider: mock\n    model: m\n";
    ConfigSources s;
    s.file = dir.path() / "c.yaml";
    Config c = load_config(s);
    EXPECT_EQ(c.tree["server"]["drain_timeout_ms"], 5);
    EXPECT_EQ(c.tree["server"]["listen"], "127.0.0.1:8080");
    EXPECT_EQ(c.tree["models"]["big"]["model"], "m");
    EXPECT_TRUE(c.tree["models"].contains("clinical"));
}

TEST(Config, RefusesUnknownKeysAndBadValuesWithThePath) {
    auto with = [](std::vector<std::pair<std::string, std::string>> sets) {
        ConfigSources s;
        s.sets = std::move(sets);
        return error_of(s);
    };
    EXPECT_NE(with({{"server.lisen", "x"}}).find("server.lisen: unknown key"), std::string::npos);
    EXPECT_NE(with({{"server.listen", "nohost"}}).find("server.listen: expected HOST:PORT"), std::string::npos);
    EXPECT_NE(with({{"server.listen", "h:99999"}}).find("server.listen: port"), std::string::npos);
    EXPECT_NE(with({{"server.drain_timeout_ms", "soon"}}).find("server.drain_timeout_ms: expected an integer"),
              std::string::npos);
    EXPECT_NE(with({{"chat.max_frame_bytes", "1"}}).find("chat.max_frame_bytes: must be between"), std::string::npos);
    EXPECT_NE(with({{"models.clinical.provider", "ghost"}}).find("models.clinical.provider: names provider 'ghost'"),
              std::string::npos);
    EXPECT_NE(with({{"models.clinical.colour", "red"}}).find("models.clinical.colour: unknown key"), std::string::npos);
    EXPECT_NE(with({{"routing.force", "[nope]"}}).find("routing.force: names 'nope'"), std::string::npos);
    EXPECT_NE(with({{"providers.p2.base_url", "x"}}).find("providers.p2.plugin: missing"), std::string::npos);
    EXPECT_NE(with({{"log", "loud"}}).find("log: expected a mapping"), std::string::npos);
}

TEST(Config, YamlErrorsNameFileLineAndColumn) {
    test::TempDir dir;
    std::ofstream(dir.path() / "bad.yaml") << "server:\n  listen: [1, 2\n";
    ConfigSources s;
    s.file = dir.path() / "bad.yaml";
    std::string e = error_of(s);
    EXPECT_NE(e.find("bad.yaml:"), std::string::npos) << e;
    s.file = dir.path() / "missing.yaml";
    EXPECT_NE(error_of(s).find("cannot be read"), std::string::npos);
}

// docs/configuration.md cannot drift: every key of the embedded defaults is documented there.
TEST(Config, EveryDefaultKeyIsDocumented) {
    std::ifstream in(std::string(CONSILIUM_TEST_SOURCE_DIR) + "/docs/configuration.md");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string doc = ss.str();
    ASSERT_FALSE(doc.empty());
    std::function<void(const nlohmann::json &, const std::string &)> walk = [&](const nlohmann::json &j,
                                                                                 const std::string &path) {
        // Named instances (providers, models, transports) are documented as tables of their own.
        if (path == "providers" || path == "models" || path == "transports") return;
        if (j.is_object() && !j.empty()) {
            for (auto it = j.begin(); it != j.end(); ++it) walk(it.value(), path.empty() ? it.key() : path + "." + it.key());
            return;
        }
        EXPECT_NE(doc.find("`" + path + "`"), std::string::npos) << path << " is not in docs/configuration.md";
    };
    walk(default_config(), "");
}

}  // namespace
}  // namespace consilium::host
