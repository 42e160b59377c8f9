// Turns a model's raw stream into what the patient sees. The system prompt asks the model to end
// with a line `[[follow-ups]]` followed by suggested questions: the filter streams the text
// before that marker (holding back only a tail that could be the start of the marker), keeps the
// rest, and at the end yields the follow-ups and the citations: the numbered sources [n] the
// answer actually cites, plus any citations the provider reported.
#pragma once

#include "persona/persona.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace consilium {

inline constexpr const char *kFollowUpMarker = "[[follow-ups]]";

class AnswerFilter {
public:
    // Feeds a delta; returns the text that may be shown now (possibly empty).
    std::string feed(std::string_view delta);
    // The stream ended: returns what was held back (never part of the marker).
    std::string flush();
    // Starts over (a fallback model answers from the beginning).
    void reset();

    const std::string &answer() const { return shown_; }
    std::vector<std::string> follow_ups(size_t max = 4) const;
    // Citations in order of first use: {n, title, url} for the numbered sources, then the
    // provider's own citations.
    nlohmann::json citations(const std::vector<Source> &sources, const nlohmann::json &provider_citations) const;

private:
    std::string pending_;  // held back: could be the start of the marker
    std::string shown_;    // everything released
    std::string tail_;     // after the marker
    bool in_tail_ = false;
};

}  // namespace consilium
