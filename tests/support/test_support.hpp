// Shared test helpers.
#pragma once

#include "exec/executor.hpp"
#include "plugin/instance.hpp"
#include "plugin_loader.hpp"
#include "util/metrics.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace consilium::test {

// A fresh directory under the system temp dir, removed when the object goes.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::filesystem::path &path() const { return path_; }
    std::string str() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

// The built plugin library for kind_name ("provider", "storage", "transport") and id.
std::filesystem::path plugin_file(const std::string &kind, const std::string &id);

// A plugin instance loaded from the build tree with its own executor and metrics, the way the
// host would create it.
struct PluginHarness {
    std::unique_ptr<ThreadPool> pool;
    metrics::Registry metrics;
    std::unique_ptr<PluginInstance> instance;

    // Loads build/plugins/<kind>_<id>.so and creates an instance with options_json.
    PluginHarness(const std::string &kind, const std::string &id, const std::string &options_json,
                  const std::string &data_dir, const cs_front_api *front = nullptr,
                  cs_host_ctx *front_ctx = nullptr);
    ~PluginHarness();
};

}  // namespace consilium::test
