#include "consult/prompt.hpp"

#include "consult/answer_filter.hpp"

#include <cmath>

namespace consilium {

using json = nlohmann::json;

std::string build_system_prompt(const PromptInput &in) {
    const Persona &p = *in.persona;
    std::string s = p.prompt;
    s += "\n\n## How to answer on this service\n";
    s += "- You are " + p.name + ", " + p.title +
         ", an AI specialist on the Consilium panel. You are not a human doctor and you do not replace a doctor "
         "who can examine the patient; say so when it matters.\n";
    s += "- Answer in the language of the patient's last message";
    if (!in.locale.empty()) s += " (their app is set to '" + in.locale + "')";
    s += ".\n";
    std::string facts;
    if (in.profile.age_years) {
        double a = *in.profile.age_years;
        if (a < 1) facts += "age " + std::to_string(static_cast<int>(std::round(a * 12))) + " months";
        else facts += "age " + std::to_string(static_cast<int>(a));
    }
    if (!in.profile.sex.empty()) facts += (facts.empty() ? "" : ", ") + std::string("sex ") + in.profile.sex;
    if (in.profile.pregnant) facts += (facts.empty() ? "" : ", ") + std::string("pregnant");
    if (!facts.empty()) s += "- What the patient's profile says: " + facts + ".\n";
    if (in.voice) {
        s += "- This is a spoken conversation: answer in short, plain sentences, one question at a time; no lists, "
             "no citations in brackets, no links. Offer to send the sources in the chat when they matter.\n";
    } else if (!p.sources.empty()) {
        s += "- Reference sources you may cite by number, as [1], when your answer relies on them:\n";
        for (size_t i = 0; i < p.sources.size(); ++i)
            s += "  [" + std::to_string(i + 1) + "] " + p.sources[i].title + " - " + p.sources[i].url + "\n";
    }
    if (in.emergency) {
        s += "- Warning signs of an emergency were detected (" + in.emergency_message +
             "). The patient has been shown emergency numbers. Begin by telling them clearly and briefly to call "
             "their emergency number or go to an emergency department now.\n";
    }
    if (!in.voice)
        s += std::string("- End your answer with a line containing only ") + kFollowUpMarker +
             ", then up to three short questions the patient might ask you next, one per line.\n";
    return s;
}

json build_model_request(const PromptInput &in, const ModelInfo &model) {
    json messages = json::array();
    auto push = [&](const std::string &role, json content) {
        // Providers want alternating roles starting with the user: merge neighbours.
        if (!messages.empty() && messages.back()["role"] == role) {
            for (auto &c : content) messages.back()["content"].push_back(c);
            return;
        }
        messages.push_back({{"role", role}, {"content", content}});
    };
    size_t start = in.history.size() > in.history_turns * 2 ? in.history.size() - in.history_turns * 2 : 0;
    for (size_t i = start; i < in.history.size(); ++i) {
        const auto &h = in.history[i];
        if (h.text.empty()) continue;
        if (messages.empty() && h.role != "patient") continue;
        push(h.role == "patient" ? "user" : "assistant", json::array({{{"type", "text"}, {"text", h.text}}}));
    }
    json content = json::array();
    for (const auto &a : in.attachments) {
        std::string type = a.value("type", "");
        if ((type == "image" && model.vision) || (type == "document" && model.pdf)) content.push_back(a);
    }
    content.push_back({{"type", "text"}, {"text", in.text}});
    push("user", content);

    const Persona &p = *in.persona;
    json sources = json::array();
    for (const auto &s : p.sources) sources.push_back({{"title", s.title}, {"url", s.url}});
    return {{"system", in.system.empty() ? build_system_prompt(in) : in.system},
            {"messages", messages},
            {"temperature", 0.3},
            {"locale", in.locale},
            {"persona",
             {{"id", p.id}, {"name", p.name}, {"title", p.title}, {"specialty", p.specialty},
              {"sources", sources}, {"follow_ups", p.follow_ups}}}};
}

}  // namespace consilium
