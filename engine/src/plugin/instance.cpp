#include "plugin/instance.hpp"

#include "util/log.hpp"

namespace consilium {

std::string check_descriptor(const cs_plugin_descriptor *d) {
    if (!d) return "its entry point returned no descriptor; rebuild it with the Consilium SDK";
    if (d->abi_major != CS_ABI_MAJOR)
        return "it was built for plugin ABI " + std::to_string(d->abi_major) + "." +
               std::to_string(d->abi_minor) + " but this host speaks ABI " +
               std::to_string(CS_ABI_MAJOR) + "." + std::to_string(CS_ABI_MINOR) +
               "; rebuild the plugin against this host's SDK (consilium/abi.h)";
    if (d->abi_minor > CS_ABI_MINOR)
        return "it was built for plugin ABI " + std::to_string(d->abi_major) + "." +
               std::to_string(d->abi_minor) + ", newer than this host's " +
               std::to_string(CS_ABI_MAJOR) + "." + std::to_string(CS_ABI_MINOR) +
               "; upgrade the host or rebuild the plugin against this host's SDK";
    if (d->struct_size < sizeof(cs_plugin_descriptor))
        return "its descriptor is " + std::to_string(d->struct_size) + " bytes, smaller than the " +
               std::to_string(sizeof(cs_plugin_descriptor)) +
               " this ABI requires; rebuild it with the Consilium SDK";
    if (!d->id || !*d->id) return "its descriptor has no id; set one in the descriptor";
    if (d->kind != CS_PLUGIN_PROVIDER && d->kind != CS_PLUGIN_TRANSPORT && d->kind != CS_PLUGIN_STORAGE)
        return "its descriptor names an unknown kind " + std::to_string(d->kind);
    if (!d->create || !d->destroy || !d->vtable)
        return "its descriptor lacks create, destroy or the function table";
    // The kind's table must be at least as large as this ABI's.
    uint32_t vsize = *static_cast<const uint32_t *>(d->vtable);
    size_t need = d->kind == CS_PLUGIN_PROVIDER    ? CS_PROVIDER_VTABLE_SIZE_1_0
                  : d->kind == CS_PLUGIN_TRANSPORT ? sizeof(cs_transport_vtable)
                                                   : sizeof(cs_storage_vtable);
    if (vsize < need)
        return "its function table is " + std::to_string(vsize) + " bytes, smaller than the " +
               std::to_string(need) + " this ABI requires; rebuild it with the Consilium SDK";
    return {};
}

PluginInstance::PluginInstance(const cs_plugin_descriptor *descriptor, std::shared_ptr<void> library,
                               std::unique_ptr<HostServices> services,
                               const std::string &config_path, const std::string &options_json)
    : descriptor_(descriptor), library_(std::move(library)), services_(std::move(services)) {
    std::string problem = check_descriptor(descriptor_);
    if (!problem.empty()) throw PluginError("plugin for " + config_path + ": " + problem);
    cs_error err{};
    cs_status st = descriptor_->create(services_->api(), cs_str{config_path.data(), config_path.size()},
                                       cs_str{options_json.data(), options_json.size()}, &instance_, &err);
    if (st != CS_OK || !instance_) {
        std::string msg = err.message[0] ? err.message : "create() failed without a message";
        throw PluginError(config_path + " (plugin " + descriptor_->id + "): " + msg);
    }
    log::info("plugins", "instance created",
              {{"instance", services_->name()}, {"plugin", descriptor_->id}, {"version", descriptor_->version}});
}

PluginInstance::~PluginInstance() {
    if (instance_) descriptor_->destroy(instance_);
    instance_ = nullptr;
}

}  // namespace consilium
