#include "config.hpp"

#include "yaml_json.hpp"

#include <consilium/sdk/options.hpp>

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

extern const char kDefaultsYaml[];

namespace consilium::host {

using json = nlohmann::json;

namespace {

// Maps whose keys are names chosen by the operator: any key may be added there.
bool is_open(const std::string &path) {
    static const std::set<std::string> open = {"providers", "transports", "models", "storage"};
    if (open.count(path)) return true;
    // Inside a provider, transport or storage instance, the plugin validates its own options.
    auto dot = path.find('.');
    if (dot != std::string::npos) {
        std::string head = path.substr(0, dot);
        if (head == "providers" || head == "transports" || head == "storage") return true;
    }
    return false;
}

[[noreturn]] void fail(const std::string &path, const std::string &why) {
    throw ConfigError(path + ": " + why);
}

const json *find_path(const json &tree, const std::string &dotted) {
    const json *cur = &tree;
    std::stringstream ss(dotted);
    std::string part;
    while (std::getline(ss, part, '.')) {
        if (!cur->is_object()) return nullptr;
        auto it = cur->find(part);
        if (it == cur->end()) return nullptr;
        cur = &*it;
    }
    return cur;
}

void check_int(const json &tree, const std::string &path, long long min, long long max) {
    const json *v = find_path(tree, path);
    if (!v) fail(path, "missing");
    if (!v->is_number_integer() && !v->is_number_unsigned()) fail(path, "expected an integer");
    long long n = v->get<long long>();
    if (n < min || n > max)
        fail(path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                       ", got " + std::to_string(n));
}

std::string num(double v) {
    std::ostringstream o;
    o << v;
    return o.str();
}

void check_number(const json &tree, const std::string &path, double min, double max) {
    const json *v = find_path(tree, path);
    if (!v) fail(path, "missing");
    if (!v->is_number()) fail(path, "expected a number");
    double n = v->get<double>();
    if (n < min || n > max)
        fail(path, "must be between " + num(min) + " and " + num(max) + ", got " +
                       num(n));
}

void check_enum(const json &tree, const std::string &path, std::initializer_list<const char *> values) {
    const json *v = find_path(tree, path);
    if (!v || !v->is_string()) fail(path, "expected a string");
    std::string list;
    for (const char *c : values) {
        if (*v == c) return;
        list += list.empty() ? "" : ", ";
        list += c;
    }
    fail(path, "must be one of " + list + ", got '" + v->get<std::string>() + "'");
}

void check_instances(const json &tree, const std::string &section, bool at_least_one) {
    const json &sec = tree.at(section);
    if (!sec.is_object()) fail(section, "expected a mapping of named instances");
    if (at_least_one && sec.empty()) fail(section, "at least one instance is required");
    for (auto it = sec.begin(); it != sec.end(); ++it) {
        std::string p = section + "." + it.key();
        if (!it->is_object()) fail(p, "expected a mapping with a `plugin` key");
        auto plugin = it->find("plugin");
        if (plugin == it->end() || !plugin->is_string() || plugin->get<std::string>().empty())
            fail(p + ".plugin", "missing: name the plugin this instance uses");
    }
}

}  // namespace

std::filesystem::path source_dir() { return CONSILIUM_SOURCE_DIR; }
std::filesystem::path build_plugin_dir() { return CONSILIUM_BUILD_PLUGIN_DIR; }

json default_config() {
    static const json defaults = yaml_to_json(YAML::Load(kDefaultsYaml));
    return defaults;
}

void overlay(json &base, const json &over, const std::string &path) {
    if (!over.is_object()) {
        if (!base.is_null() && !sdk::option_type_fits(base, over))
            fail(path.empty() ? "configuration" : path,
                 std::string("expected ") + sdk::json_type_name(base) + ", got " + sdk::json_type_name(over));
        base = over;
        return;
    }
    if (!base.is_object()) {
        if (!base.is_null()) fail(path, std::string("expected ") + sdk::json_type_name(base) + ", got a mapping");
        base = json::object();
    }
    for (auto it = over.begin(); it != over.end(); ++it) {
        std::string p = path.empty() ? it.key() : path + "." + it.key();
        auto existing = base.find(it.key());
        if (existing == base.end()) {
            if (!is_open(path)) fail(p, "unknown key");
            base[it.key()] = it.value();
            continue;
        }
        overlay(*existing, it.value(), p);
    }
}

void apply_set(json &tree, const std::string &key, const std::string &value) {
    if (key.empty()) throw ConfigError("--set: empty key");
    json patch = parse_scalar_value(value);
    // Build {"a": {"b": value}} and overlay it, so --set follows the same rules as a file.
    std::vector<std::string> parts;
    std::stringstream ss(key);
    std::string part;
    while (std::getline(ss, part, '.')) {
        if (part.empty()) throw ConfigError("--set " + key + ": empty path segment");
        parts.push_back(part);
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) patch = json{{*it, patch}};
    overlay(tree, patch, "");
}

std::pair<std::string, int> parse_listen(const std::string &value, const std::string &path) {
    auto colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0) fail(path, "expected HOST:PORT, got '" + value + "'");
    std::string host = value.substr(0, colon);
    std::string port = value.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        fail(path, "port must be a number from 0 to 65535, got '" + port + "'");
    int p = std::stoi(port);
    if (p > 65535) fail(path, "port must be a number from 0 to 65535, got '" + port + "'");
    return {host, p};
}

void validate_config(const json &tree) {
    parse_listen(tree.at("server").at("listen").get<std::string>(), "server.listen");
    check_int(tree, "server.drain_timeout_ms", 0, 3600000);
    check_int(tree, "server.workers", 0, 256);
    check_enum(tree, "log.level", {"debug", "info", "warn", "error"});
    check_enum(tree, "log.format", {"text", "json"});

    const json &storage = tree.at("storage");
    if (!storage.is_object() || !storage.contains("plugin") || !storage["plugin"].is_string())
        fail("storage.plugin", "missing: name the storage plugin");
    check_instances(tree, "transports", true);
    check_instances(tree, "providers", true);
    for (auto it = tree["transports"].begin(); it != tree["transports"].end(); ++it)
        if (it->contains("listen"))
            parse_listen((*it)["listen"].is_string() ? (*it)["listen"].get<std::string>() : "",
                         "transports." + it.key() + ".listen");

    // Models: each names a configured provider and its upstream model.
    static const json model_template = {{"provider", ""}, {"model", ""}, {"context_window", 0},
                                        {"vision", false}, {"pdf", false}, {"max_output_tokens", 0}};
    const json &models = tree.at("models");
    if (!models.is_object() || models.empty()) fail("models", "at least one model alias is required");
    for (auto it = models.begin(); it != models.end(); ++it) {
        std::string p = "models." + it.key();
        if (!it->is_object()) fail(p, "expected a mapping {provider, model, ...}");
        json merged = model_template;
        overlay(merged, *it, p);
        // overlay() accepts unknown keys only in open maps; models.X is not one.
        for (const char *req : {"provider", "model"})
            if (!it->contains(req) || !(*it)[req].is_string() || (*it)[req].get<std::string>().empty())
                fail(p + "." + req, "missing");
        std::string provider = (*it)["provider"];
        if (!tree["providers"].contains(provider))
            fail(p + ".provider", "names provider '" + provider + "', which is not configured under providers");
        if (it->contains("context_window")) check_int(tree, p + ".context_window", 1, 100000000);
    }
    for (const char *list : {"routing.default", "routing.force"}) {
        const json *v = find_path(tree, list);
        if (!v || !v->is_array()) fail(list, "expected a list of model aliases");
        for (const auto &alias : *v) {
            if (!alias.is_string() || !models.contains(alias.get<std::string>()))
                fail(list, "names '" + (alias.is_string() ? alias.get<std::string>() : alias.dump()) +
                               "', which is not a model alias under models");
        }
    }
    if (tree["routing"]["default"].empty()) fail("routing.default", "at least one model alias is required");
    const json &vm = tree["voice"]["model"];
    if (!vm.is_string()) fail("voice.model", "expected a model alias (or \"\" to turn voice off)");
    if (!vm.get<std::string>().empty() && !models.contains(vm.get<std::string>()))
        fail("voice.model", "names '" + vm.get<std::string>() + "', which is not a model alias under models");
    check_int(tree, "voice.expires_after_s", 10, 7200);

    for (const char *k : {"connector.connect_timeout_ms", "connector.first_token_timeout_ms",
                          "connector.idle_timeout_ms", "connector.turn_budget_ms"})
        check_int(tree, k, 1, 3600000);
    check_int(tree, "connector.max_retries", 0, 10);
    check_int(tree, "connector.max_tokens", 1, 200000);
    check_int(tree, "connector.retry_after_cap_ms", 0, 600000);
    check_int(tree, "connector.breaker_failures", 1, 1000);
    check_int(tree, "connector.breaker_cooldown_ms", 100, 3600000);
    check_int(tree, "connector.max_concurrent_per_provider", 1, 100000);
    check_int(tree, "auth.access_ttl_s", 1, 86400);
    check_int(tree, "auth.refresh_ttl_s", 60, 31536000);
    check_int(tree, "auth.guest_ttl_s", 1, 31536000);
    check_int(tree, "auth.session_idle_s", 60, 31536000);
    check_int(tree, "auth.guest_sweep_interval_s", 1, 86400);
    check_int(tree, "auth.password_min_chars", 8, 128);
    check_int(tree, "auth.argon2_ops_limit", 1, 20);
    check_int(tree, "auth.argon2_memory_kib", 8192, 4194304);
    check_int(tree, "auth.login_free_failures", 1, 1000);
    check_int(tree, "auth.login_free_failures_per_address", 1, 100000);
    check_int(tree, "auth.login_max_lockout_ms", 1000, 86400000);
    check_int(tree, "audit.retention_days", 1, 36500);
    check_int(tree, "audit.emergency_access_minutes", 1, 1440);
    check_int(tree, "chat.max_frame_bytes", 256, 16777216);
    check_int(tree, "chat.max_text_chars", 1, 1000000);
    check_int(tree, "chat.max_attachments", 0, 64);
    check_int(tree, "chat.auth_timeout_ms", 100, 600000);
    check_int(tree, "chat.idle_timeout_ms", 1000, 86400000);
    check_int(tree, "chat.merge_above_bytes", 1024, 1 << 30);
    const json &origins = tree["chat"]["allowed_origins"];
    if (!origins.is_array()) fail("chat.allowed_origins", "expected a list of origins like \"https://app.example.org\"");
    for (const auto &o : origins)
        if (!o.is_string() || (o.get<std::string>().rfind("http://", 0) != 0 && o.get<std::string>().rfind("https://", 0) != 0))
            fail("chat.allowed_origins", "each entry is a scheme and host like \"https://app.example.org\", got " + o.dump());
    for (const char *k : {"limits.messages_per_minute", "limits.guest_messages_per_minute", "limits.bytes_per_minute",
                          "limits.account_messages_per_minute", "limits.guest_account_messages_per_minute"})
        check_number(tree, k, 0.01, 1e12);
    check_number(tree, "limits.burst_fraction", 0.001, 100);
    check_int(tree, "limits.close_after_violations", 1, 1000000);
    check_int(tree, "limits.concurrent_turns", 1, 10000);
    check_int(tree, "limits.guest_concurrent_turns", 1, 10000);
    check_int(tree, "chat.history_turns", 0, 200);
}

Config load_config(const ConfigSources &src) {
    json tree = default_config();
    if (src.file) {
        std::ifstream in(*src.file);
        if (!in) throw ConfigError(src.file->string() + ": cannot be read");
        YAML::Node doc;
        try {
            doc = YAML::Load(in);
        } catch (const YAML::Exception &e) {
            throw ConfigError(src.file->string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                              std::to_string(e.mark.column + 1) + ": " + e.msg);
        }
        json over = yaml_to_json(doc);
        if (!over.is_null()) {
            if (!over.is_object()) throw ConfigError(src.file->string() + ": expected a mapping at the top");
            try {
                overlay(tree, over, "");
            } catch (const ConfigError &e) {
                throw ConfigError(src.file->string() + ": " + e.what());
            }
        }
    }
    for (const auto &[k, v] : src.sets) {
        try {
            apply_set(tree, k, v);
        } catch (const ConfigError &e) {
            throw ConfigError(std::string("--set: ") + e.what());
        }
    }
    if (src.listen) apply_set(tree, "server.listen", "\"" + *src.listen + "\"");
    if (src.data_dir) tree["server"]["data_dir"] = *src.data_dir;
    validate_config(tree);

    Config cfg;
    cfg.tree = tree;
    auto abs = [](const std::filesystem::path &p) { return std::filesystem::absolute(p).lexically_normal(); };
    cfg.data_dir = abs(tree["server"]["data_dir"].get<std::string>());
    auto path_or = [&](const char *key, const std::filesystem::path &dflt) {
        std::string v = tree["paths"][key].get<std::string>();
        return v.empty() ? dflt : abs(v);
    };
    cfg.personas_dir = path_or("personas", source_dir() / "personas");
    cfg.locales_dir = path_or("locales", source_dir() / "locales");
    cfg.web_dir = path_or("web", source_dir() / "host" / "web");
    cfg.plugin_dirs.push_back(build_plugin_dir());
    for (const auto &d : tree["paths"]["plugins"]) {
        if (!d.is_string()) throw ConfigError("paths.plugins: expected a list of directories");
        cfg.plugin_dirs.push_back(abs(d.get<std::string>()));
    }
    return cfg;
}

}  // namespace consilium::host
