// Rate limits of the chat channel (docs/protocol.md, "Limits"): token buckets per connection
// (messages and bytes) and per account (messages), lower for guests. A client over a limit gets
// an `error` frame `rate_limited` with `retry_after_ms`; one that keeps going is closed (1008).
#pragma once

#include "consult/consultation.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace consilium {

class TokenBucket {
public:
    using Clock = std::chrono::steady_clock;
    TokenBucket() = default;
    TokenBucket(double per_minute, double burst) : rate_(per_minute / 60000.0), burst_(burst), tokens_(burst) {}
    // Takes n tokens if there are; else says in how many ms there will be.
    bool take(double n, Clock::time_point now, int64_t &retry_after_ms);

private:
    double rate_ = 0;   // tokens per millisecond
    double burst_ = 0;
    double tokens_ = 0;
    Clock::time_point last_{};
    bool started_ = false;
};

struct RateLimits {
    double messages_per_minute = 20;        // per connection, signed-in patients
    double guest_messages_per_minute = 10;
    double bytes_per_minute = 1 << 20;      // per connection, every frame
    double account_messages_per_minute = 40;
    double guest_account_messages_per_minute = 15;
    double burst_fraction = 0.5;            // burst = this share of a minute's allowance (at least 3)
    int close_after_violations = 20;        // rate_limited answers in a row before closing (1008)
    int concurrent_turns = 4;               // answers in progress or waiting, per account
    int guest_concurrent_turns = 2;
};

// Per-account message buckets shared by all of an account's connections.
class AccountLimiter {
public:
    explicit AccountLimiter(RateLimits limits) : limits_(limits) {}
    bool take_message(const Principal &who, int64_t &retry_after_ms);

private:
    struct Entry {
        TokenBucket bucket;
        TokenBucket::Clock::time_point used;
    };
    RateLimits limits_;
    std::mutex mu_;
    std::unordered_map<std::string, Entry> entries_;
    uint64_t calls_ = 0;
};

double burst_for(double per_minute, double fraction);

}  // namespace consilium
