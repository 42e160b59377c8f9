// Red-flag patterns: `{all: ["group", "group", ...]}` where a group is alternatives separated by
// `|`, a trailing `*` matches any word starting so, and every group must match somewhere.
// Matching is on normalised text (text.hpp): case- and accent-insensitive whole words, and
// substrings for scripts written without spaces.
#pragma once

#include "persona/text.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace consilium {

// The text prepared once for matching many patterns: its tokens, and where each word is.
struct PreparedText {
    std::vector<text::Token> tokens;
    std::string normalized;  // " word word ... " (for substring terms)
    std::unordered_map<std::string, std::vector<uint32_t>> positions;  // word -> token indexes
    std::vector<std::string> sorted_words;                            // distinct words, sorted (prefixes)
    std::vector<bool> negated;  // the token is in the scope of a denial ("no chest pain or fainting")
    explicit PreparedText(std::string_view raw);
};

class Pattern {
public:
    struct Term {
        std::vector<std::string> words;  // normalised words of a multi-word term
        bool prefix = false;             // the last word ends with '*'
        bool unspaced = false;           // match as a substring of the normalised text
        bool denial = false;             // starts with a denial ("no reason to live")
        std::string substring;
    };

    // Compiles `groups`; throws std::invalid_argument naming the bad group.
    explicit Pattern(const std::vector<std::string> &groups);
    bool matches(const PreparedText &text) const;
    bool matches(const std::vector<text::Token> &, const std::string &) const = delete;
    const std::vector<std::string> &source() const { return source_; }
    const std::vector<std::vector<Term>> &groups() const { return groups_; }

private:
    static bool term_matches(const Term &t, const PreparedText &text);

    std::vector<std::vector<Term>> groups_;
    std::vector<std::string> source_;
};

// Denials in English (a narrow NegEx): "no", "without", "denies", "nor", "neither" put the next
// few words, up to a clause break or "but", out of reach of red-flag terms, so "no chest pain or
// fainting" does not raise a heart-attack flag. "not", "can't", "won't" are not denials here:
// they carry emergencies ("not breathing", "won't wake"). A term that itself starts with a
// denial ("no reason to live") is matched as written.
bool is_denial(const std::string &word);

// Many patterns, indexed by the words of their first group, so that a message is checked only
// against the patterns it could match.
class PatternIndex {
public:
    // `word_cost` says how common a word is (e.g. its frequency in the panel's examples): each
    // pattern is indexed by the group whose alternatives are rarest, so that ordinary messages
    // wake as few patterns as possible. Without it, the first group is used.
    void add(const Pattern *pattern, uint32_t owner,
             const std::function<double(const std::string &)> &word_cost = {});
    // Owners (as given to add) of every pattern that matches, each once, ascending.
    std::vector<uint32_t> match(const PreparedText &text) const;
    size_t size() const { return patterns_.size(); }

private:
    std::vector<std::pair<const Pattern *, uint32_t>> patterns_;
    std::unordered_map<std::string, std::vector<uint32_t>> by_word_;    // exact first word
    std::unordered_map<std::string, std::vector<uint32_t>> by_prefix_;  // prefix first word
    std::vector<uint32_t> always_;                                     // substring terms: always checked
};

}  // namespace consilium
