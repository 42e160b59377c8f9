// providers/common's helpers: API keys (environment, file, refusal of inline keys, never echoed),
// Retry-After in seconds and as an HTTP date, OpenAI's reset durations, redaction.
#include "provider_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace consilium::providers {
namespace {

const std::string kSecret = "sk-test-NEVER-LOG-ME-0123456789";

std::string refusal(const json &options, bool required = true) {
    try {
        load_api_key(options, "providers.claude", required);
    } catch (const sdk::Error &e) {
        EXPECT_EQ(e.status(), CS_E_INVALID);
        return e.what();
    }
    return "";
}

TEST(ApiKey, FromTheEnvironment) {
    ::setenv("CONSILIUM_TEST_KEY_A", ("  " + kSecret + "\n").c_str(), 1);
    EXPECT_EQ(load_api_key({{"api_key_env", "CONSILIUM_TEST_KEY_A"}, {"api_key_file", ""}}, "p", true), kSecret);
    ::unsetenv("CONSILIUM_TEST_KEY_A");
}

TEST(ApiKey, FromAFileTrimmedAndBeforeTheEnvironment) {
    std::string file = ::testing::TempDir() + "/consilium_key.txt";
    {
        std::ofstream out(file);
        out << "\n  " << kSecret << "  \r\n";
    }
    ::setenv("CONSILIUM_TEST_KEY_B", "other", 1);
    EXPECT_EQ(load_api_key({{"api_key_env", "CONSILIUM_TEST_KEY_B"}, {"api_key_file", file}}, "p", true), kSecret);
    ::unsetenv("CONSILIUM_TEST_KEY_B");
    std::remove(file.c_str());
    std::string why = refusal({{"api_key_file", file}});
    EXPECT_NE(why.find("providers.claude.api_key_file: cannot read"), std::string::npos) << why;
}

TEST(ApiKey, AnInlineKeyIsRefusedWithoutRepeatingIt) {
    std::string why = refusal({{"api_key", kSecret}, {"api_key_env", "X"}});
    EXPECT_NE(why.find("providers.claude.api_key:"), std::string::npos) << why;
    EXPECT_NE(why.find("api_key_env"), std::string::npos);
    EXPECT_NE(why.find("api_key_file"), std::string::npos);
    EXPECT_EQ(why.find(kSecret), std::string::npos);
}

TEST(ApiKey, AMissingRequiredKeyNamesTheVariable) {
    ::unsetenv("CONSILIUM_TEST_KEY_MISSING");
    std::string why = refusal({{"api_key_env", "CONSILIUM_TEST_KEY_MISSING"}});
    EXPECT_NE(why.find("providers.claude.api_key_env"), std::string::npos) << why;
    EXPECT_NE(why.find("CONSILIUM_TEST_KEY_MISSING"), std::string::npos) << why;
    // Optional keys (local servers) may be absent.
    EXPECT_EQ(load_api_key({{"api_key_env", "CONSILIUM_TEST_KEY_MISSING"}}, "p", false), "");
}

TEST(ApiKey, AKeyWithALineBreakIsRefusedWithoutRepeatingIt) {
    ::setenv("CONSILIUM_TEST_KEY_C", (kSecret + "\nX-Evil: 1").c_str(), 1);
    std::string why = refusal({{"api_key_env", "CONSILIUM_TEST_KEY_C"}});
    EXPECT_NE(why.find("control characters"), std::string::npos) << why;
    EXPECT_EQ(why.find(kSecret), std::string::npos);
    ::unsetenv("CONSILIUM_TEST_KEY_C");
}

TEST(RetryAfter, SecondsAndHttpDates) {
    const int64_t now = 1700000000000;  // 2023-11-14T22:13:20Z
    EXPECT_EQ(parse_retry_after_ms("3", now), 3000);
    EXPECT_EQ(parse_retry_after_ms(" 0 ", now), 0);
    EXPECT_EQ(parse_retry_after_ms("1.5", now), 1500);
    EXPECT_EQ(parse_retry_after_ms("Tue, 14 Nov 2023 22:13:50 GMT", now), 30000);
    EXPECT_EQ(parse_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now), 0) << "a date in the past: now";
    EXPECT_EQ(parse_retry_after_ms("", now), -1);
    EXPECT_EQ(parse_retry_after_ms("soon", now), -1);
    EXPECT_EQ(parse_retry_after_ms("-5", now), -1);
}

TEST(RetryAfter, OpenAiResetDurations) {
    EXPECT_EQ(parse_duration_ms("1s"), 1000);
    EXPECT_EQ(parse_duration_ms("6m0s"), 360000);
    EXPECT_EQ(parse_duration_ms("12ms"), 12);
    EXPECT_EQ(parse_duration_ms("1.574s"), 1574);
    EXPECT_EQ(parse_duration_ms("1h2m3s"), 3723000);
    EXPECT_EQ(parse_duration_ms("20ms"), 20);
    EXPECT_EQ(parse_duration_ms(""), -1);
    EXPECT_EQ(parse_duration_ms("6 minutes"), -1);
    EXPECT_EQ(parse_duration_ms("s"), -1);
}

TEST(Helpers, RedactBaseUrlAndHeaders) {
    EXPECT_EQ(redact("a " + kSecret + " b " + kSecret, kSecret), "a [redacted] b [redacted]");
    EXPECT_EQ(redact("nothing", ""), "nothing");
    EXPECT_EQ(normalise_base_url("http://127.0.0.1:8000/v1/", "p.base_url"), "http://127.0.0.1:8000/v1");
    EXPECT_THROW(normalise_base_url("ftp://x", "p.base_url"), sdk::Error);
    EXPECT_TRUE(header_safe("anthropic-beta", "a,b"));
    EXPECT_FALSE(header_safe("x", "a\r\nInjected: 1"));
    EXPECT_FALSE(header_safe("bad name", "v"));
    EXPECT_EQ(connect_timeout_ms(json{{"timeouts", {{"connect_ms", 250}}}}, 10000), 250);
    EXPECT_EQ(connect_timeout_ms(json::object(), 10000), 10000);
}

}  // namespace
}  // namespace consilium::providers
