// consilium/sdk/core.hpp: the header-only C++ SDK over consilium/abi.h, common part.
//
// Everything here is compiled into each plugin; nothing links against the host. The SDK catches
// every exception inside the thunks it generates, so none crosses the ABI.
#pragma once

#include <consilium/abi.h>

#include <boost/dll/alias.hpp>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#define CONSILIUM_SDK_VERSION "1.0"

#ifndef CONSILIUM_BUILD_TYPE
#ifdef NDEBUG
#define CONSILIUM_BUILD_TYPE "release"
#else
#define CONSILIUM_BUILD_TYPE "debug"
#endif
#endif

// What `consilium plugin list` shows about how a plugin was built.
#define CONSILIUM_BUILD_SIGNATURE \
    "consilium-sdk " CONSILIUM_SDK_VERSION "; g++ " __VERSION__ "; " CONSILIUM_BUILD_TYPE

namespace consilium::sdk {

inline cs_str to_cs(std::string_view s) noexcept { return cs_str{s.data(), s.size()}; }
inline std::string_view to_sv(cs_str s) noexcept {
    return s.data ? std::string_view(s.data, s.size) : std::string_view();
}

// The error type plugins throw; the thunks turn it into a status and a message.
class Error : public std::runtime_error {
public:
    Error(cs_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    cs_status status() const noexcept { return status_; }

private:
    cs_status status_;
};

inline void set_error(cs_error *err, std::string_view message) noexcept {
    if (!err) return;
    size_t n = message.size() < CS_ERROR_CAPACITY - 1 ? message.size() : CS_ERROR_CAPACITY - 1;
    std::memcpy(err->message, message.data(), n);
    err->message[n] = '\0';
}

// Runs fn, turning any exception into a status and an error message. The one place where the
// SDK stops exceptions at the boundary.
template <class Fn>
cs_status guard(cs_error *err, Fn &&fn) noexcept {
    try {
        fn();
        return CS_OK;
    } catch (const Error &e) {
        set_error(err, e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        set_error(err, "out of memory");
        return CS_E_INTERNAL;
    } catch (const std::exception &e) {
        set_error(err, e.what());
        return CS_E_INTERNAL;
    } catch (...) {
        set_error(err, "unknown exception");
        return CS_E_INTERNAL;
    }
}

// For thunks that return nothing: swallow and report through the host log.
template <class Fn>
void guard_void(const cs_host_api *host, Fn &&fn) noexcept {
    cs_error err{};
    if (guard(&err, std::forward<Fn>(fn)) != CS_OK && host && host->log) {
        std::string msg = std::string("plugin callback failed: ") + err.message;
        host->log(host->ctx, CS_LOG_ERROR, to_cs(msg));
    }
}

// Comfortable access to the host services table.
// LIFETIME: borrows the table, which the host keeps valid until the instance is destroyed.
class Host {
public:
    explicit Host(const cs_host_api *api) : api_(api) {}

    const cs_host_api *api() const { return api_; }

    void log(cs_log_level level, std::string_view message) const {
        api_->log(api_->ctx, level, to_cs(message));
    }
    void info(std::string_view m) const { log(CS_LOG_INFO, m); }
    void warn(std::string_view m) const { log(CS_LOG_WARN, m); }
    void error(std::string_view m) const { log(CS_LOG_ERROR, m); }

    int64_t now_unix_ms() const { return api_->now_unix_ms(api_->ctx); }
    int64_t monotonic_ns() const { return api_->monotonic_ns(api_->ctx); }

    // Posts fn to the host's workers.
    void post(std::function<void()> fn) const {
        auto *heap = new std::function<void()>(std::move(fn));
        api_->post(api_->ctx, &Host::run_task, heap);
    }

    // A one-shot timer; fn(cancelled) runs exactly once.
    cs_timer *after(uint64_t delay_ms, std::function<void(bool cancelled)> fn) const {
        auto *heap = new std::function<void(bool)>(std::move(fn));
        return api_->timer_start(api_->ctx, delay_ms, &Host::run_timer, heap);
    }
    void cancel(cs_timer *timer) const {
        if (timer) api_->timer_cancel(api_->ctx, timer);
    }

    cs_metric *metric(cs_metric_kind kind, std::string_view name, std::string_view help) const {
        return api_->metric(api_->ctx, kind, to_cs(name), to_cs(help));
    }

    std::string data_dir() const { return api_->data_dir ? api_->data_dir : ""; }

private:
    static void run_task(void *arg) {
        auto *fn = static_cast<std::function<void()> *>(arg);
        try {
            (*fn)();
        } catch (...) {
        }
        delete fn;
    }
    static void run_timer(void *arg, int cancelled) {
        auto *fn = static_cast<std::function<void(bool)> *>(arg);
        try {
            (*fn)(cancelled != 0);
        } catch (...) {
        }
        delete fn;
    }

    const cs_host_api *api_;
};

}  // namespace consilium::sdk

// Exports the plugin's entry point through Boost.DLL. `descriptor` is a
// `const cs_plugin_descriptor` with static storage duration.
#define CONSILIUM_EXPORT_DESCRIPTOR(descriptor)                                  \
    extern "C" const cs_plugin_descriptor *consilium_plugin_entry_v1_fn(void) { \
        return &(descriptor);                                                    \
    }                                                                            \
    BOOST_DLL_ALIAS(consilium_plugin_entry_v1_fn, consilium_plugin_entry_v1)
