#include "plugin_loader.hpp"

#include "plugin/instance.hpp"

#include <dlfcn.h>
#include "util/log.hpp"

#include <boost/dll/shared_library.hpp>

#include <algorithm>

namespace consilium::host {

const char *kind_name(uint32_t kind) {
    switch (kind) {
    case CS_PLUGIN_PROVIDER: return "provider";
    case CS_PLUGIN_TRANSPORT: return "transport";
    case CS_PLUGIN_STORAGE: return "storage";
    default: return "unknown";
    }
}

LoadedPlugin load_plugin(const std::filesystem::path &file) {
    auto lib = std::make_shared<boost::dll::shared_library>();
    boost::dll::fs::error_code ec;
    lib->load(file, boost::dll::load_mode::default_mode | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
        const char *why = ::dlerror();
        throw PluginError(file.string() + ": cannot be loaded (" + (why ? why : ec.message()) +
                          "); check that it is a Consilium plugin built for this machine and that "
                          "the libraries it needs are installed");
    }
    if (!lib->has(CS_PLUGIN_ENTRY_NAME)) {
        throw PluginError(file.string() + ": has no entry point '" CS_PLUGIN_ENTRY_NAME
                          "'; a plugin must export it with CONSILIUM_PROVIDER_PLUGIN (or the "
                          "transport/storage macro) from consilium/sdk.hpp");
    }
    LoadedPlugin out;
    out.file = file;
    try {
        auto &entry = lib->get_alias<const cs_plugin_descriptor *()>(CS_PLUGIN_ENTRY_NAME);
        out.descriptor = entry();
    } catch (const std::exception &e) {
        throw PluginError(file.string() + ": its entry point failed (" + e.what() + ")");
    }
    std::string problem = check_descriptor(out.descriptor);
    if (!problem.empty()) throw PluginError(file.string() + ": " + problem);
    out.library = lib;
    return out;
}

void PluginRegistry::scan(const std::vector<std::filesystem::path> &dirs,
                          const std::vector<std::filesystem::path> &files) {
    std::vector<std::filesystem::path> candidates = files;
    for (const auto &dir : dirs) {
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec)) continue;
        std::vector<std::filesystem::path> here;
        for (const auto &e : std::filesystem::directory_iterator(dir, ec))
            if (e.is_regular_file() && e.path().extension() == ".so") here.push_back(e.path());
        std::sort(here.begin(), here.end());
        candidates.insert(candidates.end(), here.begin(), here.end());
    }
    for (const auto &file : candidates) {
        LoadedPlugin p;
        try {
            p = load_plugin(file);
        } catch (const PluginError &e) {
            problems_.push_back(e.what());
            log::warn("plugins", "plugin skipped", {{"why", e.what()}});
            continue;
        }
        for (const auto &q : plugins_) {
            if (q.descriptor->kind == p.descriptor->kind && std::string(q.descriptor->id) == p.descriptor->id)
                throw PluginError(std::string("two ") + kind_name(p.descriptor->kind) + " plugins named '" +
                                  p.descriptor->id + "': " + q.file.string() + " and " + p.file.string() +
                                  "; remove one or rename its id");
        }
        plugins_.push_back(std::move(p));
    }
}

const LoadedPlugin *PluginRegistry::find(uint32_t kind, const std::string &id) const {
    for (const auto &p : plugins_)
        if (p.descriptor->kind == kind && id == p.descriptor->id) return &p;
    return nullptr;
}

}  // namespace consilium::host
