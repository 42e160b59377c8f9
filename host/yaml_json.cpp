#include "yaml_json.hpp"

#include <cerrno>
#include <cctype>
#include <cstdlib>

namespace consilium::host {
namespace {

nlohmann::json plain_scalar(const std::string &s) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    // YAML 1.2 core schema numbers: [-+]?[0-9]+ and [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
    if (i == s.size() && digits > 0) {
        errno = 0;
        long long v = std::strtoll(s.c_str(), nullptr, 10);
        if (errno == 0) return v;
        return std::strtod(s.c_str(), nullptr);
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
    }
    if (digits > 0 && i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
        size_t exp = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp;
        if (exp == 0) return s;
    }
    if (digits > 0 && i == s.size()) return std::strtod(s.c_str(), nullptr);
    return s;
}

}  // namespace

nlohmann::json yaml_to_json(const YAML::Node &node) {
    switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Scalar:
        // "!" is the tag of a quoted (non-plain) scalar: always a string.
        if (node.Tag() == "!") return node.Scalar();
        return plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto &item : node) arr.push_back(yaml_to_json(item));
        return arr;
    }
    case YAML::NodeType::Map: {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto &kv : node) obj[kv.first.as<std::string>()] = yaml_to_json(kv.second);
        return obj;
    }
    }
    return nullptr;
}

nlohmann::json parse_scalar_value(const std::string &text) {
    try {
        YAML::Node n = YAML::Load(text);
        return yaml_to_json(n);
    } catch (const YAML::Exception &) {
        return text;
    }
}

}  // namespace consilium::host
