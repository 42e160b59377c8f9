// `consilium plugin check`: the mock passes every check; plugins that break the contract fail
// the check they break, and the kit survives them (each check runs in its own process).
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <sys/wait.h>

namespace consilium::test {
namespace {

struct Result {
    int status = -1;
    std::string out;
};

Result check(const std::string &library, const std::string &options = "{}") {
    std::string cmd = std::string(CONSILIUM_TEST_HOST_BINARY) + " plugin check " + library + " --options '" + options + "' 2>&1";
    Result r;
    FILE *p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string broken(const std::string &name) {
    return std::string(CONSILIUM_BROKEN_PLUGIN_DIR) + "/provider_broken_" + name + ".so";
}

TEST(PluginCheck, TheMockPassesEveryCheck) {
    Result r = check(plugin_file("provider", "mock").string(), R"({"tokens_per_second": 500, "first_token_ms": 5})");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("7 passed, 0 failed"), std::string::npos) << r.out;
}

TEST(PluginCheck, TwoEndsFailTheOneTerminalRule) {
    Result r = check(broken("double_end"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("FAIL  a stream delivers exactly one terminal event"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("after the terminal one"), std::string::npos) << r.out;
}

TEST(PluginCheck, AnEscapingExceptionIsReportedNotFatal) {
    Result r = check(broken("throws"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("signal 6"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("passed,"), std::string::npos) << "the kit itself finished: " << r.out;
}

TEST(PluginCheck, AnotherAbiIsRefusedAtTheFirstCheck) {
    Result r = check(broken("wrong_major"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("FAIL  descriptor"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ABI 99.0"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace consilium::test
