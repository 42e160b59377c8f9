// Fuzzes the text helpers of persona routing (engine/src/persona/text.hpp): nothing crashes on
// any bytes; on valid UTF-8, decoding round-trips, counts agree, and every normalised string,
// token and feature is valid UTF-8 again.
#include "persona/text.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

namespace text = consilium::text;

void check(bool ok, const char *what) {
    if (ok) return;
    std::fprintf(stderr, "fuzz_text: invariant violated: %s\n", what);
    __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view input(reinterpret_cast<const char *>(data), size);
    const bool valid = text::valid_utf8(input);
    const auto cps = text::decode_utf8(input);
    const size_t counted = text::count_code_points(input);
    check(cps.size() <= input.size(), "no more code points than bytes");

    const auto tokens = text::tokenize(input);
    const std::string norm = text::normalize(input);
    const auto feats = text::features(tokens);

    // normalize() is the tokens joined by single spaces.
    std::string joined;
    for (const auto &t : tokens) {
        check(!t.text.empty(), "tokens are not empty");
        check(t.text.find(' ') == std::string::npos, "tokens hold no space");
        if (!joined.empty()) joined += ' ';
        joined += t.text;
        (void)text::stem(t.text);
        (void)text::is_stopword(t.text);
    }
    check(joined == norm, "normalize() joins the tokens with single spaces");
    for (const auto &f : feats) check(f.size() > 2, "features are prefixed and not empty");

    if (!valid) return 0;
    check(counted == cps.size(), "count_code_points == decode_utf8().size() on valid UTF-8");
    std::string round;
    for (uint32_t cp : cps) {
        check(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF), "valid UTF-8 decodes to scalar values");
        text::append_utf8(round, cp);
    }
    check(round == input, "decode_utf8 + append_utf8 round-trips valid UTF-8");
    check(text::valid_utf8(norm), "normalize() keeps valid UTF-8 valid");
    check(text::count_code_points(norm) == text::decode_utf8(norm).size(), "normalised counts agree");
    check(text::normalize(norm) == norm, "normalize() is idempotent");
    for (const auto &t : tokens) check(text::valid_utf8(t.text), "tokens are valid UTF-8");
    for (const auto &f : feats) check(text::valid_utf8(f), "features are valid UTF-8");
    return 0;
}
