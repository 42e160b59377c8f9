#include "connector/provider_client.hpp"

#include "util/log.hpp"

#include <mutex>

namespace consilium {

const char *error_kind_name(cs_error_kind k) {
    switch (k) {
    case CS_ERR_RATE_LIMITED: return "rate_limited";
    case CS_ERR_OVERLOADED: return "overloaded";
    case CS_ERR_SERVER: return "server_error";
    case CS_ERR_TIMEOUT: return "timeout";
    case CS_ERR_CONNECTION: return "connection";
    case CS_ERR_CONTEXT_TOO_LONG: return "context_too_long";
    case CS_ERR_CONTENT_FILTER: return "content_filter";
    case CS_ERR_AUTH: return "auth";
    case CS_ERR_BAD_REQUEST: return "bad_request";
    case CS_ERR_NOT_FOUND: return "not_found";
    case CS_ERR_PROTOCOL: return "protocol";
    case CS_ERR_INTERNAL: return "internal";
    }
    return "internal";
}

const char *stop_reason_name(cs_stop_reason r) {
    switch (r) {
    case CS_STOP_END_TURN: return "end_turn";
    case CS_STOP_MAX_TOKENS: return "max_tokens";
    case CS_STOP_STOP_SEQUENCE: return "end_turn";
    case CS_STOP_REFUSAL: return "refusal";
    case CS_STOP_CANCELLED: return "cancelled";
    case CS_STOP_CONTEXT_EXCEEDED: return "max_tokens";
    }
    return "error";
}

// What the plugin's sink points to. It lives as long as the ProviderStream, which lives at least
// until the terminal event was delivered and the release ran.
struct ProviderStream::SinkCtx {
    std::weak_ptr<ProviderStream> stream;
};

ProviderClient::ProviderClient(std::shared_ptr<PluginInstance> instance, Executor &executor, int max_concurrent)
    : instance_(std::move(instance)), executor_(executor), max_concurrent_(max_concurrent) {}

std::shared_ptr<ProviderStream> ProviderClient::start(const std::string &request_json,
                                                      std::function<void(const StreamEvent &)> on_event,
                                                      std::string &error) {
    auto s = std::shared_ptr<ProviderStream>(new ProviderStream());
    s->instance_ = instance_;
    s->executor_ = &executor_;
    // Counts the stream in flight until its terminal event.
    ++in_flight_;
    s->callback_ = [this, cb = std::move(on_event)](const StreamEvent &e) {
        if (e.type == CS_EV_END || e.type == CS_EV_ERROR) --in_flight_;
        cb(e);
    };
    s->sink_ctx_ = std::make_unique<ProviderStream::SinkCtx>();
    s->sink_ctx_->stream = s;
    s->sink_ = cs_stream_sink{sizeof(cs_stream_sink), s->sink_ctx_.get(), &ProviderStream::on_event};
    // The plugin may deliver events (even the terminal one) before stream_start returns.
    auto vt = instance_->vtable<cs_provider_vtable>();
    cs_error err{};
    cs_stream *handle = nullptr;
    cs_status st = vt->stream_start(instance_->instance(), cs_str{request_json.data(), request_json.size()},
                                    &s->sink_, &handle, &err);
    if (st != CS_OK) {
        error = err.message[0] ? err.message : "the provider refused the request";
        s->terminal_ = true;  // nothing to release
        --in_flight_;
        return nullptr;
    }
    s->stream_ = handle;
    return s;
}

void ProviderStream::on_event(void *ctx, const cs_stream_event *ev) {
    auto *c = static_cast<SinkCtx *>(ctx);
    std::shared_ptr<ProviderStream> self = c->stream.lock();
    if (!self || self->terminal_) return;  // dropped, or nothing after the end
    StreamEvent e;
    e.type = static_cast<cs_stream_event_type>(ev->type);
    if (ev->text.data) e.text.assign(ev->text.data, ev->text.size);
    e.stop_reason = static_cast<cs_stop_reason>(ev->stop_reason);
    e.error_kind = static_cast<cs_error_kind>(ev->error_kind);
    e.http_status = ev->http_status;
    e.retry_after_ms = ev->retry_after_ms;
    e.input_tokens = ev->input_tokens;
    e.output_tokens = ev->output_tokens;
    bool terminal = e.type == CS_EV_END || e.type == CS_EV_ERROR;
    if (terminal) self->terminal_ = true;
    if (self->callback_) self->callback_(e);
}

void ProviderStream::cancel() {
    if (terminal_ || cancelled_.exchange(true)) return;
    if (stream_) instance_->vtable<cs_provider_vtable>()->stream_cancel(instance_->instance(), stream_);
}

ProviderStream::~ProviderStream() {
    if (!stream_) return;
    auto instance = instance_;
    cs_stream *handle = stream_;
    if (!terminal_) {
        // Dropped before its end (the owner should not do this): cancel, and leak the sink
        // context on purpose, since the plugin may still deliver the terminal event to it.
        instance->vtable<cs_provider_vtable>()->stream_cancel(instance->instance(), handle);
        (void)sink_ctx_.release();
        log::warn("connector", "provider stream dropped before its end", {{"provider", instance->name()}});
        return;
    }
    // Released on a fresh task: never from inside the plugin's on_event call, even when the
    // last reference goes there.
    executor_->post([instance, handle] {
        instance->vtable<cs_provider_vtable>()->stream_release(instance->instance(), handle);
    });
}

}  // namespace consilium

namespace consilium {

struct ProviderRelay::SinkCtx {
    std::weak_ptr<ProviderRelay> relay;
};

bool ProviderClient::has_voice_functions() const {
    auto *vt = instance_->vtable<cs_provider_vtable>();
    return vt->struct_size >= sizeof(cs_provider_vtable) && vt->voice_session && vt->relay_open && vt->relay_send &&
           vt->relay_close && vt->relay_release;
}

std::optional<std::string> ProviderClient::voice_session(const std::string &request_json, std::string &error,
                                                         cs_status *status) {
    if (!has_voice_functions()) {
        error = "provider '" + name() + "' has no realtime voice (plugin built before ABI 1.1)";
        if (status) *status = CS_E_UNSUPPORTED;
        return std::nullopt;
    }
    std::string out;
    cs_error err{};
    auto *vt = instance_->vtable<cs_provider_vtable>();
    cs_status st = vt->voice_session(
        instance_->instance(), cs_str{request_json.data(), request_json.size()},
        [](void *ctx, cs_str json) { static_cast<std::string *>(ctx)->assign(json.data, json.size); }, &out, &err);
    if (status) *status = st;
    if (st != CS_OK) {
        error = err.message[0] ? err.message : "the provider refused the voice session";
        return std::nullopt;
    }
    return out;
}

std::shared_ptr<ProviderRelay> ProviderClient::open_relay(const std::string &request_json,
                                                          std::function<void(std::string_view)> on_frame,
                                                          std::function<void(int, const std::string &)> on_close,
                                                          std::string &error) {
    if (!has_voice_functions()) {
        error = "provider '" + name() + "' has no realtime voice";
        return nullptr;
    }
    auto r = std::shared_ptr<ProviderRelay>(new ProviderRelay());
    r->instance_ = instance_;
    r->executor_ = &executor_;
    r->frame_cb_ = std::move(on_frame);
    r->close_cb_ = std::move(on_close);
    r->sink_ctx_ = std::make_unique<ProviderRelay::SinkCtx>();
    r->sink_ctx_->relay = r;
    r->sink_ = cs_relay_sink{sizeof(cs_relay_sink), r->sink_ctx_.get(), &ProviderRelay::on_frame, &ProviderRelay::on_close};
    cs_error err{};
    cs_relay *handle = nullptr;
    auto *vt = instance_->vtable<cs_provider_vtable>();
    if (vt->relay_open(instance_->instance(), cs_str{request_json.data(), request_json.size()}, &r->sink_, &handle, &err) !=
        CS_OK) {
        error = err.message[0] ? err.message : "the provider refused the relay";
        r->closed_ = true;
        return nullptr;
    }
    r->relay_ = handle;
    if (!r->closed_) r->self_ = r;  // released after its on_close, whoever still holds it
    return r;
}

void ProviderRelay::on_frame(void *ctx, cs_str frame) {
    auto self = static_cast<SinkCtx *>(ctx)->relay.lock();
    if (!self || self->closed_) return;
    if (self->frame_cb_) self->frame_cb_(std::string_view(frame.data ? frame.data : "", frame.data ? frame.size : 0));
}

void ProviderRelay::on_close(void *ctx, int code, cs_str reason) {
    auto self = static_cast<SinkCtx *>(ctx)->relay.lock();
    if (!self || self->closed_.exchange(true)) return;
    if (self->close_cb_) self->close_cb_(code, std::string(reason.data ? reason.data : "", reason.data ? reason.size : 0));
    self->self_.reset();  // the release follows when the last holder lets go
}

void ProviderRelay::send(std::string_view frame) {
    if (closed_ || !relay_) return;
    instance_->vtable<cs_provider_vtable>()->relay_send(instance_->instance(), relay_, cs_str{frame.data(), frame.size()});
}

void ProviderRelay::close() {
    if (!relay_) return;
    instance_->vtable<cs_provider_vtable>()->relay_close(instance_->instance(), relay_);
}

ProviderRelay::~ProviderRelay() {
    if (!relay_) return;
    auto instance = instance_;
    cs_relay *handle = relay_;
    if (!closed_) {
        // Dropped before its close: ask for it, and leak the sink context on purpose (the plugin
        // may still deliver on_close to it).
        instance->vtable<cs_provider_vtable>()->relay_close(instance->instance(), handle);
        (void)sink_ctx_.release();
        return;
    }
    executor_->post([instance, handle] {
        instance->vtable<cs_provider_vtable>()->relay_release(instance->instance(), handle);
    });
}

}  // namespace consilium
