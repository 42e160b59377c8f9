// Hot reload of the panel: file changes (watcher), SIGHUP and the admin endpoint reload it; a
// panel that fails to load is refused with FILE:LINE errors and the last good one stays live;
// a consultation in flight is not disturbed.
#include "chat_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace consilium::test {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write(const fs::path &p, const std::string &text) {
    fs::path tmp = p;
    tmp += ".tmp";
    std::ofstream(tmp) << text;
    fs::rename(tmp, p);  // atomic, as editors save
}

std::string specialist_name(uint16_t port, const std::string &token, const std::string &id) {
    net::HttpClient http("127.0.0.1", port);
    auto r = http.get("/v1/specialists", {{"Authorization", "Bearer " + token}});
    if (r.status != 200) ADD_FAILURE() << "GET /v1/specialists: " << r.status << " " << r.error << " " << r.body;
    json body = json::parse(r.body, nullptr, false);
    if (!body.is_object()) return "";
    for (const auto &s : body["specialists"])
        if (s["id"] == id) return s["name"];
    return "";
}

bool eventually(const std::function<bool()> &f, std::chrono::seconds limit = std::chrono::seconds(10)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (f()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

std::string author_token(const HostProcess &host, const fs::path &personas) {
    std::string cmd = std::string(CONSILIUM_TEST_HOST_BINARY) + " account create --role author --data-dir " +
                      host.data_dir().string() + " --set paths.personas=" + personas.string() + " 2>/dev/null";
    FILE *p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    json j = json::parse(out, nullptr, false);
    return j.is_object() ? j.value("access_token", "") : "";
}

class PersonaReload : public ::testing::Test {
protected:
    void SetUp() override {
        personas_ = dir_.path() / "personas";
        fs::copy(fs::path(CONSILIUM_TEST_SOURCE_DIR) / "personas", personas_, fs::copy_options::recursive);
    }
    TempDir dir_;
    fs::path personas_;
};

TEST_F(PersonaReload, EditsGoLiveAndBrokenFilesAreRefused) {
    HostProcess host({"paths.personas=" + personas_.string(), "providers.mock.tokens_per_second=40",
                      "providers.mock.reply_tokens=120", "providers.mock.first_token_ms=0"});
    ASSERT_TRUE(host.start()) << host.log();
    GuestToken guest = new_guest(host.port());
    std::string original = specialist_name(host.port(), guest.access_token, "dermatology");
    ASSERT_FALSE(original.empty());

    // A consultation in flight while the panel changes under it.
    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(guest.access_token));
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "r1"}, {"text", "red itchy scaly patches on my elbows and knees"}}));
    auto head = chat.until([](const json &f) { return f.value("type", "") == "stream_chunk"; });
    ASSERT_FALSE(head.empty());

    // 1. An edit goes live through the watcher.
    fs::path derm = personas_ / "dermatology.yaml";
    std::string text = read(derm);
    std::string renamed = std::regex_replace(text, std::regex("\nname: [^\n]*"), "\nname: Dr. Renamed Tester", std::regex_constants::format_first_only);
    ASSERT_NE(renamed, text);
    write(derm, renamed);
    EXPECT_TRUE(eventually([&] { return specialist_name(host.port(), guest.access_token, "dermatology") == "Dr. Renamed Tester"; }));

    // The stream that started before the reload ends normally.
    auto tail = chat.until_stream_end();
    ASSERT_FALSE(tail.empty());
    EXPECT_EQ(tail.back().value("stop_reason", ""), "end_turn") << tail.back().dump();

    // 2. A broken file is refused: the live panel stays.
    write(derm, renamed + "\n  bad: [indentation\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_EQ(specialist_name(host.port(), guest.access_token, "dermatology"), "Dr. Renamed Tester");

    // 3. The admin endpoint says why, with FILE:LINE:COL. Patients may not call it.
    net::HttpClient http("127.0.0.1", host.port());
    auto denied = http.request("POST", "/v1/admin/personas/reload", "", {{"Authorization", "Bearer " + guest.access_token}});
    EXPECT_EQ(denied.status, 403);
    std::string author = author_token(host, personas_);
    ASSERT_FALSE(author.empty());
    auto r = http.request("POST", "/v1/admin/personas/reload", "", {{"Authorization", "Bearer " + author}});
    ASSERT_EQ(r.status, 422) << r.body;
    json body = json::parse(r.body);
    EXPECT_FALSE(body["reloaded"].get<bool>());
    ASSERT_FALSE(body["diagnostics"].empty());
    EXPECT_NE(body["diagnostics"][0].get<std::string>().find("dermatology.yaml:"), std::string::npos) << r.body;
    EXPECT_EQ(body["personas"], 74);

    // 4. Fixed again; SIGHUP reloads too.
    write(derm, text);
    EXPECT_TRUE(eventually([&] { return specialist_name(host.port(), guest.access_token, "dermatology") == original; }));
    auto ok = http.request("POST", "/v1/admin/personas/reload", "", {{"Authorization", "Bearer " + author}});
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(host.stop(), 0);
}

TEST_F(PersonaReload, BrokenScriptsFallBackToYamlBehaviour) {
    // A persona script that throws, loops forever or allocates without end never fails a turn.
    std::ofstream(personas_ / "dermatology.lua") << "function score(turn, s) while true do end end\n"
                                                    "function shape_prompt(turn, p) error('boom') end\n"
                                                    "function follow_ups(turn, a, s) local t = {} while true do t[#t+1] = string.rep('x', 1048576) .. #t end end\n";
    std::ofstream(personas_ / "cardiology.lua") << "function follow_ups(turn, answer, s) return {'Custom question from the script?'} end\n";
    HostProcess host({"paths.personas=" + personas_.string(), "providers.mock.tokens_per_second=0",
                      "providers.mock.first_token_ms=0"});
    ASSERT_TRUE(host.start()) << host.log();
    GuestToken guest = new_guest(host.port());
    ChatClient chat(host.port());
    ASSERT_TRUE(chat.connect(guest.access_token));
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "b1"}, {"specialist", "dermatology"}, {"text", "itchy rash"}}));
    auto frames = chat.until_stream_end();
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().value("stop_reason", ""), "end_turn") << frames.back().dump();
    EXPECT_FALSE(frames.back()["follow_ups"].empty()) << "the YAML follow-ups answer instead";
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "b2"}, {"specialist", "cardiology"}, {"text", "my blood pressure is high"}}));
    frames = chat.until_stream_end();
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back()["follow_ups"], json::array({"Custom question from the script?"}));
    std::string log = host.log();
    EXPECT_NE(log.find("persona=dermatology"), std::string::npos) << log;
    EXPECT_NE(log.find("code=timeout"), std::string::npos) << log;
    EXPECT_NE(log.find("code=runtime"), std::string::npos) << log;
    EXPECT_NE(log.find("code=memory"), std::string::npos) << log;
}

}  // namespace
}  // namespace consilium::test
