// Finding and loading plugin libraries (Boost.DLL, RTLD_LOCAL). Every refusal names the file,
// what is wrong and what to do.
#pragma once

#include <consilium/abi.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace consilium::host {

struct LoadedPlugin {
    std::filesystem::path file;
    const cs_plugin_descriptor *descriptor = nullptr;
    std::shared_ptr<void> library;  // keeps the library loaded while referenced
};

// Loads one library and checks its descriptor. Throws PluginError with the file's path.
LoadedPlugin load_plugin(const std::filesystem::path &file);

const char *kind_name(uint32_t kind);

// The plugins found in a set of directories, by kind and id.
class PluginRegistry {
public:
    // Scans every *.so in dirs (and the explicit files). Broken libraries are recorded in
    // problems() and skipped; two plugins with the same kind and id are fatal (PluginError).
    void scan(const std::vector<std::filesystem::path> &dirs,
              const std::vector<std::filesystem::path> &files = {});
    const LoadedPlugin *find(uint32_t kind, const std::string &id) const;
    const std::vector<LoadedPlugin> &plugins() const { return plugins_; }
    const std::vector<std::string> &problems() const { return problems_; }

private:
    std::vector<LoadedPlugin> plugins_;
    std::vector<std::string> problems_;
};

}  // namespace consilium::host
