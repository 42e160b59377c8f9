// A running host: configuration, plugins, executor, engine and transports, started and stopped
// in the right order. `consilium serve` runs one; tests and `consilium chat` may too.
#pragma once

#include "config.hpp"
#include "engine.hpp"
#include "persona_watcher.hpp"
#include "plugin_loader.hpp"

#include <memory>
#include <string>
#include <vector>

namespace consilium::host {

class HostRuntime {
public:
    enum class Mode { full, storage_only };
    // Loads the plugins and builds the engine (storage_only: only the storage, for tools such
    // as `consilium account`). Throws with a message naming what failed.
    explicit HostRuntime(Config config, Mode mode = Mode::full);
    ~HostRuntime();

    // Reloads the personas and logs the outcome (SIGHUP, the watcher, the admin endpoint).
    LoadResult reload_personas();
    // Creates and starts every configured transport; returns their bound addresses.
    std::vector<std::string> start_transports();
    // SIGTERM: stop accepting, drain streams up to server.drain_timeout_ms, stop transports.
    void drain();
    Engine &engine() { return *engine_; }
    // The storage instance (both modes).
    const std::shared_ptr<PluginInstance> &storage() const { return storage_; }
    metrics::Registry &metrics() { return metrics_; }
    const Config &config() const { return config_; }
    const PluginRegistry &plugins() const { return registry_; }

private:
    std::shared_ptr<PluginInstance> create(uint32_t kind, const std::string &config_path, const nlohmann::json &options,
                                           bool transport);

    Config config_;
    PluginRegistry registry_;
    std::unique_ptr<ThreadPool> pool_;
    metrics::Registry metrics_;
    std::shared_ptr<PluginInstance> storage_;
    std::map<std::string, std::shared_ptr<PluginInstance>> providers_;
    std::unique_ptr<Engine> engine_;
    std::vector<std::shared_ptr<PluginInstance>> transports_;
    std::unique_ptr<PersonaWatcher> watcher_;
    bool drained_ = false;
};

}  // namespace consilium::host
