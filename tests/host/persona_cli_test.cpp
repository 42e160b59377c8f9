// The authors' tools: `consilium persona lint`, `persona test` and `route`, run as a user
// would, on a copy of the panel with mistakes put in on purpose.
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/wait.h>

namespace consilium::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliRun {
    int status = -1;
    std::string out;
};

CliRun run(const std::string &args) {
    std::string cmd = std::string(CONSILIUM_TEST_HOST_BINARY) + " " + args + " 2>&1";
    CliRun r;
    FILE *p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string read(const fs::path &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

class PersonaCli : public ::testing::Test {
protected:
    void SetUp() override {
        fs::copy(fs::path(CONSILIUM_TEST_SOURCE_DIR) / "personas", dir_.path() / "personas", fs::copy_options::recursive);
        fs::copy(fs::path(CONSILIUM_TEST_SOURCE_DIR) / "locales", dir_.path() / "locales", fs::copy_options::recursive);
        personas_ = dir_.path() / "personas";
    }
    TempDir dir_;
    fs::path personas_;
};

TEST_F(PersonaCli, TheShippedPanelIsClean) {
    CliRun lint = run("persona lint " + personas_.string());
    EXPECT_EQ(lint.status, 0) << lint.out;
    EXPECT_NE(lint.out.find("74 persona(s), 0 error(s)"), std::string::npos) << lint.out;
}

TEST_F(PersonaCli, LintNamesFileLineAndColumnOfEachMistake) {
    fs::path derm = personas_ / "dermatology.yaml";
    std::string text = read(derm);
    // An unknown key, with a suggestion.
    text = std::regex_replace(text, std::regex("\nscope:"), "\nscoep:", std::regex_constants::format_first_only);
    std::ofstream(derm) << text;
    // A YAML syntax error.
    std::ofstream(personas_ / "nephrology.yaml") << "id: nephrology\nname: [unclosed\n";
    // A second persona claiming an id that is already taken.
    std::ofstream(personas_ / "cardiology2.yaml") << read(personas_ / "cardiology.yaml");
    // A script with a syntax error, and one whose hook fails when dry-run.
    std::ofstream(personas_ / "urology.lua") << "function score(turn, s)\n  return 1 +\nend\n";
    std::ofstream(personas_ / "andrology.lua") << "function follow_ups(turn, answer, s)\n  return undefined_thing\nend\n";
    // A locale missing a persona title.
    std::string es = read(dir_.path() / "locales" / "es.yaml");
    std::ofstream(dir_.path() / "locales" / "es.yaml")
        << std::regex_replace(es, std::regex("\n  andrology:[^\n]*"), "", std::regex_constants::format_first_only);

    CliRun lint = run("persona lint " + personas_.string());
    EXPECT_NE(lint.status, 0);
    auto has = [&](const std::string &re) { return std::regex_search(lint.out, std::regex(re)); };
    EXPECT_TRUE(has(R"(dermatology\.yaml:\d+:1: error: unknown key 'scoep' \(did you mean 'scope'\?\))")) << lint.out;
    EXPECT_TRUE(has(R"(dermatology\.yaml:\d+:\d+: error: missing required key 'scope')")) << lint.out;
    EXPECT_TRUE(has(R"(nephrology\.yaml:\d+:\d+: error: YAML syntax)")) << lint.out;
    EXPECT_TRUE(has(R"(cardiology2\.yaml:\d+:\d+: error: id 'cardiology' does not match the file name)")) << lint.out;
    EXPECT_TRUE(has(R"(urology\.lua:\d+:1: error: Lua syntax)")) << lint.out;
    EXPECT_TRUE(has(R"(andrology\.lua:2:1: error: follow_ups\(\): runtime: .*unknown global 'undefined_thing')")) << lint.out;
    EXPECT_TRUE(has(R"(es\.yaml: warning: missing translation: no persona title for andrology)")) << lint.out;
}

int failed_count(const std::string &out) {
    std::smatch m;
    if (!std::regex_search(out, m, std::regex(R"((\d+) passed, (\d+) failed)"))) return -1;
    return std::stoi(m[2]);
}

TEST_F(PersonaCli, PersonaTestReportsExpectedAgainstRouted) {
    CliRun before = run("persona test " + personas_.string() + " --persona dermatology");
    int failed_before = failed_count(before.out);
    ASSERT_GE(failed_before, 0) << before.out;
    // A test that cannot pass: a knee injury expected at dermatology.
    fs::path derm = personas_ / "dermatology.yaml";
    std::string text = read(derm);
    text = std::regex_replace(text, std::regex("\ntests:\n"),
                              "\ntests:\n  - text: \"twisted my knee at football, swollen and I can't bend it\"\n"
                              "    expect: [dermatology]\n    emergency: false\n",
                              std::regex_constants::format_first_only);
    std::ofstream(derm) << text;
    CliRun bad = run("persona test " + personas_.string() + " --persona dermatology");
    EXPECT_EQ(bad.status, 1) << bad.out;
    EXPECT_NE(bad.out.find("dermatology.yaml:"), std::string::npos) << bad.out;
    EXPECT_NE(bad.out.find("- expected: dermatology, emergency false"), std::string::npos) << bad.out;
    EXPECT_NE(bad.out.find("+ got:"), std::string::npos) << bad.out;
    EXPECT_EQ(failed_count(bad.out), failed_before + 1) << bad.out;
}

TEST_F(PersonaCli, RouteFollowsTheContractFormat) {
    fs::path cases = dir_.path() / "cases.jsonl";
    std::ofstream(cases) << R"({"id": "a", "text": "my skin is itchy and flaky on my elbows"})" << "\n"
                         << R"({"id": "b", "text": "crushing chest pain going into my left arm", "profile": {"age_years": 60, "sex": "male"}})" << "\n"
                         << R"({"id": "c", "turns": ["sore throat and fever", "how long should the antibiotics take"]})" << "\n";
    CliRun r = run("route --personas " + personas_.string() + " --jsonl " + cases.string());
    ASSERT_EQ(r.status, 0) << r.out;
    std::istringstream lines(r.out);
    std::string line;
    std::vector<json> out;
    while (std::getline(lines, line)) out.push_back(json::parse(line));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0]["id"], "a");
    EXPECT_EQ(out[0]["specialist"], "dermatology");
    EXPECT_EQ(out[0]["top"].size(), 3u);
    EXPECT_EQ(out[0]["emergency"], false);
    EXPECT_EQ(out[1]["emergency"], true);
    ASSERT_EQ(out[2]["turns"].size(), 2u);
    for (const auto &t : out[2]["turns"])
        for (const char *k : {"specialist", "top", "emergency"}) EXPECT_TRUE(t.contains(k)) << t.dump();
}

}  // namespace
}  // namespace consilium::test
