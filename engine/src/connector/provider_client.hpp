// One provider plugin instance seen from the engine: start a stream, cancel it, and release it
// once its terminal event has been delivered (never from inside the event callback).
#pragma once

#include <consilium/abi.h>

#include "exec/executor.hpp"
#include "plugin/instance.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace consilium {

struct StreamEvent {
    cs_stream_event_type type = CS_EV_TEXT;
    std::string text;
    cs_stop_reason stop_reason = CS_STOP_END_TURN;
    cs_error_kind error_kind = CS_ERR_INTERNAL;
    int http_status = 0;
    int64_t retry_after_ms = -1;
    int64_t input_tokens = 0;
    int64_t output_tokens = 0;
};

class ProviderStream;
class ProviderRelay;

class ProviderClient {
public:
    ProviderClient(std::shared_ptr<PluginInstance> instance, Executor &executor, int max_concurrent = 64);
    const std::string &name() const { return instance_->name(); }
    // Streams in flight now, and whether one more may start.
    int in_flight() const { return in_flight_.load(); }
    bool has_capacity() const { return in_flight_.load() < max_concurrent_; }

    // Starts a stream. on_event runs on the plugin's threads, one event at a time, and must not
    // block; after the terminal event it is never called again. Returns null and sets error
    // when the plugin refused the request at once (no event follows then).
    std::shared_ptr<ProviderStream> start(const std::string &request_json,
                                          std::function<void(const StreamEvent &)> on_event, std::string &error);

    // Voice (ABI 1.1). False for plugins built before it or without voice.
    bool has_voice_functions() const;
    // Mints a client credential; nullopt and error when refused (status in *status).
    std::optional<std::string> voice_session(const std::string &request_json, std::string &error,
                                             cs_status *status = nullptr);
    // Opens a relay. on_frame/on_close run on the plugin's threads (one at a time); exactly one
    // on_close ends it. Null and error when refused.
    std::shared_ptr<ProviderRelay> open_relay(const std::string &request_json, std::function<void(std::string_view)> on_frame,
                                              std::function<void(int, const std::string &)> on_close, std::string &error);

private:
    friend class ProviderStream;
    friend class ProviderRelay;
    std::shared_ptr<PluginInstance> instance_;
    Executor &executor_;
    int max_concurrent_;
    std::atomic<int> in_flight_{0};
};

class ProviderStream : public std::enable_shared_from_this<ProviderStream> {
public:
    ~ProviderStream();
    void cancel();

private:
    friend class ProviderClient;
    struct SinkCtx;
    static void on_event(void *ctx, const cs_stream_event *ev);

    std::shared_ptr<PluginInstance> instance_;
    Executor *executor_ = nullptr;
    cs_stream *stream_ = nullptr;
    std::atomic<bool> terminal_{false};
    std::atomic<bool> cancelled_{false};
    std::function<void(const StreamEvent &)> callback_;
    std::unique_ptr<SinkCtx> sink_ctx_;
    cs_stream_sink sink_{};
};

// One voice relay. send() and close() from any thread; released once its close was delivered.
class ProviderRelay : public std::enable_shared_from_this<ProviderRelay> {
public:
    ~ProviderRelay();
    void send(std::string_view frame);
    void close();
    bool closed() const { return closed_.load(); }

private:
    friend class ProviderClient;
    struct SinkCtx;
    static void on_frame(void *ctx, cs_str frame);
    static void on_close(void *ctx, int code, cs_str reason);

    std::shared_ptr<PluginInstance> instance_;
    Executor *executor_ = nullptr;
    cs_relay *relay_ = nullptr;
    std::atomic<bool> closed_{false};
    std::function<void(std::string_view)> frame_cb_;
    std::function<void(int, const std::string &)> close_cb_;
    std::unique_ptr<SinkCtx> sink_ctx_;
    cs_relay_sink sink_{};
    std::shared_ptr<ProviderRelay> self_;  // an open relay keeps itself until its close arrives
};

const char *error_kind_name(cs_error_kind k);
const char *stop_reason_name(cs_stop_reason r);

}  // namespace consilium
