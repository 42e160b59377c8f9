// Persona scripts (personas/<id>.lua): optional hooks that shape a persona's behaviour beyond
// its YAML. Each runs sandboxed (lua/runtime.hpp); a hook that fails or returns the wrong type
// is logged with persona, file and line, and the YAML behaviour answers instead: a broken
// script never fails a turn.
//
//   function score(turn, signals)          -> number   bonus added to this persona's routing score
//   function shape_prompt(turn, prompt)    -> string   the system prompt to use
//   function follow_ups(turn, answer, suggestions) -> {string, ...}
#pragma once

#include "lua/runtime.hpp"
#include "persona/persona.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace consilium::hooks {

inline constexpr const char *kHookNames[] = {"score", "shape_prompt", "follow_ups"};

// The bonus from score(), or 0.
double score(const Panel &panel, const Persona &p, const nlohmann::json &turn, const nlohmann::json &signals);
// The prompt from shape_prompt(), or `prompt` unchanged.
std::string shape_prompt(const Panel &panel, const Persona &p, const nlohmann::json &turn, const std::string &prompt);
// The follow-ups from follow_ups(), or `suggestions` unchanged.
std::vector<std::string> follow_ups(const Panel &panel, const Persona &p, const nlohmann::json &turn,
                                    const std::string &answer, const std::vector<std::string> &suggestions);

// A dry run of every hook the script defines, with sample values (persona lint). Returns the
// problems as (line, message); line 0 when unknown.
std::vector<std::pair<int, std::string>> dry_run(const Panel &panel, const Persona &p);

// A sample turn for dry runs and tests.
nlohmann::json sample_turn(const std::string &text = "I have had a headache for three days");

}  // namespace consilium::hooks
