// RFC 8725 rules: one algorithm, explicit type, issuer, audience, expiry; anything else refused.
#include "auth/tokens.hpp"
#include "util/ids.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace consilium {
namespace {

using json = nlohmann::json;

struct Fixture {
    KeyRing keys = KeyRing::generate("t");
    TokenSigner signer{keys, TokenSettings{"consilium", "consilium-api", 900}};
    AccessClaims claims() {
        AccessClaims c;
        c.subject = "a_1";
        c.role = "guest";
        c.issued_at = 1000;
        c.expires_at = 1900;
        return c;
    }
};

std::string forge(const std::string &token, const json &header_patch, const json &payload_patch) {
    auto d1 = token.find('.'), d2 = token.rfind('.');
    json h = json::parse(*base64url_decode(token.substr(0, d1)));
    json p = json::parse(*base64url_decode(token.substr(d1 + 1, d2 - d1 - 1)));
    // An empty patch ({} converts to null) changes nothing.
    if (header_patch.is_object()) h.merge_patch(header_patch);
    if (payload_patch.is_object()) p.merge_patch(payload_patch);
    return base64url_encode(h.dump()) + "." + base64url_encode(p.dump()) + token.substr(d2);
}

TEST(Tokens, RoundTrip) {
    Fixture f;
    std::string t = f.signer.issue(f.claims());
    AccessClaims out;
    EXPECT_FALSE(f.signer.verify(t, out, 1500));
    EXPECT_EQ(out.subject, "a_1");
    EXPECT_EQ(out.role, "guest");
}

TEST(Tokens, AttacksAreRefused) {
    Fixture f;
    std::string t = f.signer.issue(f.claims());
    AccessClaims out;
    EXPECT_EQ(f.signer.verify(t, out, 1900), TokenError::expired);
    EXPECT_EQ(f.signer.verify(forge(t, {{"alg", "none"}}, {}), out, 1500), TokenError::bad_algorithm);
    EXPECT_EQ(f.signer.verify(forge(t, {{"alg", "RS256"}}, {}), out, 1500), TokenError::bad_algorithm);
    EXPECT_EQ(f.signer.verify(forge(t, {{"typ", "JWT"}}, {}), out, 1500), TokenError::bad_type);
    EXPECT_EQ(f.signer.verify(forge(t, {{"kid", "other"}}, {}), out, 1500), TokenError::unknown_key);
    EXPECT_EQ(f.signer.verify(forge(t, {}, {{"role", "operator"}}), out, 1500), TokenError::bad_signature);
    EXPECT_EQ(f.signer.verify(forge(t, {}, {{"exp", 999999}}), out, 1500), TokenError::bad_signature);
    std::string unsigned_token = t.substr(0, t.rfind('.') + 1);
    EXPECT_TRUE(f.signer.verify(unsigned_token, out, 1500).has_value());
    EXPECT_EQ(f.signer.verify("a.b", out, 1500), TokenError::malformed);
    EXPECT_EQ(f.signer.verify("", out, 1500), TokenError::malformed);
    // Signed by another key with the same id.
    KeyRing other = KeyRing::generate("t");
    TokenSigner stranger(other, TokenSettings{});
    EXPECT_EQ(f.signer.verify(stranger.issue(f.claims()), out, 1500), TokenError::bad_signature);
    // Another audience or issuer.
    TokenSigner aud(f.keys, TokenSettings{"consilium", "someone-else", 900});
    EXPECT_EQ(f.signer.verify(aud.issue(f.claims()), out, 1500), TokenError::wrong_audience);
    TokenSigner iss(f.keys, TokenSettings{"evil", "consilium-api", 900});
    EXPECT_EQ(f.signer.verify(iss.issue(f.claims()), out, 1500), TokenError::wrong_issuer);
}

TEST(Tokens, KeyRotationKeepsOldTokensValid) {
    Fixture f;
    std::string old_token = f.signer.issue(f.claims());
    KeyRing rotated = f.keys;
    std::string new_id = rotated.rotate();
    f.signer.replace_keys(rotated);
    AccessClaims out;
    EXPECT_FALSE(f.signer.verify(old_token, out, 1500)) << "tokens signed with the previous key still verify";
    std::string new_token = f.signer.issue(f.claims());
    json header = json::parse(*base64url_decode(new_token.substr(0, new_token.find('.'))));
    EXPECT_EQ(header["kid"], new_id) << "new tokens are signed with the new key";
    EXPECT_FALSE(f.signer.verify(new_token, out, 1500));
}

}  // namespace
}  // namespace consilium
