// A circuit breaker for one route (provider and model). Closed: traffic flows and failures are
// counted. After `threshold` failures in a row it opens: the connector sends traffic to the
// fallbacks. After the cooldown one probe may go through (half-open): success closes it, failure
// opens it again with twice the cooldown (up to max_cooldown). Thread-safe.
#pragma once

#include <chrono>
#include <mutex>

namespace consilium {

class CircuitBreaker {
public:
    using Clock = std::chrono::steady_clock;
    enum class State { closed = 0, open = 1, half_open = 2 };

    CircuitBreaker(int threshold, std::chrono::milliseconds cooldown,
                   std::chrono::milliseconds max_cooldown = std::chrono::minutes(1))
        : threshold_(threshold), base_cooldown_(cooldown), cooldown_(cooldown), max_cooldown_(max_cooldown) {}

    // May an attempt go to this route now? In half-open state only one probe at a time.
    bool allow(Clock::time_point now = Clock::now());
    void success();
    // Returns true when this failure opened the breaker.
    bool failure(Clock::time_point now = Clock::now());
    // An allowed attempt ended without a verdict (cancelled): a probe slot is given back.
    void neutral();
    State state() const;

private:
    mutable std::mutex mu_;
    int threshold_;
    std::chrono::milliseconds base_cooldown_;
    std::chrono::milliseconds cooldown_;
    std::chrono::milliseconds max_cooldown_;
    State state_ = State::closed;
    int failures_ = 0;
    Clock::time_point open_until_{};
    bool probe_in_flight_ = false;
};

}  // namespace consilium
