#include "exec/executor.hpp"

#include "util/log.hpp"

#include <exception>

namespace consilium {

namespace {
thread_local const Strand *t_current_strand = nullptr;

void run_guarded(const Task &t) {
    try {
        t();
    } catch (const std::exception &e) {
        log::error("executor", "task threw", {{"what", e.what()}});
    } catch (...) {
        log::error("executor", "task threw a non-exception");
    }
}
}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
    if (threads == 0) threads = 1;
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
    timer_thread_ = std::thread([this] { tick(); });
}

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::post(Task task) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_ && workers_.empty()) return;
        tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
}

TimerId ThreadPool::after(std::chrono::milliseconds delay, TimerFn fn) {
    TimerId id;
    bool earliest = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) {
            tasks_.push_back([fn = std::move(fn)] { fn(true); });
            cv_.notify_one();
            return 0;
        }
        id = next_timer_++;
        auto it = by_time_.emplace(Clock::now() + delay, id);
        timers_.emplace(id, std::make_pair(it, std::move(fn)));
        // The timer thread sleeps until the earliest deadline: wake it only when that moved.
        earliest = it == by_time_.begin();
    }
    if (earliest) timer_cv_.notify_one();
    return id;
}

void ThreadPool::cancel(TimerId id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    by_time_.erase(it->second.first);
    TimerFn fn = std::move(it->second.second);
    timers_.erase(it);
    tasks_.push_back([fn = std::move(fn)] { fn(true); });
    cv_.notify_one();
}

void ThreadPool::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        stopping_ = true;
        for (auto &[id, entry] : timers_) {
            tasks_.push_back([fn = std::move(entry.second)] { fn(true); });
        }
        timers_.clear();
        by_time_.clear();
    }
    cv_.notify_all();
    timer_cv_.notify_all();
    for (auto &t : workers_) t.join();
    if (timer_thread_.joinable()) timer_thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    workers_.clear();
}

void ThreadPool::work() {
    for (;;) {
        Task task;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
            if (tasks_.empty()) return;  // stopping and drained
            task = std::move(tasks_.front());
            tasks_.pop_front();
        }
        run_guarded(task);
    }
}

void ThreadPool::tick() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
        if (by_time_.empty()) {
            timer_cv_.wait(lock);
            continue;
        }
        auto when = by_time_.begin()->first;
        if (Clock::now() < when) {
            timer_cv_.wait_until(lock, when);
            continue;
        }
        size_t fired = 0;
        auto now = Clock::now();
        while (!by_time_.empty() && by_time_.begin()->first <= now) {
            TimerId id = by_time_.begin()->second;
            by_time_.erase(by_time_.begin());
            auto it = timers_.find(id);
            if (it == timers_.end()) continue;
            TimerFn fn = std::move(it->second.second);
            timers_.erase(it);
            tasks_.push_back([fn = std::move(fn)] { fn(false); });
            ++fired;
        }
        // One worker per task: waking them all for one timer only makes them race for it.
        if (fired == 1) cv_.notify_one();
        else if (fired > 1) cv_.notify_all();
    }
}

void Strand::post(Task task) {
    bool schedule = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(task));
        if (!scheduled_) {
            scheduled_ = true;
            schedule = true;
        }
    }
    if (schedule) ex_.post([self = shared_from_this()] { self->run(); });
}

TimerId Strand::after(std::chrono::milliseconds delay, TimerFn fn) {
    return ex_.after(delay, [self = shared_from_this(), fn = std::move(fn)](bool cancelled) {
        self->post([fn, cancelled] { fn(cancelled); });
    });
}

bool Strand::running_here() const { return t_current_strand == this; }

void Strand::run() {
    // Run a bounded batch, then yield the thread so one busy strand cannot starve the others.
    for (int i = 0; i < 64; ++i) {
        Task task;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (queue_.empty()) {
                scheduled_ = false;
                return;
            }
            task = std::move(queue_.front());
            queue_.pop_front();
        }
        const Strand *prev = t_current_strand;
        t_current_strand = this;
        run_guarded(task);
        t_current_strand = prev;
    }
    ex_.post([self = shared_from_this()] { self->run(); });
}

}  // namespace consilium
