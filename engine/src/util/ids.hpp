// Random identifiers, encodings and hashes (libsodium).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace consilium {

// Initialises libsodium once; every function below calls it.
void crypto_init();

// A random id with a readable prefix, e.g. "c_3kq9..." (prefix + 20 base32 chars, 100 bits).
std::string new_id(std::string_view prefix);
// n random bytes.
std::string random_bytes(size_t n);

std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

std::string hex_encode(std::string_view bytes);
std::string sha256(std::string_view data);  // raw 32 bytes
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw 32 bytes
// Constant-time comparison.
bool equal_ct(std::string_view a, std::string_view b);

}  // namespace consilium
