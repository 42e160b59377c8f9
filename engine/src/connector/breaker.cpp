#include "connector/breaker.hpp"

#include <algorithm>

namespace consilium {

bool CircuitBreaker::allow(Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (state_) {
    case State::closed: return true;
    case State::open:
        if (now < open_until_) return false;
        state_ = State::half_open;
        probe_in_flight_ = true;
        return true;
    case State::half_open:
        if (probe_in_flight_) return false;
        probe_in_flight_ = true;
        return true;
    }
    return true;
}

void CircuitBreaker::success() {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::closed;
    failures_ = 0;
    probe_in_flight_ = false;
    cooldown_ = base_cooldown_;
}

bool CircuitBreaker::failure(Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::half_open) {
        // The probe failed: back off further.
        cooldown_ = std::min(cooldown_ * 2, max_cooldown_);
        state_ = State::open;
        open_until_ = now + cooldown_;
        probe_in_flight_ = false;
        return true;
    }
    if (state_ == State::open) return false;
    if (++failures_ < threshold_) return false;
    state_ = State::open;
    open_until_ = now + cooldown_;
    return true;
}

void CircuitBreaker::neutral() {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::half_open) probe_in_flight_ = false;
}

CircuitBreaker::State CircuitBreaker::state() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
}

}  // namespace consilium
