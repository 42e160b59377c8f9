#include "privacy/privacy.hpp"
#include "util/clock.hpp"

#include "engine.hpp"
#include "util/log.hpp"

#include <chrono>

namespace consilium {

using json = nlohmann::json;

namespace {


}  // namespace

json Privacy::export_account(const Principal &who) {
    Store &store = engine_.store();
    auto account = store.account(who.account_id);
    json out = {{"format", "consilium-export-1"}, {"exported_at", unix_ms()}};
    if (!account) return out;
    out["account"] = {{"id", account->id},
                      {"guest", account->kind == "guest"},
                      {"role", account->role},
                      {"email", engine_.accounts().email_of(*account)},
                      {"created_at", account->created_ms}};
    json profiles = json::array();
    for (const auto &p : store.profiles(who.account_id)) {
        json pj = engine_.accounts().profile_json(p);
        json consultations = json::array();
        for (const auto &c : store.consultations(who.account_id, p.id, 1000000))
            consultations.push_back(engine_.consultation_json(c, true));
        pj["consultations"] = consultations;
        profiles.push_back(pj);
    }
    out["profiles"] = profiles;
    return out;
}

Privacy::EraseResult Privacy::erase_profile(const Principal &who, const std::string &profile_id) {
    auto p = engine_.store().profile(profile_id);
    if (!p || p->account_id != who.account_id) return EraseResult::not_found;
    if (p->relation == "self") return EraseResult::is_self;
    engine_.service().forget(who.account_id, profile_id);
    Batch b;
    Store::profile_delete(b, profile_id);
    engine_.store().write(b);
    log::info("privacy", "profile erased", {{"account", who.account_id}, {"profile", profile_id}});
    return EraseResult::erased;
}

void Privacy::erase_account_rows(const std::string &account_id) {
    engine_.service().forget(account_id, std::nullopt);
    Batch b;
    Store::account_delete(b, account_id);
    engine_.store().write(b);  // cascades: sessions, refresh tokens, profiles, consultations, messages, events
    engine_.accounts().forget(account_id);
}

void Privacy::erase_account(const Principal &who) {
    engine_.close_chats_of(who, true);
    erase_account_rows(who.account_id);
    log::info("privacy", "account erased", {{"account", who.account_id}});
}

int64_t Privacy::erase_expired_guests(int64_t now) {
    int64_t erased = 0;
    for (;;) {
        auto ids = engine_.store().expired_guests(now, 200);
        if (ids.empty()) break;
        for (const auto &id : ids) {
            Principal guest{id, "guest", true, "", ""};
            engine_.close_chats_of(guest, true);
            erase_account_rows(id);
            AuditActor system;
            system.role = "system";
            engine_.audit().record(system, {"guest.expire", "ok", std::nullopt, "account:" + id, json::object()});
            ++erased;
        }
        if (ids.size() < 200) break;
    }
    if (erased > 0) log::info("privacy", "expired guests erased", {{"count", erased}});
    engine_.metrics().counter("guests_expired_total", "Guest accounts erased after their time").add(erased);
    return erased;
}

}  // namespace consilium
