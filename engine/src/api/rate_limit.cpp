#include "api/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace consilium {

double burst_for(double per_minute, double fraction) { return std::max(3.0, per_minute * fraction); }

bool TokenBucket::take(double n, Clock::time_point now, int64_t &retry_after_ms) {
    if (!started_) {
        started_ = true;
        last_ = now;
    }
    double elapsed = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    if (tokens_ >= n) {
        tokens_ -= n;
        return true;
    }
    retry_after_ms = rate_ > 0 ? static_cast<int64_t>(std::ceil((n - tokens_) / rate_)) : 60000;
    return false;
}

bool AccountLimiter::take_message(const Principal &who, int64_t &retry_after_ms) {
    auto now = TokenBucket::Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    if (++calls_ % 1024 == 0) {
        // Forget accounts idle for ten minutes: their buckets are full again by then.
        for (auto it = entries_.begin(); it != entries_.end();)
            it = now - it->second.used > std::chrono::minutes(10) ? entries_.erase(it) : std::next(it);
    }
    auto [it, inserted] = entries_.try_emplace(who.account_id);
    if (inserted) {
        double per_minute = who.guest ? limits_.guest_account_messages_per_minute : limits_.account_messages_per_minute;
        it->second.bucket = TokenBucket(per_minute, burst_for(per_minute, limits_.burst_fraction));
    }
    it->second.used = now;
    return it->second.bucket.take(1, now, retry_after_ms);
}

}  // namespace consilium
