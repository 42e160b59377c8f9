// The panel as loaded from personas/: one Persona per <id>.yaml (+ optional <id>.lua), the
// panel-wide emergency flags (emergency.yaml), the coordinator script and the routing index.
// A Panel is immutable once loaded; a reload builds a new one and swaps it in.
#pragma once

#include "persona/index.hpp"
#include "persona/patterns.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace consilium {

struct RedFlag {
    std::string id;
    bool emergency = true;         // false: see a doctor urgently, no emergency frame
    std::string message;           // English label for audit and the model
    std::string route_to;          // panel-wide flags: who takes the consultation
    std::string owner;             // persona id, or "" for panel-wide flags
    std::vector<std::pair<std::string, Pattern>> patterns;  // (language, pattern)
};

struct Source {
    std::string title;
    std::string url;
};

struct Audience {
    std::optional<double> min_age_years;
    std::optional<double> max_age_years;
    std::vector<std::string> sexes;  // empty = any
    std::string pregnancy = "any";   // any | preferred
};

struct PersonaTest {
    std::string text;
    std::vector<std::string> turns;  // a multi-turn case (then text is empty)
    nlohmann::json profile;          // null or {age_years, sex, pregnant}
    std::vector<std::string> expect;
    bool emergency = false;
    int line = 0;
};

struct Persona {
    std::string id;
    std::string specialty;
    std::string group;
    bool entry = false;
    std::string name;
    std::string title;
    std::string scope;
    Audience audience;
    std::string voice;        // realtime voice id
    std::string voice_style;
    std::string model_primary;
    std::vector<std::string> model_fallbacks;
    std::string prompt;
    std::vector<std::string> examples;
    std::map<std::string, std::vector<std::string>> keywords;  // language -> terms
    std::vector<RedFlag> red_flags;
    std::vector<Source> sources;
    std::vector<std::string> follow_ups;
    std::vector<PersonaTest> tests;
    std::string file;          // path of the YAML file
    std::string script_file;   // path of the Lua file, "" when none
    std::string script;        // its source
};

struct Panel {
    Panel() = default;
    Panel(const Panel &) = delete;  // flags and flag_index point into it
    Panel &operator=(const Panel &) = delete;

    std::vector<Persona> personas;
    std::map<std::string, size_t> by_id;
    std::vector<RedFlag> emergency_flags;  // panel-wide
    std::string coordinator_file;
    std::string coordinator;               // source of coordinator.lua
    std::string dir;
    uint64_t generation = 0;               // increases with every successful load
    TextIndex index;
    std::vector<const RedFlag *> flags;  // panel-wide first, then each persona's
    PatternIndex flag_index;              // owner = index into flags

    const Persona *find(const std::string &id) const {
        auto it = by_id.find(id);
        return it == by_id.end() ? nullptr : &personas[it->second];
    }
    // The persona that opens a consultation (entry: true), or nullptr.
    const Persona *entry() const;
};

}  // namespace consilium
