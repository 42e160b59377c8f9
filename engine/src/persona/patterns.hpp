// Red-flag patterns: `{all: ["group", "group", ...]}` where a group is alternatives separated by
// `|`, a trailing `*` matches any word starting so, and every group must match somewhere.
// Matching is on normalised text (text.hpp): case- and accent-insensitive whole words, and
// substrings for scripts written without spaces.
#pragma once

#include "persona/text.hpp"

#include <string>
#include <vector>

namespace consilium {

class Pattern {
public:
    // Compiles `groups`; throws std::invalid_argument naming the bad group.
    explicit Pattern(const std::vector<std::string> &groups);
    bool matches(const std::vector<text::Token> &tokens, const std::string &normalized) const;
    const std::vector<std::string> &source() const { return source_; }

private:
    struct Term {
        std::vector<std::string> words;  // normalised words of a multi-word term
        bool prefix = false;             // the last word ends with '*'
        bool unspaced = false;           // match as a substring of the normalised text
        std::string substring;
    };
    bool term_matches(const Term &t, const std::vector<text::Token> &tokens, const std::string &normalized) const;

    std::vector<std::vector<Term>> groups_;
    std::vector<std::string> source_;
};

// The text prepared once for matching many patterns.
struct PreparedText {
    std::vector<text::Token> tokens;
    std::string normalized;
    explicit PreparedText(std::string_view raw);
};

}  // namespace consilium
