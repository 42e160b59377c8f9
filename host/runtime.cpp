#include "runtime.hpp"

#include "util/log.hpp"

#include <thread>

namespace consilium::host {

using json = nlohmann::json;

HostRuntime::HostRuntime(Config config, Mode mode) : config_(std::move(config)) {
    const json &tree = config_.tree;
    log::Level level = log::Level::info;
    log::parse_level(tree["log"]["level"].get<std::string>(), level);
    log::set_level(level);
    log::set_format(tree["log"]["format"].get<std::string>());

    std::filesystem::create_directories(config_.data_dir);
    registry_.scan(config_.plugin_dirs);

    unsigned workers = tree["server"]["workers"].get<unsigned>();
    if (workers == 0) workers = std::max(2u, std::thread::hardware_concurrency());
    pool_ = std::make_unique<ThreadPool>(workers);

    // Storage is required.
    storage_ = create(CS_PLUGIN_STORAGE, "storage", tree["storage"], false);
    if (mode == Mode::storage_only) return;

    // Providers: one that fails is reported and left out; none at all is fatal.
    for (auto it = tree["providers"].begin(); it != tree["providers"].end(); ++it) {
        try {
            providers_[it.key()] = create(CS_PLUGIN_PROVIDER, "providers." + it.key(), it.value(), false);
        } catch (const std::exception &e) {
            log::error("host", "provider left out", {{"instance", it.key()}, {"why", e.what()}});
        }
    }
    if (providers_.empty()) throw PluginError("no provider could be started (see the errors above); check `providers` in the configuration");

    EnginePaths paths{config_.data_dir, config_.personas_dir, config_.locales_dir};
    engine_ = std::make_unique<Engine>(tree, paths, *pool_, metrics_, storage_, providers_);
}

std::shared_ptr<PluginInstance> HostRuntime::create(uint32_t kind, const std::string &config_path, const json &section,
                                                    bool transport) {
    std::string id = section.at("plugin").get<std::string>();
    const LoadedPlugin *p = registry_.find(kind, id);
    if (!p) {
        std::string dirs;
        for (const auto &d : config_.plugin_dirs) dirs += (dirs.empty() ? "" : ", ") + d.string();
        throw PluginError(config_path + ".plugin: no " + std::string(kind_name(kind)) + " plugin '" + id +
                          "' in " + dirs + "; build it, add its directory to paths.plugins, or name another plugin");
    }
    json options = section;
    options.erase("plugin");
    auto name = config_path.substr(config_path.rfind('.') + 1);
    std::unique_ptr<HostServices> services;
    if (transport)
        services = std::make_unique<HostServices>(name, *pool_, metrics_, config_.data_dir.string(), Engine::front(),
                                                  engine_->front_ctx());
    else
        services = std::make_unique<HostServices>(name, *pool_, metrics_, config_.data_dir.string());
    return std::make_shared<PluginInstance>(p->descriptor, p->library, std::move(services), config_path, options.dump());
}

std::vector<std::string> HostRuntime::start_transports() {
    const json &tree = config_.tree;
    std::vector<std::string> addresses;
    for (auto it = tree["transports"].begin(); it != tree["transports"].end(); ++it) {
        json section = it.value();
        // The `http` transport listens where server.listen (--listen) says, and serves the web app.
        if (it.key() == "http" && !section.contains("listen")) section["listen"] = tree["server"]["listen"];
        if (it.key() == "http" && !section.contains("static_dir") && std::filesystem::is_directory(config_.web_dir))
            section["static_dir"] = config_.web_dir.string();
        auto inst = create(CS_PLUGIN_TRANSPORT, "transports." + it.key(), section, true);
        char address[256] = {0};
        cs_error err{};
        if (inst->vtable<cs_transport_vtable>()->start(inst->instance(), address, sizeof address, &err) != CS_OK)
            throw PluginError("transports." + it.key() + ": cannot start: " + err.message);
        transports_.push_back(inst);
        addresses.push_back(address);
        log::info("host", "transport started", {{"instance", it.key()}, {"address", address}});
    }
    if (transports_.empty()) throw PluginError("no transport configured: add one under `transports`");
    if (tree["paths"]["watch_personas"].get<bool>())
        watcher_ = std::make_unique<PersonaWatcher>(config_.personas_dir, [this] { reload_personas(); });
    engine_->set_ready(true);
    return addresses;
}

LoadResult HostRuntime::reload_personas() { return engine_->reload_personas(); }

void HostRuntime::drain() {
    if (drained_) return;
    drained_ = true;
    log::info("host", "draining");
    for (auto &t : transports_) t->vtable<cs_transport_vtable>()->stop_accepting(t->instance());
    engine_->drain(std::chrono::milliseconds(config_.tree["server"]["drain_timeout_ms"].get<int64_t>()));
    for (auto &t : transports_) t->vtable<cs_transport_vtable>()->stop(t->instance());
}

HostRuntime::~HostRuntime() {
    watcher_.reset();
    if (engine_) drain();
    // Transports first (no more requests), then the workers (no more tasks touching the engine),
    // then the engine, then the plugins it used.
    transports_.clear();
    pool_->stop();
    engine_.reset();  // (none in storage_only mode)
    providers_.clear();
    storage_.reset();
    log::info("host", "stopped");
}

}  // namespace consilium::host
