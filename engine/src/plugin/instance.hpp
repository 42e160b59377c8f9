// One created plugin instance: descriptor, the instance pointer the plugin made, the services
// table it was given, and a reference that keeps its shared library loaded. Destroying the
// PluginInstance calls the plugin's destroy() first, then lets the library go.
#pragma once

#include <consilium/abi.h>

#include "plugin/services.hpp"

#include <memory>
#include <stdexcept>
#include <string>

namespace consilium {

class PluginError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Checks a descriptor against this host's ABI; returns an empty string when acceptable, or what
// is wrong and what to do.
std::string check_descriptor(const cs_plugin_descriptor *d);

class PluginInstance {
public:
    // Creates the instance (descriptor->create) with options_json; throws PluginError naming the
    // instance, the plugin and the plugin's own message.
    PluginInstance(const cs_plugin_descriptor *descriptor, std::shared_ptr<void> library,
                   std::unique_ptr<HostServices> services, const std::string &config_path,
                   const std::string &options_json);
    ~PluginInstance();
    PluginInstance(const PluginInstance &) = delete;
    PluginInstance &operator=(const PluginInstance &) = delete;

    const cs_plugin_descriptor *descriptor() const { return descriptor_; }
    void *instance() const { return instance_; }
    const std::string &name() const { return services_->name(); }
    HostServices &services() { return *services_; }
    template <class VTable>
    const VTable *vtable() const {
        return static_cast<const VTable *>(descriptor_->vtable);
    }

private:
    const cs_plugin_descriptor *descriptor_;
    std::shared_ptr<void> library_;
    std::unique_ptr<HostServices> services_;
    void *instance_ = nullptr;
};

}  // namespace consilium
