#include "auth/throttle.hpp"

#include <algorithm>

namespace consilium {

using namespace std::chrono;

void LoginThrottle::prune(Clock::time_point now) {
    for (auto it = entries_.begin(); it != entries_.end();)
        it = (now - it->second.first_failure > s_.window && now >= it->second.locked_until) ? entries_.erase(it)
                                                                                            : std::next(it);
}

int64_t LoginThrottle::retry_after_ms(const std::string &key, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || now >= it->second.locked_until) return 0;
    return std::max<int64_t>(1, duration_cast<milliseconds>(it->second.locked_until - now).count());
}

void LoginThrottle::failure(const std::string &key, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    if (++calls_ % 4096 == 0) prune(now);
    Entry &e = entries_[key];
    if (e.failures == 0 || now - e.first_failure > s_.window) {
        e.failures = 0;
        e.first_failure = now;
    }
    ++e.failures;
    int over = e.failures - s_.free_failures;
    if (over <= 0) return;
    // 1 s, 2 s, 4 s, ... up to max_lockout.
    auto lock_for = s_.first_lockout * (int64_t{1} << std::min(over - 1, 30));
    e.locked_until = now + std::min<milliseconds>(duration_cast<milliseconds>(lock_for), s_.max_lockout);
}

void LoginThrottle::success(const std::string &key) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.erase(key);
}

}  // namespace consilium
