#include "util/ids.hpp"

#include <sodium.h>

#include <mutex>
#include <stdexcept>

namespace consilium {

void crypto_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
    });
}

std::string random_bytes(size_t n) {
    crypto_init();
    std::string out(n, '\0');
    randombytes_buf(out.data(), n);
    return out;
}

std::string new_id(std::string_view prefix) {
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford base32
    std::string raw = random_bytes(20);
    std::string id(prefix);
    id += '_';
    for (unsigned char c : raw) id += alphabet[c & 31];
    return id;
}

namespace {
std::string b64_encode(std::string_view bytes, int variant) {
    crypto_init();
    size_t cap = sodium_base64_encoded_len(bytes.size(), variant);
    std::string out(cap, '\0');
    sodium_bin2base64(out.data(), cap, reinterpret_cast<const unsigned char *>(bytes.data()),
                      bytes.size(), variant);
    out.resize(cap - 1);  // drop the NUL
    return out;
}
std::optional<std::string> b64_decode(std::string_view text, int variant) {
    crypto_init();
    std::string out(text.size() * 3 / 4 + 3, '\0');
    size_t len = 0;
    const char *end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char *>(out.data()), out.size(), text.data(),
                          text.size(), nullptr, &len, &end, variant) != 0)
        return std::nullopt;
    if (end != text.data() + text.size()) return std::nullopt;
    out.resize(len);
    return out;
}
}  // namespace

std::string base64url_encode(std::string_view b) {
    return b64_encode(b, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
std::optional<std::string> base64url_decode(std::string_view t) {
    return b64_decode(t, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
std::string base64_encode(std::string_view b) { return b64_encode(b, sodium_base64_VARIANT_ORIGINAL); }
std::optional<std::string> base64_decode(std::string_view t) {
    return b64_decode(t, sodium_base64_VARIANT_ORIGINAL);
}

std::string hex_encode(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string sha256(std::string_view data) {
    crypto_init();
    std::string out(crypto_hash_sha256_BYTES, '\0');
    crypto_hash_sha256(reinterpret_cast<unsigned char *>(out.data()),
                       reinterpret_cast<const unsigned char *>(data.data()), data.size());
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    crypto_init();
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char *>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char *>(data.data()),
                                  data.size());
    std::string out(crypto_auth_hmacsha256_BYTES, '\0');
    crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char *>(out.data()));
    return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    crypto_init();
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace consilium
