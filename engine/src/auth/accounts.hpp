// Accounts, sign-in and sessions (docs/security.md). Guests get an account with a `self` profile
// and tokens at once; patients register with an e-mail and a password (Argon2id), log in, and
// keep a session alive with rotating refresh tokens. A session is one sign-in: one family of
// refresh tokens. Presenting a refresh token twice ends its whole session (the token was stolen
// or replayed); a session also ends after `session_idle_s` without use, and on logout.
//
// Every request's bearer token is verified here (tokens.hpp) and turned into a Principal; its
// session must still be open. E-mail addresses are stored sealed, and found by a keyed blind
// index (HMAC of the normalised address) so the database never holds them in clear.
#pragma once

#include "audit/audit_log.hpp"
#include "auth/passwords.hpp"
#include "auth/throttle.hpp"
#include "auth/tokens.hpp"
#include "consult/consultation.hpp"
#include "crypto/sealer.hpp"
#include "storage/store.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace consilium {

struct AuthSettings {
    int64_t access_ttl_s = 900;
    int64_t refresh_ttl_s = 2592000;  // a session's absolute lifetime
    int64_t session_idle_s = 28800;   // a session unused this long ends
    int64_t guest_ttl_s = 86400;
    size_t password_min_chars = 10;
    PasswordSettings passwords;
    ThrottleSettings account_throttle;  // per e-mail address
    ThrottleSettings address_throttle;  // per client IP address
};

struct AuthFailure {
    int status = 401;
    std::string code = "unauthorized";
    std::string message;
    int64_t retry_after_ms = 0;  // for 429
};

// The outcome of register / login / refresh: the token response of CONTRACT.md, or why not.
struct AuthResult {
    std::optional<nlohmann::json> body;
    AuthFailure failure;
    std::string account_id;  // when known (for the audit log)
};

class Accounts {
public:
    Accounts(Store &store, Sealer &sealer, TokenSigner &signer, AuditLog &audit, AuthSettings settings);

    // POST /v1/auth/guest: a new guest account with its self profile and a session.
    nlohmann::json create_guest(const std::string &peer = "");
    // An account without a password (`consilium account create`), or with e-mail + password.
    // role: patient | author | operator. Returns the token response.
    nlohmann::json create_account(const std::string &role, const std::string &email = "",
                                  const std::string &password = "");
    // POST /v1/auth/register {email, password}; with a guest's principal, upgrades that guest.
    AuthResult register_account(const nlohmann::json &body, const std::optional<Principal> &guest,
                                const std::string &peer);
    // POST /v1/auth/login {email, password}: the same 401 for an unknown e-mail and a wrong
    // password; 429 with retry_after_ms while throttled.
    AuthResult login(const nlohmann::json &body, const std::string &peer);
    // POST /v1/auth/refresh {refresh_token}: a new pair; the presented token dies.
    AuthResult refresh(const nlohmann::json &body, const std::string &peer);
    // Ends the caller's session, or all of the account's sessions.
    void logout(const Principal &who, bool everywhere);

    // Verifies a bearer token; its account must exist and its session be open.
    std::optional<Principal> authenticate(const std::string &bearer, AuthFailure &why);

    // The account's e-mail address, opened (or "" for none).
    std::string email_of(const AccountRecord &a) const;
    // Forgets cached session state of an account (after erasure).
    void forget(const std::string &account_id);
    // Called (from the thread that noticed) when a session ends on its own: idle, expired, or a
    // replayed refresh token. The engine closes that session's chats with 4004.
    void on_session_ended(std::function<void(const std::string &account_id, const std::string &session_id)> f) {
        session_ended_ = std::move(f);
    }

    // Profiles of an account, opened for the API.
    nlohmann::json profile_json(const ProfileRecord &p) const;
    nlohmann::json profile_details(const ProfileRecord &p) const;
    ProfileRecord new_profile(const std::string &account_id, const std::string &relation,
                              const nlohmann::json &details) const;
    std::string seal_profile_details(const std::string &profile_id, const nlohmann::json &details) const;

    const AuthSettings &settings() const { return settings_; }

private:
    struct SessionState {
        std::string account_id;
        bool open = false;
        int64_t last_used_ms = 0;
        int64_t expires_ms = 0;
        int64_t checked_ms = 0;  // when this was read from storage
    };

    // A new session for the account, its first refresh token and an access token, in `b`.
    nlohmann::json start_session(Batch &b, const AccountRecord &a);
    nlohmann::json token_body(const AccountRecord &a, const std::string &session_id, const std::string &refresh);
    std::string email_index(const std::string &normalised_email);
    std::optional<std::string> check_credentials(const nlohmann::json &body, std::string &email,
                                                 std::string &password, bool registering) const;
    std::optional<SessionState> session_state(const std::string &id, int64_t now);
    void end_session(const std::string &account_id, const std::string &id, const std::string &reason);

    Store &store_;
    Sealer &sealer_;
    TokenSigner &signer_;
    AuditLog &audit_;
    AuthSettings settings_;
    PasswordHasher hasher_;
    LoginThrottle account_throttle_;
    LoginThrottle address_throttle_;
    std::mutex mu_;
    std::unordered_map<std::string, SessionState> sessions_;
    std::string index_key_;  // blind-index key, opened from meta on first use
    std::function<void(const std::string &, const std::string &)> session_ended_;
};

}  // namespace consilium
