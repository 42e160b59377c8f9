// The host services table (cs_host_api) one plugin instance gets: logging tagged with the
// instance's name, the engine's executor, metrics, its data directory, and for transports the
// front API. LIFETIME: outlives the plugin instance it serves.
#pragma once

#include <consilium/abi.h>

#include "exec/executor.hpp"
#include "util/metrics.hpp"

#include <string>

namespace consilium {

class HostServices {
public:
    HostServices(std::string instance_name, Executor &executor, metrics::Registry &metrics,
                 std::string data_dir, const cs_front_api *front = nullptr,
                 cs_host_ctx *front_ctx = nullptr);
    HostServices(const HostServices &) = delete;
    HostServices &operator=(const HostServices &) = delete;

    const cs_host_api *api() const { return &api_; }
    const std::string &name() const { return name_; }
    // For the front API: the context the transport passes back (the engine's).
    cs_host_ctx *front_ctx() const { return front_ctx_; }

private:
    static void log(cs_host_ctx *ctx, cs_log_level level, cs_str message);
    static int64_t now_unix_ms(cs_host_ctx *ctx);
    static int64_t monotonic_ns(cs_host_ctx *ctx);
    static void post(cs_host_ctx *ctx, cs_task_fn fn, void *arg);
    static cs_timer *timer_start(cs_host_ctx *ctx, uint64_t delay_ms, cs_timer_fn fn, void *arg);
    static void timer_cancel(cs_host_ctx *ctx, cs_timer *timer);
    static cs_metric *metric(cs_host_ctx *ctx, cs_metric_kind kind, cs_str name, cs_str help);
    static void metric_add(cs_metric *m, double v);
    static void metric_set(cs_metric *m, double v);
    static void metric_observe(cs_metric *m, double v);

    std::string name_;
    Executor &executor_;
    metrics::Registry &metrics_;
    std::string data_dir_;
    cs_host_ctx *front_ctx_;
    cs_host_api api_{};
};

// Recovers the HostServices behind a cs_host_ctx handed to a plugin.
HostServices *services_of(cs_host_ctx *ctx);

}  // namespace consilium
