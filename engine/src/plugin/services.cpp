#include "plugin/services.hpp"

#include "util/log.hpp"

#include <chrono>

namespace consilium {

namespace {
// The cs_host_ctx a plugin gets is the HostServices itself, behind an opaque type.
cs_host_ctx *as_ctx(HostServices *s) { return reinterpret_cast<cs_host_ctx *>(s); }
}  // namespace

HostServices *services_of(cs_host_ctx *ctx) { return reinterpret_cast<HostServices *>(ctx); }

HostServices::HostServices(std::string instance_name, Executor &executor,
                           metrics::Registry &metrics, std::string data_dir,
                           const cs_front_api *front, cs_host_ctx *front_ctx)
    : name_(std::move(instance_name)), executor_(executor), metrics_(metrics),
      data_dir_(std::move(data_dir)), front_ctx_(front_ctx) {
    api_.struct_size = sizeof(cs_host_api);
    api_.abi_major = CS_ABI_MAJOR;
    api_.abi_minor = CS_ABI_MINOR;
    api_.ctx = as_ctx(this);
    api_.log = &HostServices::log;
    api_.now_unix_ms = &HostServices::now_unix_ms;
    api_.monotonic_ns = &HostServices::monotonic_ns;
    api_.post = &HostServices::post;
    api_.timer_start = &HostServices::timer_start;
    api_.timer_cancel = &HostServices::timer_cancel;
    api_.metric = &HostServices::metric;
    api_.metric_add = &HostServices::metric_add;
    api_.metric_set = &HostServices::metric_set;
    api_.metric_observe = &HostServices::metric_observe;
    api_.front = front;
    api_.data_dir = data_dir_.c_str();
}

void HostServices::log(cs_host_ctx *ctx, cs_log_level level, cs_str message) {
    auto *self = services_of(ctx);
    std::string_view m(message.data ? message.data : "", message.data ? message.size : 0);
    std::string component = "plugin:" + self->name_;
    switch (level) {
    case CS_LOG_DEBUG: log::debug(component, m); break;
    case CS_LOG_INFO: log::info(component, m); break;
    case CS_LOG_WARN: log::warn(component, m); break;
    default: log::error(component, m); break;
    }
}

int64_t HostServices::now_unix_ms(cs_host_ctx *) {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t HostServices::monotonic_ns(cs_host_ctx *) {
    using namespace std::chrono;
    return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

void HostServices::post(cs_host_ctx *ctx, cs_task_fn fn, void *arg) {
    services_of(ctx)->executor_.post([fn, arg] { fn(arg); });
}

cs_timer *HostServices::timer_start(cs_host_ctx *ctx, uint64_t delay_ms, cs_timer_fn fn, void *arg) {
    TimerId id = services_of(ctx)->executor_.after(std::chrono::milliseconds(delay_ms),
                                                   [fn, arg](bool cancelled) { fn(arg, cancelled ? 1 : 0); });
    return reinterpret_cast<cs_timer *>(static_cast<uintptr_t>(id));
}

void HostServices::timer_cancel(cs_host_ctx *ctx, cs_timer *timer) {
    services_of(ctx)->executor_.cancel(static_cast<TimerId>(reinterpret_cast<uintptr_t>(timer)));
}

cs_metric *HostServices::metric(cs_host_ctx *ctx, cs_metric_kind kind, cs_str name, cs_str help) {
    auto *self = services_of(ctx);
    metrics::Kind k = kind == CS_METRIC_COUNTER ? metrics::Kind::counter
                      : kind == CS_METRIC_GAUGE ? metrics::Kind::gauge
                                                : metrics::Kind::histogram;
    std::string n(name.data, name.size);
    std::string h(help.data, help.size);
    try {
        return reinterpret_cast<cs_metric *>(&self->metrics_.get(k, n, h));
    } catch (const std::exception &e) {
        log::error("plugin:" + self->name_, "metric refused", {{"name", n}, {"why", e.what()}});
        return nullptr;
    }
}

void HostServices::metric_add(cs_metric *m, double v) {
    if (m) reinterpret_cast<metrics::Metric *>(m)->add(v);
}
void HostServices::metric_set(cs_metric *m, double v) {
    if (m) reinterpret_cast<metrics::Metric *>(m)->set(v);
}
void HostServices::metric_observe(cs_metric *m, double v) {
    if (m) reinterpret_cast<metrics::Metric *>(m)->observe(v);
}

}  // namespace consilium
