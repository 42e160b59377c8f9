// Routes of authors and operators: persona lint and reload (authors), the audit log and the
// emergency-access procedure (operators). Operators see no message text except through an
// emergency-access grant: a stated reason, one consultation, a short time, and every step audited.
#include "api/http_api.hpp"
#include "util/clock.hpp"
#include "engine.hpp"

#include <chrono>

namespace consilium {

using json = nlohmann::json;

namespace {


std::optional<int64_t> query_int(const HttpRequest &req, const char *key, std::string &error) {
    auto it = req.query.find(key);
    if (it == req.query.end() || it->second.empty()) return std::nullopt;
    try {
        size_t used = 0;
        int64_t v = std::stoll(it->second, &used);
        if (used == it->second.size() && v >= 0) return v;
    } catch (const std::exception &) {
    }
    error = std::string(key) + ": a non-negative integer";
    return std::nullopt;
}

json diagnostics_json(const LoadResult &r) {
    json diags = json::array();
    for (const auto &d : r.diagnostics) diags.push_back(d.format());
    return diags;
}

}  // namespace

void HttpApi::add_admin_routes() {
    add("POST", "/v1/admin/personas/lint", kAuthors, [this](HttpRequest &) {
        LoadResult r = engine_.lint_personas();
        return HttpResponse::json(r.ok() ? 200 : 422, {{"ok", r.ok()}, {"errors", r.errors()}, {"diagnostics", diagnostics_json(r)}});
    }, "admin.personas_lint");
    add("POST", "/v1/admin/personas/reload", kAuthors, [this](HttpRequest &) {
        LoadResult r = engine_.reload_personas();
        auto live = engine_.panel();
        json body = {{"reloaded", r.ok()},
                     {"personas", live->personas.size()},
                     {"generation", live->generation},
                     {"errors", r.errors()},
                     {"diagnostics", diagnostics_json(r)}};
        // 422: the new files were refused and the last good panel is still live.
        return HttpResponse::json(r.ok() ? 200 : 422, body);
    }, "admin.personas_reload");

    add("GET", "/v1/admin/audit", kOperators, [this](HttpRequest &req) {
        std::string error;
        AuditFilter f;
        f.after_seq = query_int(req, "after_seq", error).value_or(0);
        f.limit = std::min<int64_t>(query_int(req, "limit", error).value_or(100), 1000);
        f.from_ms = query_int(req, "from", error);
        f.to_ms = query_int(req, "to", error);
        if (!error.empty()) return HttpResponse::error(400, "invalid_field", error);
        for (auto [key, field] : {std::pair{"actor", &f.actor_account}, {"profile_id", &f.profile_id}, {"action", &f.action}})
            if (req.query.count(key) && !req.query[key].empty()) *field = req.query[key];
        engine_.audit().flush();  // what was recorded until now is in the answer
        json entries = json::array();
        for (const auto &r : engine_.store().audit_list(f)) entries.push_back(AuditLog::to_json(r));
        json out = {{"entries", entries}};
        out["next_after_seq"] = entries.empty() ? json(nullptr) : entries.back()["seq"];
        req.audit.detail = {{"count", entries.size()}};
        return HttpResponse::json(200, out);
    }, "admin.audit_query");

    add("POST", "/v1/admin/emergency-access", kOperators, [this](HttpRequest &req) {
        HttpResponse bad;
        auto b = json_body(req, bad);
        if (!b) return bad;
        std::string cid = b->value("consultation_id", "");
        std::string reason = b->contains("reason") && (*b)["reason"].is_string() ? (*b)["reason"].get<std::string>() : "";
        if (cid.empty()) return HttpResponse::error(400, "missing_field", "consultation_id: required");
        if (reason.size() < 20 || reason.size() > 1000)
            return HttpResponse::error(400, "invalid_field", "reason: why access is needed, 20 to 1000 bytes (it is audited)");
        req.audit.target = "consultation:" + cid;
        auto c = engine_.store().consultation(cid);
        if (!c) return HttpResponse::error(404, "not_found", "no such consultation");
        req.audit.profile_id = c->profile_id;
        // The reason is the operator's words, not the patient's: it goes into the audit entry.
        req.audit.detail = {{"reason", reason}};
        auto grant = engine_.grant_emergency_access(req.who->account_id, cid);
        return HttpResponse::json(201, {{"consultation_id", cid}, {"expires_at", grant}});
    }, "admin.emergency_access");
    add("GET", "/v1/admin/consultations/{id}", kOperators, [this](HttpRequest &req) {
        const std::string &cid = req.params["id"];
        req.audit.target = "consultation:" + cid;
        if (!engine_.has_emergency_access(req.who->account_id, cid, unix_ms()))
            return HttpResponse::error(403, "emergency_access_required",
                                       "operators read consultations only under POST /v1/admin/emergency-access");
        auto c = engine_.store().consultation(cid);
        if (!c) return HttpResponse::error(404, "not_found", "no such consultation");
        req.audit.profile_id = c->profile_id;
        return HttpResponse::json(200, engine_.consultation_json(*c, true));
    }, "admin.consultation_read");
}

}  // namespace consilium
