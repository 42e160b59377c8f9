// The engine's executor: a pool of worker threads with one-shot timers, and strands that run a
// sequence of tasks one at a time (one strand per consultation, per chat session). No I/O
// library inside; the host hands the same pool to plugins through cs_host_api.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace consilium {

using Task = std::function<void()>;
using TimerFn = std::function<void(bool cancelled)>;
using TimerId = uint64_t;

class Executor {
public:
    virtual ~Executor() = default;
    virtual void post(Task task) = 0;
    // Runs fn(false) after delay, or fn(true) if cancelled first. Exactly once either way.
    virtual TimerId after(std::chrono::milliseconds delay, TimerFn fn) = 0;
    virtual void cancel(TimerId id) = 0;
};

class ThreadPool final : public Executor {
public:
    explicit ThreadPool(unsigned threads);
    ~ThreadPool() override;
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool &operator=(const ThreadPool &) = delete;

    void post(Task task) override;
    TimerId after(std::chrono::milliseconds delay, TimerFn fn) override;
    void cancel(TimerId id) override;
    // Cancels every timer (their fn runs with cancelled = true), runs queued tasks, joins.
    void stop();
    unsigned size() const { return static_cast<unsigned>(workers_.size()); }

private:
    using Clock = std::chrono::steady_clock;
    struct Timer {
        Clock::time_point when;
        TimerFn fn;
    };
    void work();
    void tick();

    std::mutex mu_;
    std::condition_variable cv_;
    std::condition_variable timer_cv_;
    std::deque<Task> tasks_;
    std::multimap<Clock::time_point, TimerId> by_time_;
    std::unordered_map<TimerId, std::pair<std::multimap<Clock::time_point, TimerId>::iterator, TimerFn>>
        timers_;
    TimerId next_timer_ = 1;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
    std::thread timer_thread_;
};

// Runs posted tasks one at a time, in order, on the executor's threads.
class Strand : public std::enable_shared_from_this<Strand> {
public:
    static std::shared_ptr<Strand> make(Executor &ex) { return std::shared_ptr<Strand>(new Strand(ex)); }
    void post(Task task);
    // Runs on this strand after delay (or with cancelled = true).
    TimerId after(std::chrono::milliseconds delay, TimerFn fn);
    void cancel(TimerId id) { ex_.cancel(id); }
    bool running_here() const;
    Executor &executor() { return ex_; }

private:
    explicit Strand(Executor &ex) : ex_(ex) {}
    void run();

    Executor &ex_;
    std::mutex mu_;
    std::deque<Task> queue_;
    bool scheduled_ = false;
};

}  // namespace consilium
