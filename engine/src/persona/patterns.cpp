#include "persona/patterns.hpp"

#include <algorithm>
#include <stdexcept>

namespace consilium {

PreparedText::PreparedText(std::string_view raw) : tokens(text::tokenize(raw)) {
    normalized.reserve(raw.size() + 2);
    normalized.push_back(' ');
    for (uint32_t i = 0; i < tokens.size(); ++i) {
        if (normalized.size() > 1) normalized.push_back(' ');
        normalized.append(tokens[i].text);
        positions[tokens[i].text].push_back(i);
    }
    normalized.push_back(' ');
    sorted_words.reserve(positions.size());
    for (const auto &kv : positions) sorted_words.push_back(kv.first);
    std::sort(sorted_words.begin(), sorted_words.end());
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

bool Pattern::term_matches(const Term &t, const PreparedText &text) {
    if (t.unspaced) return text.normalized.find(t.substring) != std::string::npos;
    const size_t n = t.words.size();
    const auto &tokens = text.tokens;
    if (n == 1) {
        if (!t.prefix) return text.positions.count(t.words[0]) > 0;
        auto it = std::lower_bound(text.sorted_words.begin(), text.sorted_words.end(), t.words[0]);
        return it != text.sorted_words.end() && it->compare(0, t.words[0].size(), t.words[0]) == 0;
    }
    auto first = text.positions.find(t.words[0]);
    if (first == text.positions.end()) return false;
    for (uint32_t i : first->second) {
        if (i + n > tokens.size()) continue;
        bool ok = true;
        for (size_t k = 1; k < n && ok; ++k) {
            const std::string &w = t.words[k];
            const std::string &tok = tokens[i + k].text;
            if (k + 1 == n && t.prefix) ok = tok.compare(0, w.size(), w) == 0;
            else ok = tok == w;
        }
        if (ok) return true;
    }
    return false;
}

bool Pattern::matches(const PreparedText &text) const {
    for (const auto &alts : groups_) {
        bool any = false;
        for (const auto &t : alts) {
            if (term_matches(t, text)) {
                any = true;
                break;
            }
        }
        if (!any) return false;
    }
    return true;
}

void PatternIndex::add(const Pattern *pattern, uint32_t owner) {
    uint32_t id = static_cast<uint32_t>(patterns_.size());
    patterns_.emplace_back(pattern, owner);
    // Index by the first group: a text that has none of its alternatives cannot match.
    for (const auto &t : pattern->groups().front()) {
        if (t.unspaced) {
            always_.push_back(id);
            return;
        }
    }
    for (const auto &t : pattern->groups().front()) {
        auto &bucket = (t.prefix && t.words.size() == 1) ? by_prefix_[t.words[0]] : by_word_[t.words[0]];
        if (bucket.empty() || bucket.back() != id) bucket.push_back(id);
    }
}

std::vector<uint32_t> PatternIndex::match(const PreparedText &text) const {
    std::vector<uint32_t> candidates = always_;
    for (const auto &[word, where] : text.positions) {
        (void)where;
        if (auto it = by_word_.find(word); it != by_word_.end())
            candidates.insert(candidates.end(), it->second.begin(), it->second.end());
        // Every prefix of the word may be a prefix term ("bleed*").
        std::string prefix;
        prefix.reserve(word.size());
        for (char c : word) {
            prefix.push_back(c);
            if (auto it = by_prefix_.find(prefix); it != by_prefix_.end())
                candidates.insert(candidates.end(), it->second.begin(), it->second.end());
        }
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    std::vector<uint32_t> owners;
    for (uint32_t id : candidates)
        if (patterns_[id].first->matches(text)) owners.push_back(patterns_[id].second);
    std::sort(owners.begin(), owners.end());
    owners.erase(std::unique(owners.begin(), owners.end()), owners.end());
    return owners;
}

}  // namespace consilium
