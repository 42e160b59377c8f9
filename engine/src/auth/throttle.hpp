// Login throttling against password guessing, per account (the e-mail's blind index) and per
// client address: a few failures are free, then each further failure within the window locks
// the key out for twice as long as the last time (up to `max_lockout`). A locked key is refused
// before the password is even checked, with the time to wait. In memory, per host process
// (docs/security.md says what that means behind a load balancer).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace consilium {

struct ThrottleSettings {
    int free_failures = 5;                            // per key within the window, before lockouts
    std::chrono::milliseconds window{15 * 60 * 1000};  // failures older than this are forgotten
    std::chrono::milliseconds first_lockout{1000};
    std::chrono::milliseconds max_lockout{15 * 60 * 1000};
};

class LoginThrottle {
public:
    using Clock = std::chrono::steady_clock;
    explicit LoginThrottle(ThrottleSettings settings) : s_(settings) {}

    // 0 when the key may try now, else the milliseconds to wait.
    int64_t retry_after_ms(const std::string &key, Clock::time_point now = Clock::now());
    void failure(const std::string &key, Clock::time_point now = Clock::now());
    void success(const std::string &key);

private:
    struct Entry {
        int failures = 0;
        Clock::time_point first_failure{};
        Clock::time_point locked_until{};
    };
    void prune(Clock::time_point now);

    ThrottleSettings s_;
    std::mutex mu_;
    std::unordered_map<std::string, Entry> entries_;
    uint64_t calls_ = 0;
};

}  // namespace consilium
