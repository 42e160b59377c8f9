// Login throttling (free failures, then doubling lockouts up to a cap, forgotten after the
// window or a success) and Argon2id password hashes.
#include "auth/passwords.hpp"
#include "auth/throttle.hpp"

#include <gtest/gtest.h>

namespace consilium {
namespace {

using namespace std::chrono_literals;
using Clock = LoginThrottle::Clock;

TEST(LoginThrottle, FreeFailuresThenDoublingLockoutsUpToTheCap) {
    LoginThrottle t({3, 15min, 1000ms, 5000ms});
    auto now = Clock::now();
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(t.retry_after_ms("k", now), 0);
        t.failure("k", now);
    }
    EXPECT_EQ(t.retry_after_ms("k", now), 0) << "three failures are free";
    t.failure("k", now);
    EXPECT_EQ(t.retry_after_ms("k", now), 1000);
    EXPECT_EQ(t.retry_after_ms("k", now + 400ms), 600);
    EXPECT_EQ(t.retry_after_ms("k", now + 1000ms), 0);
    t.failure("k", now + 1000ms);
    EXPECT_EQ(t.retry_after_ms("k", now + 1000ms), 2000);
    t.failure("k", now + 3000ms);
    EXPECT_EQ(t.retry_after_ms("k", now + 3000ms), 4000);
    t.failure("k", now + 7000ms);
    EXPECT_EQ(t.retry_after_ms("k", now + 7000ms), 5000) << "capped";
    EXPECT_EQ(t.retry_after_ms("other", now + 7000ms), 0) << "keys are separate";
}

TEST(LoginThrottle, ASuccessOrTheWindowForgetsFailures) {
    LoginThrottle t({1, 60s, 1000ms, 60000ms});
    auto now = Clock::now();
    t.failure("k", now);
    t.failure("k", now);
    EXPECT_GT(t.retry_after_ms("k", now), 0);
    t.success("k");
    EXPECT_EQ(t.retry_after_ms("k", now), 0);
    t.failure("k", now);
    t.failure("k", now + 61s);  // the first is outside the window: this is the first again
    EXPECT_EQ(t.retry_after_ms("k", now + 61s), 0);
}

// Small Argon2id parameters keep the test quick; the production defaults are in the config.
PasswordSettings quick() { return {1, 8192, 2}; }

TEST(Passwords, HashesVerifyAndAreSalted) {
    PasswordHasher h(quick());
    std::string a = h.hash("correct horse battery");
    std::string b = h.hash("correct horse battery");
    EXPECT_NE(a, b) << "salted";
    EXPECT_EQ(a.rfind("$argon2id$", 0), 0u) << a;
    EXPECT_TRUE(h.verify(a, "correct horse battery"));
    EXPECT_FALSE(h.verify(a, "correct horse batterz"));
    EXPECT_FALSE(h.verify("not a hash", "correct horse battery"));
    EXPECT_FALSE(h.verify("", ""));
    h.verify_dummy("anything");  // no crash, no answer
}

TEST(Passwords, HashesMadeWithOtherParametersNeedARehash) {
    PasswordHasher weak(quick());
    PasswordHasher strong({2, 16384, 2});
    std::string old = weak.hash("correct horse battery");
    EXPECT_FALSE(weak.needs_rehash(old));
    EXPECT_TRUE(strong.needs_rehash(old));
    EXPECT_TRUE(strong.verify(old, "correct horse battery")) << "old hashes still verify";
}

}  // namespace
}  // namespace consilium
