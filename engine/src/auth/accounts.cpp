#include "auth/accounts.hpp"
#include "util/clock.hpp"

#include "util/ids.hpp"
#include "util/log.hpp"

#include <sodium.h>

#include <algorithm>
#include <chrono>

namespace consilium {

using json = nlohmann::json;
using namespace std::chrono;

namespace {


// How long session state read from storage is trusted before it is read again: bounds how late
// another host sees a logout or a revoked family.
constexpr int64_t kSessionRecheckMs = 5000;
// A session's last use is written at most this often.
constexpr int64_t kTouchEveryMs = 60000;
constexpr const char *kIndexKeyMeta = kSealedMetaKeys[0];

std::string token_hash(const std::string &refresh) { return hex_encode(sha256(refresh)); }

std::string normalise_email(std::string e) {
    auto not_space = [](unsigned char c) { return !std::isspace(c); };
    e.erase(e.begin(), std::find_if(e.begin(), e.end(), not_space));
    e.erase(std::find_if(e.rbegin(), e.rend(), not_space).base(), e.end());
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
    return e;
}

bool plausible_email(const std::string &e) {
    auto at = e.find('@');
    if (e.size() < 3 || e.size() > 254 || at == std::string::npos || at == 0 || at != e.rfind('@')) return false;
    if (e.find('.', at) == std::string::npos || e.back() == '.' || at + 1 >= e.size()) return false;
    return std::none_of(e.begin(), e.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

AuthResult fail(int status, std::string code, std::string message, int64_t retry_after_ms = 0) {
    AuthResult r;
    r.failure = {status, std::move(code), std::move(message), retry_after_ms};
    return r;
}

AuditActor actor_of(const std::optional<std::string> &account, const std::string &role, const std::string &peer) {
    AuditActor a;
    a.account = account;
    a.role = role;
    if (!peer.empty()) a.peer = peer;
    return a;
}

}  // namespace

Accounts::Accounts(Store &store, Sealer &sealer, TokenSigner &signer, AuditLog &audit, AuthSettings settings)
    : store_(store), sealer_(sealer), signer_(signer), audit_(audit), settings_(settings), hasher_(settings.passwords),
      account_throttle_(settings.account_throttle), address_throttle_(settings.address_throttle) {}

// ---- profiles --------------------------------------------------------------------------------

std::string Accounts::seal_profile_details(const std::string &profile_id, const json &details) const {
    return sealer_.seal(details.dump(), "profile:" + profile_id);
}

ProfileRecord Accounts::new_profile(const std::string &account_id, const std::string &relation,
                                    const json &details) const {
    ProfileRecord p;
    p.id = new_id("p");
    p.account_id = account_id;
    p.relation = relation;
    p.created_ms = unix_ms();
    p.details_sealed = seal_profile_details(p.id, details);
    return p;
}

json Accounts::profile_details(const ProfileRecord &p) const {
    auto plain = sealer_.open(p.details_sealed, "profile:" + p.id);
    if (!plain) return json::object();
    json d = json::parse(*plain, nullptr, false);
    return d.is_object() ? d : json::object();
}

json Accounts::profile_json(const ProfileRecord &p) const {
    json out = {{"id", p.id}, {"relation", p.relation}, {"created_at", p.created_ms}};
    json d = profile_details(p);
    for (const char *k : {"name", "birth_date", "sex", "pregnant"})
        if (d.contains(k)) out[k] = d[k];
    return out;
}

// ---- e-mail ----------------------------------------------------------------------------------

std::string Accounts::email_index(const std::string &email) {
    std::lock_guard<std::mutex> lock(mu_);
    if (index_key_.empty()) {
        // The index key is random, made once and kept sealed in meta: rotating and retiring data
        // keys never changes an index (the re-encryption reseals the key with everything else).
        auto stored = store_.meta(kIndexKeyMeta);
        if (!stored) {
            std::string fresh(32, '\0');
            randombytes_buf(fresh.data(), fresh.size());
            Batch b;
            Store::meta_set(b, kIndexKeyMeta, base64url_encode(sealer_.seal(fresh, kIndexKeyMeta)));
            store_.write(b);
            stored = store_.meta(kIndexKeyMeta);  // what is stored wins (another host may have written first)
        }
        auto sealed = stored ? base64url_decode(*stored) : std::nullopt;
        auto key = sealed ? sealer_.open(*sealed, kIndexKeyMeta) : std::nullopt;
        if (!key)
            throw StorageError(CS_E_INTERNAL, "the e-mail index key in meta cannot be opened with the data keys "
                                              "(was its data key retired before re-encryption completed?)");
        index_key_ = *key;
    }
    return hex_encode(hmac_sha256(index_key_, email));
}

std::string Accounts::email_of(const AccountRecord &a) const {
    if (!a.email_sealed) return "";
    return sealer_.open(*a.email_sealed, "account-email:" + a.id).value_or("");
}

std::optional<std::string> Accounts::check_credentials(const json &body, std::string &email, std::string &password,
                                                       bool registering) const {
    if (!body.is_object()) return "the body must be a JSON object {email, password}";
    if (!body.contains("email") || !body["email"].is_string()) return "email: required";
    if (!body.contains("password") || !body["password"].is_string()) return "password: required";
    email = normalise_email(body["email"]);
    password = body["password"];
    if (!plausible_email(email)) return "email: not an e-mail address";
    if (password.size() > 1024) return "password: at most 1024 bytes";
    if (registering) {
        size_t chars = 0;
        for (unsigned char c : password) chars += (c & 0xC0) != 0x80;
        if (chars < settings_.password_min_chars)
            return "password: at least " + std::to_string(settings_.password_min_chars) + " characters";
        if (password.find_first_not_of(password[0]) == std::string::npos) return "password: not one character repeated";
    }
    return std::nullopt;
}

// ---- sessions --------------------------------------------------------------------------------

json Accounts::token_body(const AccountRecord &a, const std::string &session_id, const std::string &refresh) {
    int64_t now_s = unix_ms() / 1000;
    AccessClaims c;
    c.subject = a.id;
    c.role = a.role;
    c.session = session_id;
    c.issued_at = now_s;
    c.expires_at = now_s + settings_.access_ttl_s;
    c.token_id = new_id("t");
    return {{"access_token", signer_.issue(c)},
            {"token_type", "Bearer"},
            {"refresh_token", refresh},
            {"expires_in", settings_.access_ttl_s},
            {"account", {{"id", a.id}, {"guest", a.kind == "guest"}, {"role", a.role}}}};
}

json Accounts::start_session(Batch &b, const AccountRecord &a) {
    int64_t now = unix_ms();
    SessionRecord s;
    s.id = new_id("sn");
    s.account_id = a.id;
    s.created_ms = s.last_used_ms = now;
    s.expires_ms = now + settings_.refresh_ttl_s * 1000;
    if (a.expires_ms) s.expires_ms = std::min(s.expires_ms, *a.expires_ms);
    std::string refresh = base64url_encode(random_bytes(32));
    Store::session_insert(b, s);
    Store::refresh_insert(b, token_hash(refresh), s.id, now);
    return token_body(a, s.id, refresh);
}

std::optional<Accounts::SessionState> Accounts::session_state(const std::string &id, int64_t now) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = sessions_.find(id);
        if (it != sessions_.end() && now - it->second.checked_ms < kSessionRecheckMs) return it->second;
    }
    auto rec = store_.session(id);
    if (!rec) return std::nullopt;
    SessionState st{rec->account_id, !rec->revoked_ms, rec->last_used_ms, rec->expires_ms, now};
    std::lock_guard<std::mutex> lock(mu_);
    auto &cached = sessions_[id];
    // Keep a later use seen by this process (its write may still be queued).
    st.last_used_ms = std::max(st.last_used_ms, cached.last_used_ms);
    cached = st;
    if (sessions_.size() > 100000) sessions_.clear();  // a bound, not a policy: state reloads on demand
    return st;
}

void Accounts::end_session(const std::string &account_id, const std::string &id, const std::string &reason) {
    Batch b;
    Store::session_revoke(b, id, unix_ms(), reason);
    store_.write(b);
    {
        std::lock_guard<std::mutex> lock(mu_);
        sessions_.erase(id);
    }
    if (session_ended_) session_ended_(account_id, id);
}

void Accounts::forget(const std::string &account_id) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();)
        it = it->second.account_id == account_id ? sessions_.erase(it) : std::next(it);
}

std::optional<Principal> Accounts::authenticate(const std::string &bearer, AuthFailure &why) {
    AccessClaims c;
    int64_t now = unix_ms();
    auto err = signer_.verify(bearer, c, now / 1000);
    if (err) {
        why = {401, "unauthorized", std::string("invalid token: ") + token_error_name(*err)};
        return std::nullopt;
    }
    if (c.session.empty()) {
        why = {401, "unauthorized", "invalid token: no session"};
        return std::nullopt;
    }
    auto st = session_state(c.session, now);
    if (!st || !st->open || st->account_id != c.subject) {
        why = {401, "unauthorized", "this session has ended; sign in again"};
        return std::nullopt;
    }
    if (now >= st->expires_ms || now - st->last_used_ms > settings_.session_idle_s * 1000) {
        end_session(st->account_id, c.session, now >= st->expires_ms ? "expired" : "idle");
        why = {401, "unauthorized", "this session has ended after a period of inactivity; sign in again"};
        return std::nullopt;
    }
    auto a = store_.account(c.subject);
    if (!a) {
        why = {401, "unauthorized", "invalid token: the account no longer exists"};
        return std::nullopt;
    }
    if (a->expires_ms && *a->expires_ms <= now) {
        why = {401, "unauthorized", "this guest session has expired"};
        return std::nullopt;
    }
    if (now - st->last_used_ms > kTouchEveryMs) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            sessions_[c.session].last_used_ms = now;
        }
        Batch b;
        Store::session_touch(b, c.session, now);
        store_.write_async(std::move(b), {});
    }
    // The role comes from the account, not the token: a changed role applies at once.
    return Principal{a->id, a->role, a->kind == "guest", c.session, ""};
}

// ---- guests and accounts ---------------------------------------------------------------------

json Accounts::create_guest(const std::string &peer) {
    AccountRecord a;
    a.id = new_id("a");
    a.kind = "guest";
    a.role = "guest";
    a.created_ms = unix_ms();
    a.expires_ms = a.created_ms + settings_.guest_ttl_s * 1000;
    ProfileRecord self = new_profile(a.id, "self", json::object());
    Batch b;
    Store::account_insert(b, a);
    Store::profile_insert(b, self);
    json out = start_session(b, a);
    store_.write(b);
    audit_.record(actor_of(a.id, "guest", peer), {"auth.guest", "ok", self.id, "account:" + a.id, json::object()});
    log::info("auth", "guest account created", {{"account", a.id}});
    return out;
}

json Accounts::create_account(const std::string &role, const std::string &email_in, const std::string &password) {
    if (role != "patient" && role != "author" && role != "operator")
        throw std::invalid_argument("role must be patient, author or operator");
    AccountRecord a;
    a.id = new_id("a");
    a.kind = "patient";
    a.role = role;
    a.created_ms = unix_ms();
    if (!email_in.empty()) {
        std::string email, pw;
        if (auto problem = check_credentials(json{{"email", email_in}, {"password", password}}, email, pw, true))
            throw std::invalid_argument(*problem);
        a.email_index = email_index(email);
        if (store_.account_by_email(*a.email_index)) throw std::invalid_argument("an account with this e-mail exists");
        a.email_sealed = sealer_.seal(email, "account-email:" + a.id);
        a.password_hash = hasher_.hash(pw);
    }
    ProfileRecord self = new_profile(a.id, "self", json::object());
    Batch b;
    Store::account_insert(b, a);
    Store::profile_insert(b, self);
    json out = start_session(b, a);
    store_.write(b);
    audit_.record(actor_of(std::nullopt, "system", ""), {"account.create", "ok", self.id, "account:" + a.id, {{"role", role}}});
    log::info("auth", "account created", {{"account", a.id}, {"role", role}});
    return out;
}

AuthResult Accounts::register_account(const json &body, const std::optional<Principal> &guest, const std::string &peer) {
    std::string email, password;
    if (auto problem = check_credentials(body, email, password, true)) return fail(400, "invalid_field", *problem);
    if (guest && !guest->guest)
        return fail(409, "already_registered", "this account is already registered; log in instead");
    std::string index = email_index(email);
    if (store_.account_by_email(index)) {
        audit_.record(actor_of(guest ? std::optional(guest->account_id) : std::nullopt, guest ? "guest" : "anonymous", peer),
                      {"auth.register", "invalid", std::nullopt, std::nullopt, {{"reason", "email_taken"}}});
        return fail(409, "email_taken", "an account with this e-mail address exists; log in instead");
    }
    std::string hash = hasher_.hash(password);
    Batch b;
    AccountRecord a;
    std::string action = "auth.register";
    if (guest) {
        // The guest keeps its id, profiles and consultations; it only stops expiring.
        auto existing = store_.account(guest->account_id);
        if (!existing) return fail(401, "unauthorized", "the guest account no longer exists");
        a = *existing;
        a.kind = "patient";
        a.role = "patient";
        a.expires_ms.reset();
        action = "auth.upgrade";
        Store::session_revoke_account(b, a.id, unix_ms(), "upgraded");
    } else {
        a.id = new_id("a");
        a.kind = "patient";
        a.role = "patient";
        a.created_ms = unix_ms();
    }
    a.email_index = index;
    a.email_sealed = sealer_.seal(email, "account-email:" + a.id);
    a.password_hash = hash;
    if (guest) {
        Store::account_update(b, a);
    } else {
        Store::account_insert(b, a);
        Store::profile_insert(b, new_profile(a.id, "self", json::object()));
    }
    AuthResult r;
    r.body = start_session(b, a);
    r.account_id = a.id;
    try {
        store_.write(b);
    } catch (const StorageError &e) {
        if (!e.conflict()) throw;
        return fail(409, "email_taken", "an account with this e-mail address exists; log in instead");
    }
    if (guest) forget(a.id);
    audit_.record(actor_of(a.id, "patient", peer), {action, "ok", std::nullopt, "account:" + a.id, json::object()});
    log::info("auth", guest ? "guest upgraded to an account" : "account registered", {{"account", a.id}});
    return r;
}

AuthResult Accounts::login(const json &body, const std::string &peer) {
    std::string email, password;
    if (auto problem = check_credentials(body, email, password, false)) return fail(400, "invalid_field", *problem);
    std::string index = email_index(email);
    std::string address = "ip:" + peer_address(peer);
    int64_t wait = std::max(account_throttle_.retry_after_ms("acct:" + index), address_throttle_.retry_after_ms(address));
    if (wait > 0) {
        audit_.record(actor_of(std::nullopt, "anonymous", peer), {"auth.login", "denied", std::nullopt, std::nullopt, {{"reason", "throttled"}}});
        return fail(429, "too_many_attempts", "too many failed attempts; wait and try again", wait);
    }
    auto a = store_.account_by_email(index);
    bool ok = false;
    if (a && a->password_hash) {
        ok = hasher_.verify(*a->password_hash, password);
    } else {
        hasher_.verify_dummy(password);  // the same time as a real check
    }
    if (!ok) {
        account_throttle_.failure("acct:" + index);
        address_throttle_.failure(address);
        audit_.record(actor_of(a ? std::optional(a->id) : std::nullopt, "anonymous", peer),
                      {"auth.login", "denied", std::nullopt, std::nullopt, {{"reason", "invalid_credentials"}}});
        // One answer for an unknown address and a wrong password.
        return fail(401, "invalid_credentials", "the e-mail address or the password is wrong");
    }
    account_throttle_.success("acct:" + index);
    Batch b;
    if (hasher_.needs_rehash(*a->password_hash)) {
        a->password_hash = hasher_.hash(password);
        Store::account_update(b, *a);
    }
    AuthResult r;
    r.body = start_session(b, *a);
    r.account_id = a->id;
    store_.write(b);
    audit_.record(actor_of(a->id, a->role, peer), {"auth.login", "ok", std::nullopt, "account:" + a->id, json::object()});
    return r;
}

AuthResult Accounts::refresh(const json &body, const std::string &peer) {
    if (!body.is_object() || !body.contains("refresh_token") || !body["refresh_token"].is_string() ||
        body["refresh_token"].get<std::string>().empty() || body["refresh_token"].get<std::string>().size() > 256)
        return fail(400, "missing_field", "refresh_token: required");
    int64_t now = unix_ms();
    auto used = store_.refresh_use(token_hash(body["refresh_token"]), now);
    if (!used) return fail(401, "invalid_grant", "this refresh token is not valid; sign in again");
    const std::string &session_id = used->first;
    auto s = store_.session(session_id);
    if (!s) return fail(401, "invalid_grant", "this refresh token is not valid; sign in again");
    if (used->second) {
        // A token used before: someone replayed it. The whole family ends, for the thief and
        // the owner alike; the owner signs in again.
        end_session(s->account_id, session_id, "refresh_reuse");
        audit_.record(actor_of(s->account_id, "unknown", peer),
                      {"auth.refresh_reuse", "denied", std::nullopt, "session:" + session_id, json::object()});
        log::warn("auth", "refresh token reused: session revoked", {{"account", s->account_id}});
        return fail(401, "invalid_grant", "this refresh token was already used; the session has ended, sign in again");
    }
    if (s->revoked_ms) return fail(401, "invalid_grant", "this session has ended; sign in again");
    if (now >= s->expires_ms || now - s->last_used_ms > settings_.session_idle_s * 1000) {
        end_session(s->account_id, session_id, now >= s->expires_ms ? "expired" : "idle");
        return fail(401, "invalid_grant", "this session has ended after a period of inactivity; sign in again");
    }
    auto a = store_.account(s->account_id);
    if (!a || (a->expires_ms && *a->expires_ms <= now)) return fail(401, "invalid_grant", "the account no longer exists");
    std::string next = base64url_encode(random_bytes(32));
    Batch b;
    Store::refresh_insert(b, token_hash(next), session_id, now);
    Store::session_touch(b, session_id, now);
    store_.write(b);
    {
        std::lock_guard<std::mutex> lock(mu_);
        sessions_.erase(session_id);
    }
    AuthResult r;
    r.body = token_body(*a, session_id, next);
    r.account_id = a->id;
    return r;
}

void Accounts::logout(const Principal &who, bool everywhere) {
    Batch b;
    int64_t now = unix_ms();
    if (everywhere)
        Store::session_revoke_account(b, who.account_id, now, "logout");
    else
        Store::session_revoke(b, who.session, now, "logout");
    store_.write(b);
    if (everywhere)
        forget(who.account_id);
    else {
        std::lock_guard<std::mutex> lock(mu_);
        sessions_.erase(who.session);
    }
}

}  // namespace consilium
