// Accounts and who is calling. Guests get an account with a `self` profile and signed tokens
// at once; their data expires after auth.guest_ttl_s. Every request's bearer token is verified
// here (tokens.hpp) and turned into a Principal.
#pragma once

#include "auth/tokens.hpp"
#include "consult/consultation.hpp"
#include "crypto/sealer.hpp"
#include "storage/store.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace consilium {

struct AuthSettings {
    int64_t access_ttl_s = 900;
    int64_t refresh_ttl_s = 2592000;
    int64_t guest_ttl_s = 86400;
};

struct AuthFailure {
    int status;          // 401
    std::string code;    // unauthorized
    std::string message;
};

class Accounts {
public:
    Accounts(Store &store, Sealer &sealer, TokenSigner &signer, AuthSettings settings);

    // POST /v1/auth/guest: a new guest account with its self profile; returns the token
    // response of CONTRACT.md.
    nlohmann::json create_guest();
    // A staff or patient account without credentials yet (`consilium account create`); returns
    // the same token response. role: patient | author | operator.
    nlohmann::json create_account(const std::string &role);
    // Verifies a bearer token; the account must still exist.
    std::optional<Principal> authenticate(const std::string &bearer, AuthFailure &why) const;

    // Profiles of an account, opened for the API.
    nlohmann::json profile_json(const ProfileRecord &p) const;
    ProfileRecord new_profile(const std::string &account_id, const std::string &relation,
                              const nlohmann::json &details) const;

private:
    nlohmann::json token_response(const AccountRecord &a);

    Store &store_;
    Sealer &sealer_;
    TokenSigner &signer_;
    AuthSettings settings_;
};

}  // namespace consilium
