#include "auth/accounts.hpp"

#include "util/ids.hpp"
#include "util/log.hpp"

#include <chrono>

namespace consilium {

using json = nlohmann::json;
using namespace std::chrono;

namespace {
int64_t now_ms() { return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(); }
}  // namespace

Accounts::Accounts(Store &store, Sealer &sealer, TokenSigner &signer, AuthSettings settings)
    : store_(store), sealer_(sealer), signer_(signer), settings_(settings) {}

ProfileRecord Accounts::new_profile(const std::string &account_id, const std::string &relation,
                                    const json &details) const {
    ProfileRecord p;
    p.id = new_id("p");
    p.account_id = account_id;
    p.relation = relation;
    p.created_ms = now_ms();
    p.details_sealed = sealer_.seal(details.dump(), "profile:" + p.id);
    return p;
}

json Accounts::profile_json(const ProfileRecord &p) const {
    json out = {{"id", p.id}, {"relation", p.relation}, {"created_at", p.created_ms}};
    auto plain = sealer_.open(p.details_sealed, "profile:" + p.id);
    if (plain) {
        json d = json::parse(*plain, nullptr, false);
        if (d.is_object())
            for (const char *k : {"name", "birth_date", "sex"})
                if (d.contains(k)) out[k] = d[k];
    }
    return out;
}

json Accounts::token_response(const AccountRecord &a) {
    int64_t now_s = now_ms() / 1000;
    AccessClaims c;
    c.subject = a.id;
    c.role = a.role;
    c.issued_at = now_s;
    c.expires_at = now_s + settings_.access_ttl_s;
    std::string access = signer_.issue(c);
    return {{"access_token", access},
            {"token_type", "Bearer"},
            {"refresh_token", base64url_encode(random_bytes(32))},
            {"expires_in", settings_.access_ttl_s},
            {"account", {{"id", a.id}, {"guest", a.kind == "guest"}, {"role", a.role}}}};
}

json Accounts::create_guest() {
    AccountRecord a;
    a.id = new_id("a");
    a.kind = "guest";
    a.role = "guest";
    a.created_ms = now_ms();
    a.expires_ms = a.created_ms + settings_.guest_ttl_s * 1000;
    ProfileRecord self = new_profile(a.id, "self", json::object());
    Batch b;
    Store::account_insert(b, a);
    Store::profile_insert(b, self);
    store_.write(b);
    log::info("auth", "guest account created", {{"account", a.id}});
    return token_response(a);
}

json Accounts::create_account(const std::string &role) {
    if (role != "patient" && role != "author" && role != "operator")
        throw std::invalid_argument("role must be patient, author or operator");
    AccountRecord a;
    a.id = new_id("a");
    a.kind = "patient";
    a.role = role;
    a.created_ms = now_ms();
    ProfileRecord self = new_profile(a.id, "self", json::object());
    Batch b;
    Store::account_insert(b, a);
    Store::profile_insert(b, self);
    store_.write(b);
    log::info("auth", "account created", {{"account", a.id}, {"role", role}});
    return token_response(a);
}

std::optional<Principal> Accounts::authenticate(const std::string &bearer, AuthFailure &why) const {
    AccessClaims c;
    auto err = signer_.verify(bearer, c, now_ms() / 1000);
    if (err) {
        why = {401, "unauthorized", std::string("invalid token: ") + token_error_name(*err)};
        return std::nullopt;
    }
    auto a = store_.account(c.subject);
    if (!a) {
        why = {401, "unauthorized", "invalid token: the account no longer exists"};
        return std::nullopt;
    }
    if (a->expires_ms && *a->expires_ms <= now_ms()) {
        why = {401, "unauthorized", "this guest session has expired"};
        return std::nullopt;
    }
    return Principal{a->id, a->role, a->kind == "guest"};
}

}  // namespace consilium
