#include "persona/patterns.hpp"

#include <algorithm>
#include <stdexcept>

namespace consilium {

bool is_denial(const std::string &w) {
    return w == "no" || w == "without" || w == "denies" || w == "denied" || w == "deny" || w == "nor" ||
           w == "neither";
}

PreparedText::PreparedText(std::string_view raw) : tokens(text::tokenize(raw)) {
    constexpr size_t kScope = 4;
    negated.assign(tokens.size(), false);
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (!is_denial(tokens[i].text)) continue;
        for (size_t k = i + 1; k < tokens.size() && k <= i + kScope; ++k) {
            if (tokens[k].after_break || tokens[k].text == "but") break;
            negated[k] = true;
        }
    }
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
                t.denial = is_denial(t.words[0]);
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
    // An occurrence counts unless a denial covers it (and the term is not itself a denial phrase).
    auto counts = [&](uint32_t i) { return t.denial || !text.negated[i]; };
    if (n == 1) {
        if (!t.prefix) {
            auto it = text.positions.find(t.words[0]);
            if (it == text.positions.end()) return false;
            for (uint32_t i : it->second)
                if (counts(i)) return true;
            return false;
        }
        auto it = std::lower_bound(text.sorted_words.begin(), text.sorted_words.end(), t.words[0]);
        for (; it != text.sorted_words.end() && it->compare(0, t.words[0].size(), t.words[0]) == 0; ++it)
            for (uint32_t i : text.positions.at(*it))
                if (counts(i)) return true;
        return false;
    }
    auto first = text.positions.find(t.words[0]);
    if (first == text.positions.end()) return false;
    for (uint32_t i : first->second) {
        if (i + n > tokens.size() || !counts(i)) continue;
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

void PatternIndex::add(const Pattern *pattern, uint32_t owner,
                       const std::function<double(const std::string &)> &word_cost) {
    uint32_t id = static_cast<uint32_t>(patterns_.size());
    patterns_.emplace_back(pattern, owner);
    // Index by one group: a text that has none of its alternatives cannot match. The rarest group
    // (by word_cost) wakes the pattern least often. Prefix terms cost more: they match many words.
    const auto &groups = pattern->groups();
    size_t best = 0;
    double best_cost = -1;
    for (size_t g = 0; g < groups.size(); ++g) {
        double cost = 0;
        bool unspaced = false;
        for (const auto &t : groups[g]) {
            if (t.unspaced) unspaced = true;
            else cost += (word_cost ? word_cost(t.words[0]) : 1.0) * (t.prefix ? 4.0 : 1.0);
        }
        if (unspaced) cost = 1e18;  // substring terms cannot be looked up: avoid them
        if (best_cost < 0 || cost < best_cost) {
            best_cost = cost;
            best = g;
        }
        if (!word_cost) break;
    }
    for (const auto &t : groups[best]) {
        if (t.unspaced) {
            always_.push_back(id);
            return;
        }
    }
    for (const auto &t : groups[best]) {
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
