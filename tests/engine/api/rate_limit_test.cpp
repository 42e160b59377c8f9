#include "api/rate_limit.hpp"

#include <gtest/gtest.h>

namespace consilium {
namespace {

using namespace std::chrono;
using Clock = TokenBucket::Clock;

TEST(TokenBucket, StartsFullAndRefusesPastItsBurst) {
    TokenBucket b(60, 3);  // one a second, three at once
    auto t = Clock::now();
    int64_t retry = 0;
    EXPECT_TRUE(b.take(1, t, retry));
    EXPECT_TRUE(b.take(1, t, retry));
    EXPECT_TRUE(b.take(1, t, retry));
    EXPECT_FALSE(b.take(1, t, retry));
    EXPECT_GT(retry, 0);
    EXPECT_LE(retry, 1000);
}

TEST(TokenBucket, RefillsAtItsRateAndNeverBeyondItsBurst) {
    TokenBucket b(60, 3);
    auto t = Clock::now();
    int64_t retry = 0;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(b.take(1, t, retry));
    EXPECT_FALSE(b.take(1, t + milliseconds(500), retry));
    EXPECT_EQ(retry, 500);  // half a token there, half to go
    EXPECT_TRUE(b.take(1, t + milliseconds(1000), retry));
    // An hour later the bucket holds its burst, not 3600 tokens.
    auto later = t + hours(1);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.take(1, later, retry));
    EXPECT_FALSE(b.take(1, later, retry));
}

TEST(TokenBucket, TakesSeveralTokensAtOnceForBytes) {
    TokenBucket b(6000, 1000);  // 100 bytes a second, 1000 at once
    auto t = Clock::now();
    int64_t retry = 0;
    EXPECT_TRUE(b.take(800, t, retry));
    EXPECT_FALSE(b.take(400, t, retry));
    EXPECT_EQ(retry, 2000);  // 200 short at 0.1 per ms
    EXPECT_TRUE(b.take(200, t, retry));
}

TEST(AccountLimiter, SharesOneBucketAcrossConnectionsAndKeepsGuestsLower) {
    RateLimits l;
    l.account_messages_per_minute = 12;        // burst 6
    l.guest_account_messages_per_minute = 6;   // burst 3
    l.burst_fraction = 0.5;
    AccountLimiter limiter(l);
    Principal patient{"a1", "patient", false, "", ""};
    Principal guest{"g1", "guest", true, "", ""};
    int64_t retry = 0;
    int patient_ok = 0, guest_ok = 0;
    for (int i = 0; i < 20; ++i) {
        patient_ok += limiter.take_message(patient, retry);
        guest_ok += limiter.take_message(guest, retry);
    }
    EXPECT_EQ(patient_ok, 6);
    EXPECT_EQ(guest_ok, 3);
    // Another account is not affected.
    EXPECT_TRUE(limiter.take_message(Principal{"a2", "patient", false, "", ""}, retry));
}

TEST(RateLimits, BurstIsAShareOfTheMinuteButAtLeastThree) {
    EXPECT_DOUBLE_EQ(burst_for(20, 0.5), 10);
    EXPECT_DOUBLE_EQ(burst_for(2, 0.5), 3);
}

}  // namespace
}  // namespace consilium
