// The host's configuration: embedded defaults (host/defaults.yaml), overlaid by a YAML file and
// by --set KEY=VALUE, then validated. Unknown keys and invalid values are refused with the key's
// dotted path and the reason. docs/configuration.md documents every key.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace consilium::host {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ConfigSources {
    std::optional<std::filesystem::path> file;               // --config
    std::vector<std::pair<std::string, std::string>> sets;   // --set key=value, in order
    std::optional<std::string> listen;                       // --listen
    std::optional<std::string> data_dir;                     // --data-dir
};

struct Config {
    nlohmann::json tree;  // the merged, validated configuration
    // Resolved absolute paths.
    std::filesystem::path data_dir;
    std::filesystem::path personas_dir;
    std::filesystem::path locales_dir;
    std::filesystem::path web_dir;
    std::vector<std::filesystem::path> plugin_dirs;
};

// The embedded defaults as JSON.
nlohmann::json default_config();
// Builds the configuration; throws ConfigError.
Config load_config(const ConfigSources &sources);
// Validates a merged tree (exposed for tests); throws ConfigError.
void validate_config(const nlohmann::json &tree);
// Lays `over` onto `base` at `path`, refusing unknown keys outside open maps.
void overlay(nlohmann::json &base, const nlohmann::json &over, const std::string &path);
// Sets one dotted key from a --set VALUE.
void apply_set(nlohmann::json &tree, const std::string &key, const std::string &value);
// Parses "host:port"; throws ConfigError naming `path`.
std::pair<std::string, int> parse_listen(const std::string &value, const std::string &path);

// Where a host built from this tree finds content and plugins by default.
std::filesystem::path source_dir();
std::filesystem::path build_plugin_dir();

}  // namespace consilium::host
