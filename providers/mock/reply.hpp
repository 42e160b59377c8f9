// The mock's answers: deterministic text in a specialist's voice, from a seed and the request.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace consilium::mock {

// A small, fast, seeded generator (splitmix64).
struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double unit() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
    size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
};

uint64_t fnv1a(const std::string &s);

// Splits a reply into the tokens the mock streams (a word with the space after it).
std::vector<std::string> tokens_of(const std::string &text);

// An answer of about `target_tokens` tokens for the request's persona and last patient message,
// ending with the follow-up marker and questions.
std::string compose_reply(const nlohmann::json &request, uint64_t seed, size_t target_tokens);

}  // namespace consilium::mock
