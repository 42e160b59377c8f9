#include "exec/executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace consilium {
namespace {

TEST(ThreadPool, TimersFireOrCancelExactlyOnce) {
    ThreadPool pool(2);
    std::promise<bool> fired, cancelled;
    pool.after(std::chrono::milliseconds(10), [&](bool c) { fired.set_value(c); });
    TimerId t = pool.after(std::chrono::seconds(60), [&](bool c) { cancelled.set_value(c); });
    pool.cancel(t);
    EXPECT_FALSE(fired.get_future().get());
    EXPECT_TRUE(cancelled.get_future().get());
    pool.stop();
}

TEST(ThreadPool, StopCancelsPendingTimers) {
    std::atomic<int> cancelled{0};
    {
        ThreadPool pool(2);
        for (int i = 0; i < 10; ++i) pool.after(std::chrono::hours(1), [&](bool c) { cancelled += c ? 1 : 0; });
        pool.stop();
    }
    EXPECT_EQ(cancelled, 10);
}

TEST(Strand, RunsTasksOneAtATimeInOrder) {
    ThreadPool pool(4);
    auto strand = Strand::make(pool);
    std::vector<int> seen;
    std::atomic<int> inside{0};
    std::atomic<bool> overlap{false};
    std::promise<void> done;
    for (int i = 0; i < 1000; ++i) {
        strand->post([&, i] {
            if (++inside > 1) overlap = true;
            seen.push_back(i);
            --inside;
            if (i == 999) done.set_value();
        });
    }
    done.get_future().get();
    EXPECT_FALSE(overlap);
    ASSERT_EQ(seen.size(), 1000u);
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], i);
    pool.stop();
}

}  // namespace
}  // namespace consilium
