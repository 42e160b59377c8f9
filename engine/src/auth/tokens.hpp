// Signed access tokens (JWT, RFC 7519) following RFC 8725: one algorithm (HS256) accepted,
// an explicit type ("at+jwt"), issuer, audience, expiry, and a key id so signing keys rotate
// without logging everyone out. Anything else (alg none, another alg, wrong type or audience,
// expired, tampered, unknown key) is refused.
#pragma once

#include "crypto/keyring.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace consilium {

struct AccessClaims {
    std::string subject;     // account id
    std::string role;        // guest | patient | author | operator
    std::string session;     // refresh-token family (session) id, "" for none
    int64_t issued_at = 0;   // unix seconds
    int64_t expires_at = 0;  // unix seconds
    std::string token_id;    // jti
};

struct TokenSettings {
    std::string issuer = "consilium";
    std::string audience = "consilium-api";
    int64_t access_ttl_s = 900;
};

enum class TokenError { malformed, bad_algorithm, bad_type, unknown_key, bad_signature, wrong_issuer,
                        wrong_audience, expired, not_yet_valid };
const char *token_error_name(TokenError e);

class TokenSigner {
public:
    TokenSigner(KeyRing keys, TokenSettings settings);

    std::string issue(const AccessClaims &claims) const;
    // Fills claims and returns nullopt on success, or the reason the token is refused.
    std::optional<TokenError> verify(const std::string &token, AccessClaims &claims, int64_t now_s) const;
    const TokenSettings &settings() const { return settings_; }
    void replace_keys(KeyRing keys);

private:
    mutable std::mutex mu_;
    std::shared_ptr<const KeyRing> keys_;
    TokenSettings settings_;
};

}  // namespace consilium
