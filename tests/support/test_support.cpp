#include "test_support.hpp"

#include <random>

namespace consilium::test {

TempDir::TempDir() {
    std::random_device rd;
    auto base = std::filesystem::temp_directory_path();
    for (;;) {
        path_ = base / ("consilium-test-" + std::to_string(rd()));
        if (std::filesystem::create_directory(path_)) break;
    }
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::filesystem::path plugin_file(const std::string &kind, const std::string &id) {
    return std::filesystem::path(CONSILIUM_TEST_PLUGIN_DIR) / (kind + "_" + id + ".so");
}

PluginHarness::PluginHarness(const std::string &kind, const std::string &id,
                             const std::string &options_json, const std::string &data_dir,
                             const cs_front_api *front, cs_host_ctx *front_ctx)
    : pool(std::make_unique<ThreadPool>(2)) {
    host::LoadedPlugin p = host::load_plugin(plugin_file(kind, id));
    auto services = std::make_unique<HostServices>(id, *pool, metrics, data_dir, front, front_ctx);
    instance = std::make_unique<PluginInstance>(p.descriptor, p.library, std::move(services),
                                                kind + "." + id, options_json);
}

PluginHarness::~PluginHarness() {
    instance.reset();
    pool->stop();
}

}  // namespace consilium::test
