#include "auth/tokens.hpp"

#include "util/ids.hpp"

#include <nlohmann/json.hpp>

namespace consilium {

using json = nlohmann::json;

const char *token_error_name(TokenError e) {
    switch (e) {
    case TokenError::malformed: return "malformed";
    case TokenError::bad_algorithm: return "bad_algorithm";
    case TokenError::bad_type: return "bad_type";
    case TokenError::unknown_key: return "unknown_key";
    case TokenError::bad_signature: return "bad_signature";
    case TokenError::wrong_issuer: return "wrong_issuer";
    case TokenError::wrong_audience: return "wrong_audience";
    case TokenError::expired: return "expired";
    case TokenError::not_yet_valid: return "not_yet_valid";
    }
    return "invalid";
}

TokenSigner::TokenSigner(KeyRing keys, TokenSettings settings)
    : keys_(std::make_shared<const KeyRing>(std::move(keys))), settings_(std::move(settings)) {}

void TokenSigner::replace_keys(KeyRing keys) {
    auto next = std::make_shared<const KeyRing>(std::move(keys));
    std::lock_guard<std::mutex> lock(mu_);
    keys_ = next;
}

std::string TokenSigner::issue(const AccessClaims &c) const {
    std::shared_ptr<const KeyRing> keys;
    {
        std::lock_guard<std::mutex> lock(mu_);
        keys = keys_;
    }
    json header = {{"alg", "HS256"}, {"typ", "at+jwt"}, {"kid", keys->current_id()}};
    json payload = {{"iss", settings_.issuer}, {"aud", settings_.audience}, {"sub", c.subject},
                    {"iat", c.issued_at},      {"nbf", c.issued_at},        {"exp", c.expires_at},
                    {"jti", c.token_id.empty() ? new_id("t") : c.token_id},
                    {"role", c.role}};
    if (!c.session.empty()) payload["sid"] = c.session;
    std::string signing_input = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
    return signing_input + "." + base64url_encode(hmac_sha256(keys->current_key(), signing_input));
}

std::optional<TokenError> TokenSigner::verify(const std::string &token, AccessClaims &c, int64_t now) const {
    auto d1 = token.find('.');
    auto d2 = d1 == std::string::npos ? std::string::npos : token.find('.', d1 + 1);
    if (d1 == std::string::npos || d2 == std::string::npos || token.find('.', d2 + 1) != std::string::npos)
        return TokenError::malformed;
    auto header_raw = base64url_decode(std::string_view(token).substr(0, d1));
    auto payload_raw = base64url_decode(std::string_view(token).substr(d1 + 1, d2 - d1 - 1));
    auto sig = base64url_decode(std::string_view(token).substr(d2 + 1));
    if (!header_raw || !payload_raw || !sig) return TokenError::malformed;
    json header = json::parse(*header_raw, nullptr, false);
    json payload = json::parse(*payload_raw, nullptr, false);
    if (!header.is_object() || !payload.is_object()) return TokenError::malformed;
    // One algorithm per key, chosen by us: the header cannot pick it (RFC 8725 2.1, 3.1).
    if (!header.contains("alg") || header["alg"] != "HS256") return TokenError::bad_algorithm;
    if (!header.contains("typ") || header["typ"] != "at+jwt") return TokenError::bad_type;
    if (!header.contains("kid") || !header["kid"].is_string()) return TokenError::unknown_key;
    std::shared_ptr<const KeyRing> keys;
    {
        std::lock_guard<std::mutex> lock(mu_);
        keys = keys_;
    }
    const std::string *key = keys->key(header["kid"].get<std::string>());
    if (!key) return TokenError::unknown_key;
    std::string expected = hmac_sha256(*key, std::string_view(token).substr(0, d2));
    if (!equal_ct(expected, *sig)) return TokenError::bad_signature;
    if (!payload.contains("iss") || payload["iss"] != settings_.issuer) return TokenError::wrong_issuer;
    if (!payload.contains("aud") || payload["aud"] != settings_.audience) return TokenError::wrong_audience;
    if (!payload.contains("exp") || !payload["exp"].is_number_integer()) return TokenError::malformed;
    if (!payload.contains("sub") || !payload["sub"].is_string()) return TokenError::malformed;
    if (!payload.contains("role") || !payload["role"].is_string()) return TokenError::malformed;
    int64_t exp = payload["exp"];
    if (now >= exp) return TokenError::expired;
    if (payload.contains("nbf") && payload["nbf"].is_number_integer() && now + 60 < payload["nbf"].get<int64_t>())
        return TokenError::not_yet_valid;
    c.subject = payload["sub"];
    c.role = payload["role"];
    c.session = payload.value("sid", "");
    c.issued_at = payload.value("iat", int64_t{0});
    c.expires_at = exp;
    c.token_id = payload.value("jti", "");
    return std::nullopt;
}

}  // namespace consilium
