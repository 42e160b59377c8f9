// consilium/sdk/transport.hpp: writing a transport plugin in C++.
//
// A transport accepts clients and hands each HTTP request and each chat connection to the
// front API (cs_front_api); it knows nothing of the protocol inside the frames.
//
//   class MyTransport : public consilium::sdk::Transport { ... };
//   CONSILIUM_TRANSPORT_PLUGIN(MyTransport, "mytransport", "1.0.0", "What it serves")
#pragma once

#include <consilium/sdk/options.hpp>

#include <memory>

namespace consilium::sdk {

class Transport {
public:
    virtual ~Transport() = default;
    // Binds and starts accepting; returns the bound "host:port".
    virtual std::string start() = 0;
    virtual void stop_accepting() = 0;
    virtual void stop() = 0;
};

template <class T>
struct TransportThunks {
    struct Instance {
        Host host;
        std::unique_ptr<T> impl;
    };

    static cs_status create(const cs_host_api *host, cs_str path, cs_str options, void **out,
                            cs_error *err) {
        return guard(err, [&] {
            if (!host->front) throw Error(CS_E_INVALID, "the host gave this transport no front API");
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
    static cs_status start(void *instance, char *address, size_t cap, cs_error *err) {
        auto *inst = static_cast<Instance *>(instance);
        return guard(err, [&] {
            std::string bound = inst->impl->start();
            if (cap > 0) {
                size_t n = bound.size() < cap - 1 ? bound.size() : cap - 1;
                std::memcpy(address, bound.data(), n);
                address[n] = '\0';
            }
        });
    }
    static void stop_accepting(void *instance) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { inst->impl->stop_accepting(); });
    }
    static void stop(void *instance) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { inst->impl->stop(); });
    }

    static constexpr cs_transport_vtable vtable{sizeof(cs_transport_vtable), &start,
                                                &stop_accepting, &stop};
};

}  // namespace consilium::sdk

#define CONSILIUM_TRANSPORT_PLUGIN(Type, id, version, description)                         \
    static const cs_plugin_descriptor consilium_descriptor_ = {                             \
        CS_ABI_MAJOR,                                                                       \
        CS_ABI_MINOR,                                                                       \
        sizeof(cs_plugin_descriptor),                                                       \
        CS_PLUGIN_TRANSPORT,                                                                \
        id,                                                                                 \
        version,                                                                            \
        CONSILIUM_BUILD_SIGNATURE,                                                          \
        description,                                                                        \
        &::consilium::sdk::TransportThunks<Type>::create,                                   \
        &::consilium::sdk::TransportThunks<Type>::destroy,                                  \
        &::consilium::sdk::TransportThunks<Type>::vtable};                                  \
    CONSILIUM_EXPORT_DESCRIPTOR(consilium_descriptor_)
