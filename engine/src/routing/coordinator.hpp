// Who answers a turn. personas/coordinator.lua decides, with engine functions to search the
// routing index and match red flags (consilium.search, consilium.red_flags, ...). When the
// script fails, the built-in lexical decision below answers instead and the error is logged:
// a broken script never fails a turn.
#pragma once

#include "lua/runtime.hpp"
#include "persona/persona.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace consilium {

struct PatientProfile {
    std::optional<double> age_years;
    std::string sex;  // "", female, male, other
    bool pregnant = false;
    nlohmann::json to_json() const;
    static PatientProfile from_json(const nlohmann::json &j);
};

struct RouteRequest {
    std::string text;
    PatientProfile profile;
    std::string current;  // specialist of the previous turn, "" for the first
    std::string pinned;   // specialist the client asked for, "" for none
    std::string locale;   // "en", "ar", ... ("" = unknown)
    std::string previous; // the patient's previous message in this consultation ("" for none)
    int turn_index = 0;   // 0 for the first patient message of the consultation
};

struct RouteDecision {
    std::string specialist;
    std::vector<std::string> top;  // up to three candidates, best first
    bool emergency = false;
    std::vector<std::string> flags;  // red flags that matched (ids)
    std::string emergency_message;   // label of the first emergency flag
    std::string rule;                // which rule decided (pinned, emergency, lexical, follow_up, ...)
    nlohmann::json scores;           // per-candidate signals, for the audit record
    nlohmann::json candidates;       // the index's best candidates with their raw signals (explain)
    std::optional<lua::ScriptError> script_error;  // set when the built-in fallback answered
    nlohmann::json to_json() const;
};

class Coordinator {
public:
    // Routes with the panel's coordinator.lua on the calling thread's Lua runtime.
    static RouteDecision route(const Panel &panel, const RouteRequest &req);
    // The built-in decision (no Lua): the same signals, fixed weights.
    static RouteDecision route_builtin(const Panel &panel, const RouteRequest &req);
    // The engine functions scripts see as consilium.*.
    static lua::FunctionTable functions(const Panel &panel);
    // Red flags (panel-wide and personas') that match text.
    static nlohmann::json match_flags(const Panel &panel, const std::string &text);
    static nlohmann::json search(const Panel &panel, const std::string &text);
    // The index's candidates for a turn, best first by the built-in score, with each persona
    // script's score() bonus applied to the top few: [{id, keywords, examples, nearest,
    // matched, base, bonus}].
    static nlohmann::json candidates(const Panel &panel, const RouteRequest &req, const nlohmann::json &turn);
    static nlohmann::json turn_json(const RouteRequest &req);
    static bool audience_fits(const Persona &p, const PatientProfile &profile);
};

}  // namespace consilium
