// Text normalisation for routing, in many scripts: case folding, accent folding (Latin, Greek),
// Arabic/Hebrew diacritics and letter variants, native digits to ASCII, apostrophes dropped
// inside words. Tokens are whole words; scripts written without spaces (Han, kana, Thai, Lao,
// Khmer, Myanmar) come out as runs that features() cuts into character n-grams.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace consilium::text {

struct Token {
    std::string text;         // normalised UTF-8
    bool unspaced = false;    // a run of a script written without spaces
    bool after_break = false; // a clause break (. , ; : ! ? and the like) comes right before it
};

// Normalises and splits into tokens.
std::vector<Token> tokenize(std::string_view utf8);
// The normalised text with single spaces between tokens (for substring matching).
std::string normalize(std::string_view utf8);
// A light English stemmer (plural, -ing, -ed); other words are returned unchanged.
std::string stem(std::string_view token);
// Routing features of a token list: stemmed words, 5-character prefixes of long words (cheap
// stemming for inflected languages), adjacent word pairs, and character uni/bigrams of
// unspaced runs. Stop words give no features.
std::vector<std::string> features(const std::vector<Token> &tokens);
bool is_stopword(std::string_view token);

// UTF-8 helpers.
std::vector<uint32_t> decode_utf8(std::string_view s);
void append_utf8(std::string &out, uint32_t cp);
bool valid_utf8(std::string_view s);
size_t count_code_points(std::string_view s);

}  // namespace consilium::text
