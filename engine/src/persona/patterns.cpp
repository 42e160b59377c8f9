#include "persona/patterns.hpp"

#include <stdexcept>

namespace consilium {

PreparedText::PreparedText(std::string_view raw) : tokens(text::tokenize(raw)) {
    normalized.reserve(raw.size() + 2);
    normalized.push_back(' ');
    for (const auto &t : tokens) {
        if (normalized.size() > 1) normalized.push_back(' ');
        normalized.append(t.text);
    }
    normalized.push_back(' ');
}

Pattern::Pattern(const std::vector<std::string> &groups) : source_(groups) {
    if (groups.empty()) throw std::invalid_argument("a pattern needs at least one group");
    for (const auto &g : groups) {
        std::vector<Term> alts;
        size_t start = 0;
        while (start <= g.size()) {
            size_t bar = g.find('|', start);
            std::string alt = g.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
            start = bar == std::string::npos ? g.size() + 1 : bar + 1;
            Term t;
            bool star = !alt.empty() && alt.back() == '*';
            if (star) alt.pop_back();
            auto toks = text::tokenize(alt);
            if (toks.empty()) continue;
            bool all_unspaced = true;
            for (const auto &tk : toks) all_unspaced = all_unspaced && tk.unspaced;
            if (all_unspaced) {
                t.unspaced = true;
                t.substring = text::normalize(alt);
            } else {
                for (auto &tk : toks) t.words.push_back(tk.text);
                t.prefix = star;
            }
            alts.push_back(std::move(t));
        }
        if (alts.empty()) throw std::invalid_argument("group '" + g + "' has no words");
        groups_.push_back(std::move(alts));
    }
}

bool Pattern::term_matches(const Term &t, const std::vector<text::Token> &tokens,
                           const std::string &normalized) const {
    if (t.unspaced) return normalized.find(t.substring) != std::string::npos;
    const size_t n = t.words.size();
    if (tokens.size() < n) return false;
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
        bool ok = true;
        for (size_t k = 0; k < n && ok; ++k) {
            const std::string &w = t.words[k];
            const std::string &tok = tokens[i + k].text;
            if (k + 1 == n && t.prefix) ok = tok.compare(0, w.size(), w) == 0;
            else ok = tok == w;
        }
        if (ok) return true;
    }
    return false;
}

bool Pattern::matches(const std::vector<text::Token> &tokens, const std::string &normalized) const {
    for (const auto &alts : groups_) {
        bool any = false;
        for (const auto &t : alts) {
            if (term_matches(t, tokens, normalized)) {
                any = true;
                break;
            }
        }
        if (!any) return false;
    }
    return true;
}

}  // namespace consilium
