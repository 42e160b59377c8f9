// consilium/sdk/options.hpp: validating a plugin's options against its documented defaults.
//
// A plugin declares its options as a JSON object of defaults. Options given by the operator are
// laid over them: an unknown key or a value of the wrong type is refused with the key's full
// path, so `providers.mock.faults.rate_limt` fails at start with a message that names it.
// The host validates its own configuration with the same function.
#pragma once

#include <consilium/sdk/core.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace consilium::sdk {

using json = nlohmann::json;

inline const char *json_type_name(const json &v) {
    switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "a mapping";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "true or false";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return "a value";
    }
}

inline std::string join_path(const std::string &base, const std::string &key) {
    return base.empty() ? key : base + "." + key;
}

// Does `given` fit where `def` is the default? null defaults accept anything; integer defaults
// want integers; float defaults accept any number.
inline bool option_type_fits(const json &def, const json &given) {
    if (def.is_null()) return true;
    if (def.is_number_float()) return given.is_number();
    if (def.is_number_integer() || def.is_number_unsigned()) {
        if (given.is_number_integer() || given.is_number_unsigned()) return true;
        // YAML "1e3" or 10.0: accept when it is a whole number.
        return given.is_number_float() && given.get<double>() == static_cast<double>(
                                                                   static_cast<long long>(given.get<double>()));
    }
    if (def.is_object()) return given.is_object();
    if (def.is_array()) return given.is_array();
    if (def.is_string()) return given.is_string();
    if (def.is_boolean()) return given.is_boolean();
    return def.type() == given.type();
}

// Lays `given` over `defaults` and returns the result. Keys of objects whose default is an empty
// object ({}) are open (a map of user-named entries): any key is accepted there.
inline json merge_options(const std::string &path, const json &defaults, const json &given) {
    if (given.is_null()) return defaults;
    if (!option_type_fits(defaults, given)) {
        throw Error(CS_E_INVALID, (path.empty() ? std::string("options") : path) + ": expected " +
                                      json_type_name(defaults) + ", got " + json_type_name(given));
    }
    if (!defaults.is_object() || defaults.empty()) {
        if ((defaults.is_number_integer() || defaults.is_number_unsigned()) && given.is_number_float())
            return json(static_cast<long long>(given.get<double>()));
        return given;
    }
    json out = defaults;
    for (auto it = given.begin(); it != given.end(); ++it) {
        std::string p = join_path(path, it.key());
        auto d = defaults.find(it.key());
        if (d == defaults.end()) throw Error(CS_E_INVALID, p + ": unknown key");
        out[it.key()] = merge_options(p, *d, it.value());
    }
    return out;
}

// Parses a plugin's options JSON and lays it over defaults (the usual first line of a create()).
inline json parse_options(cs_str config_path, cs_str options_json, const json &defaults) {
    json given;
    auto text = to_sv(options_json);
    if (!text.empty()) {
        given = json::parse(text, nullptr, false);
        if (given.is_discarded()) throw Error(CS_E_INVALID, std::string(to_sv(config_path)) + ": not valid JSON");
    }
    return merge_options(std::string(to_sv(config_path)), defaults, given);
}

// Range checks, with the same path-naming messages.
inline long long option_int(const json &opts, const std::string &path, const char *key, long long min,
                            long long max) {
    long long v = opts.at(key).get<long long>();
    if (v < min || v > max)
        throw Error(CS_E_INVALID, join_path(path, key) + ": must be between " + std::to_string(min) +
                                      " and " + std::to_string(max) + ", got " + std::to_string(v));
    return v;
}

inline double option_number(const json &opts, const std::string &path, const char *key, double min,
                            double max) {
    double v = opts.at(key).get<double>();
    if (!(v >= min && v <= max))
        throw Error(CS_E_INVALID, join_path(path, key) + ": must be between " + std::to_string(min) +
                                      " and " + std::to_string(max));
    return v;
}

}  // namespace consilium::sdk
