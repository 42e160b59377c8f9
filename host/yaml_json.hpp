// YAML to JSON, for configuration and content files. Scalars get YAML 1.2 core-schema types
// (quoted scalars stay strings). Each converted node remembers nothing of its position; callers
// that need FILE:LINE:COL keep the YAML node (see engine/src/persona/).
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace consilium::host {

nlohmann::json yaml_to_json(const YAML::Node &node);
// Parses one scalar written on a command line (--set key=VALUE) the same way.
nlohmann::json parse_scalar_value(const std::string &text);

}  // namespace consilium::host
