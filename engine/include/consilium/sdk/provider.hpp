// consilium/sdk/provider.hpp: writing a provider plugin in C++.
//
//   class MyProvider : public consilium::sdk::Provider {
//   public:
//       MyProvider(consilium::sdk::Host host, const std::string& path, const json& options);
//       std::unique_ptr<consilium::sdk::Stream> start(const json& request,
//                                                    consilium::sdk::StreamSink sink) override;
//   };
//   CONSILIUM_PROVIDER_PLUGIN(MyProvider, "myprovider", "1.0.0", "What it talks to")
//
// See docs/plugins.md for the model request and the rules a stream follows.
#pragma once

#include <consilium/sdk/options.hpp>

#include <atomic>
#include <memory>
#include <mutex>

namespace consilium::sdk {

// The sending side of one stream. Copies share state. After the first terminal event (end or
// error) every further call is ignored, so a plugin cannot send two ends by mistake.
class StreamSink {
public:
    StreamSink() = default;
    explicit StreamSink(const cs_stream_sink *sink) : state_(std::make_shared<State>()) {
        state_->sink = *sink;
    }

    bool done() const {
        std::lock_guard<std::mutex> lock(state_->mu);
        return state_->done;
    }
    void text(std::string_view delta) const {
        Ev e = base(CS_EV_TEXT, delta);
        emit(e);
    }
    void citation(const json &c) const {
        Ev e = base(CS_EV_CITATION, c.dump());
        emit(e);
    }
    void model(std::string_view upstream_model) const {
        Ev e = base(CS_EV_MODEL, upstream_model);
        emit(e);
    }
    void usage(int64_t input_tokens, int64_t output_tokens) const {
        Ev e = base(CS_EV_USAGE, {});
        e.ev.input_tokens = input_tokens;
        e.ev.output_tokens = output_tokens;
        emit(e);
    }
    void end(cs_stop_reason reason) const {
        Ev e = base(CS_EV_END, {});
        e.ev.stop_reason = reason;
        emit(e, true);
    }
    void error(cs_error_kind kind, std::string_view message, int http_status = 0,
               int64_t retry_after_ms = -1) const {
        Ev e = base(CS_EV_ERROR, message);
        e.ev.error_kind = kind;
        e.ev.http_status = http_status;
        e.ev.retry_after_ms = retry_after_ms;
        emit(e, true);
    }

private:
    struct State {
        cs_stream_sink sink{};
        std::mutex mu;
        bool done = false;
    };
    struct Ev {
        cs_stream_event ev;
        std::string owned;
    };
    static Ev base(cs_stream_event_type type, std::string_view text) {
        Ev e{};
        e.ev.struct_size = sizeof(cs_stream_event);
        e.ev.type = type;
        e.ev.retry_after_ms = -1;
        e.owned.assign(text.data(), text.size());
        return e;
    }
    void emit(Ev &e, bool terminal = false) const {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (state_->done) return;
        if (terminal) state_->done = true;
        e.ev.text = to_cs(e.owned);
        state_->sink.on_event(state_->sink.ctx, &e.ev);
    }

    std::shared_ptr<State> state_;
};

// One running stream. cancel() may be called from any thread, any number of times.
class Stream {
public:
    virtual ~Stream() = default;
    virtual void cancel() = 0;
};

// The sending side of a voice relay: frames from the provider, then exactly one close.
class RelaySink {
public:
    RelaySink() = default;
    explicit RelaySink(const cs_relay_sink *sink) : state_(std::make_shared<State>()) { state_->sink = *sink; }
    void frame(std::string_view text) const {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (state_->closed) return;
        state_->sink.on_frame(state_->sink.ctx, to_cs(text));
    }
    void close(int code, std::string_view reason) const {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (state_->closed) return;
        state_->closed = true;
        state_->sink.on_close(state_->sink.ctx, code, to_cs(reason));
    }
    bool closed() const {
        std::lock_guard<std::mutex> lock(state_->mu);
        return state_->closed;
    }

private:
    struct State {
        cs_relay_sink sink{};
        std::mutex mu;
        bool closed = false;
    };
    std::shared_ptr<State> state_;
};

// One open voice relay. send() and close() may be called from any thread.
class Relay {
public:
    virtual ~Relay() = default;
    virtual void send(std::string_view frame) = 0;
    virtual void close() = 0;
};

class Provider {
public:
    virtual ~Provider() = default;
    // Starts a stream for `request` (the model request of docs/plugins.md). Throw sdk::Error to
    // refuse it before any event; once a Stream is returned, the sink gets exactly one end.
    virtual std::unique_ptr<Stream> start(const json &request, StreamSink sink) = 0;
    // Voice (ABI 1.1): override when the provider has a realtime voice service.
    virtual json voice_session(const json &) {
        throw Error(CS_E_UNSUPPORTED, "this provider has no realtime voice");
    }
    virtual std::unique_ptr<Relay> open_relay(const json &, RelaySink) {
        throw Error(CS_E_UNSUPPORTED, "this provider has no realtime voice");
    }
};

// The C thunks for a Provider subclass T constructible as T(Host, std::string path, json options)
// after T::defaults() (a static json of its options with their defaults) validated them.
template <class T>
struct ProviderThunks {
    struct Instance {
        Host host;
        std::unique_ptr<T> impl;
    };

    static cs_status create(const cs_host_api *host, cs_str path, cs_str options, void **out,
                            cs_error *err) {
        return guard(err, [&] {
            std::string p(to_sv(path));
            json opts = parse_options(path, options, T::defaults());
            auto inst = std::make_unique<Instance>(Instance{Host(host), nullptr});
            inst->impl = std::make_unique<T>(inst->host, p, opts);
            *out = inst.release();
        });
    }
    static void destroy(void *instance) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { delete inst; });
    }
    static cs_status stream_start(void *instance, cs_str request_json, const cs_stream_sink *sink,
                                  cs_stream **out, cs_error *err) {
        auto *inst = static_cast<Instance *>(instance);
        return guard(err, [&] {
            json request = json::parse(to_sv(request_json), nullptr, false);
            if (request.is_discarded() || !request.is_object())
                throw Error(CS_E_INVALID, "model request is not a JSON object");
            std::unique_ptr<Stream> s = inst->impl->start(request, StreamSink(sink));
            if (!s) throw Error(CS_E_INTERNAL, "provider returned no stream");
            *out = reinterpret_cast<cs_stream *>(s.release());
        });
    }
    static void stream_cancel(void *instance, cs_stream *stream) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { reinterpret_cast<Stream *>(stream)->cancel(); });
    }
    static void stream_release(void *instance, cs_stream *stream) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { delete reinterpret_cast<Stream *>(stream); });
    }

    static cs_status voice_session(void *instance, cs_str request_json, cs_json_out_fn respond, void *ctx,
                                   cs_error *err) {
        auto *inst = static_cast<Instance *>(instance);
        return guard(err, [&] {
            json request = json::parse(to_sv(request_json), nullptr, false);
            if (request.is_discarded() || !request.is_object())
                throw Error(CS_E_INVALID, "voice request is not a JSON object");
            std::string out = inst->impl->voice_session(request).dump();
            respond(ctx, to_cs(out));
        });
    }
    static cs_status relay_open(void *instance, cs_str request_json, const cs_relay_sink *sink, cs_relay **out,
                                cs_error *err) {
        auto *inst = static_cast<Instance *>(instance);
        return guard(err, [&] {
            json request = json::parse(to_sv(request_json), nullptr, false);
            if (request.is_discarded() || !request.is_object())
                throw Error(CS_E_INVALID, "relay request is not a JSON object");
            std::unique_ptr<Relay> r = inst->impl->open_relay(request, RelaySink(sink));
            if (!r) throw Error(CS_E_INTERNAL, "provider returned no relay");
            *out = reinterpret_cast<cs_relay *>(r.release());
        });
    }
    static void relay_send(void *instance, cs_relay *relay, cs_str frame) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { reinterpret_cast<Relay *>(relay)->send(to_sv(frame)); });
    }
    static void relay_close(void *instance, cs_relay *relay) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { reinterpret_cast<Relay *>(relay)->close(); });
    }
    static void relay_release(void *instance, cs_relay *relay) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { delete reinterpret_cast<Relay *>(relay); });
    }

    static constexpr cs_provider_vtable vtable{sizeof(cs_provider_vtable), &stream_start, &stream_cancel,
                                               &stream_release,             &voice_session, &relay_open,
                                               &relay_send,                 &relay_close,   &relay_release};
};

}  // namespace consilium::sdk

#define CONSILIUM_PROVIDER_PLUGIN(Type, id, version, description)                          \
    static const cs_plugin_descriptor consilium_descriptor_ = {                             \
        CS_ABI_MAJOR,                                                                       \
        CS_ABI_MINOR,                                                                       \
        sizeof(cs_plugin_descriptor),                                                       \
        CS_PLUGIN_PROVIDER,                                                                 \
        id,                                                                                 \
        version,                                                                            \
        CONSILIUM_BUILD_SIGNATURE,                                                          \
        description,                                                                        \
        &::consilium::sdk::ProviderThunks<Type>::create,                                    \
        &::consilium::sdk::ProviderThunks<Type>::destroy,                                   \
        &::consilium::sdk::ProviderThunks<Type>::vtable};                                   \
    CONSILIUM_EXPORT_DESCRIPTOR(consilium_descriptor_)
