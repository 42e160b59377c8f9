#include "persona/hooks.hpp"

#include "routing/coordinator.hpp"
#include "util/log.hpp"

namespace consilium::hooks {

using json = nlohmann::json;

namespace {

std::optional<json> run(const Panel &panel, const Persona &p, const char *hook, const std::vector<json> &args,
                        lua::ScriptError *error_out = nullptr) {
    if (p.script.empty()) return std::nullopt;
    lua::FunctionTable api = Coordinator::functions(panel);
    lua::CallResult r = lua::thread_runtime().call(p.script_file, p.script, hook, args, api, true);
    if (r.error) {
        log::error("persona", "persona script failed; YAML behaviour used",
                   {{"persona", p.id}, {"hook", hook}, {"file", r.error->file}, {"line", r.error->line},
                    {"code", r.error->code}});
        if (error_out) *error_out = *r.error;
        return std::nullopt;
    }
    return r.value;  // nullopt when the hook is not defined
}

void bad_type(const Persona &p, const char *hook, const char *expected) {
    log::error("persona", "persona hook returned the wrong type; YAML behaviour used",
               {{"persona", p.id}, {"hook", hook}, {"expected", expected}, {"file", p.script_file}});
}

}  // namespace

json sample_turn(const std::string &text) {
    return {{"text", text}, {"profile", {{"age_years", 40}, {"sex", "female"}, {"pregnant", false}}},
            {"current", ""}, {"pinned", ""}, {"locale", "en"}, {"turn_index", 0}};
}

double score(const Panel &panel, const Persona &p, const json &turn, const json &signals) {
    auto v = run(panel, p, "score", {turn, signals});
    if (!v || v->is_null()) return 0;
    if (!v->is_number()) {
        bad_type(p, "score", "a number");
        return 0;
    }
    return v->get<double>();
}

std::string shape_prompt(const Panel &panel, const Persona &p, const json &turn, const std::string &prompt) {
    auto v = run(panel, p, "shape_prompt", {turn, prompt});
    if (!v || v->is_null()) return prompt;
    if (!v->is_string() || v->get<std::string>().empty()) {
        bad_type(p, "shape_prompt", "a non-empty string");
        return prompt;
    }
    return v->get<std::string>();
}

std::vector<std::string> follow_ups(const Panel &panel, const Persona &p, const json &turn, const std::string &answer,
                                    const std::vector<std::string> &suggestions) {
    auto v = run(panel, p, "follow_ups", {turn, answer, suggestions});
    if (!v || v->is_null()) return suggestions;
    std::vector<std::string> out;
    if (v->is_array()) {
        for (const auto &s : *v) {
            if (!s.is_string()) {
                out.clear();
                break;
            }
            if (!s.get<std::string>().empty() && out.size() < 6) out.push_back(s);
        }
        if (!out.empty() || v->empty()) return out;
    }
    bad_type(p, "follow_ups", "a list of strings");
    return suggestions;
}

std::vector<std::pair<int, std::string>> dry_run(const Panel &panel, const Persona &p) {
    std::vector<std::pair<int, std::string>> problems;
    if (p.script.empty()) return problems;
    lua::FunctionTable api = Coordinator::functions(panel);
    auto &rt = lua::thread_runtime();
    json turn = sample_turn();
    json signals = {{"keywords", 1.5}, {"examples", 2.0}, {"nearest", 0.4}, {"matched", json::array()}, {"score", 3.0}};
    struct Probe {
        const char *hook;
        std::vector<json> args;
        bool (*ok)(const json &);
        const char *expected;
    };
    const Probe probes[] = {
        {"score", {turn, signals}, [](const json &v) { return v.is_null() || v.is_number(); }, "a number"},
        {"shape_prompt", {turn, p.prompt}, [](const json &v) { return v.is_null() || v.is_string(); }, "a string"},
        {"follow_ups", {turn, "Rest and fluids usually help.", p.follow_ups},
         [](const json &v) {
             if (v.is_null()) return true;
             if (!v.is_array()) return false;
             for (const auto &s : v)
                 if (!s.is_string()) return false;
             return true;
         },
         "a list of strings"},
    };
    bool any = false;
    for (const auto &probe : probes) {
        if (!rt.defines(p.script_file, p.script, probe.hook, api)) continue;
        any = true;
        lua::CallResult r = rt.call(p.script_file, p.script, probe.hook, probe.args, api, true);
        if (r.error) {
            problems.emplace_back(r.error->line, std::string(probe.hook) + "(): " + r.error->code + ": " + r.error->message);
            continue;
        }
        if (r.value && !probe.ok(*r.value))
            problems.emplace_back(0, std::string(probe.hook) + "() must return " + probe.expected);
    }
    if (!any) {
        // Running the chunk itself may fail (an error at the top level, an unknown global).
        lua::CallResult r = rt.call(p.script_file, p.script, "score", {turn, signals}, api, true);
        if (r.error) problems.emplace_back(r.error->line, r.error->code + ": " + r.error->message);
        else problems.emplace_back(0, "defines none of the hooks score, shape_prompt, follow_ups");
    }
    return problems;
}

}  // namespace consilium::hooks
