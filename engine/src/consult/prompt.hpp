// The model request for one turn (docs/plugins.md, "The model request"): the persona's system
// prompt with the engine's instructions (sources to cite, language, the follow-up marker), the
// patient's profile facts, recent history and the new message with its attachments.
#pragma once

#include "connector/connector.hpp"
#include "persona/persona.hpp"
#include "routing/coordinator.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace consilium {

struct HistoryItem {
    std::string role;  // patient | specialist
    std::string text;
};

struct PromptInput {
    const Persona *persona = nullptr;
    PatientProfile profile;
    std::string locale;
    std::vector<HistoryItem> history;  // before this message, oldest first
    std::string text;                  // the new patient message
    nlohmann::json attachments = nlohmann::json::array();  // [{type, media_type, data}]
    size_t history_turns = 12;
    bool emergency = false;
    std::string emergency_message;
    std::string system;  // when set, the system prompt to use (shaped by the persona's script)
    bool voice = false;  // a spoken conversation: no bracketed citations, no follow-up block
};

std::string build_system_prompt(const PromptInput &in);
nlohmann::json build_model_request(const PromptInput &in, const ModelInfo &model);

}  // namespace consilium
