// Routes of the account and its family profiles: read, add, change and erase a member; read,
// export and erase the account. Every read checks that the profile belongs to the caller, and
// another account's profile answers 404 exactly like a missing one.
#include "api/http_api.hpp"
#include "engine.hpp"

#include <cctype>

namespace consilium {

using json = nlohmann::json;

namespace {

const std::set<std::string> kRelations = {"child", "parent", "partner", "sibling", "other"};

bool valid_date(const std::string &d) {
    if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
    for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (!std::isdigit(static_cast<unsigned char>(d[i]))) return false;
    int y = std::stoi(d.substr(0, 4)), m = std::stoi(d.substr(5, 2)), day = std::stoi(d.substr(8, 2));
    return y >= 1880 && y <= 2200 && m >= 1 && m <= 12 && day >= 1 && day <= 31;
}

// Applies the fields of a POST or PATCH body to `details` (and `relation`); returns an error
// message, or "" when everything was valid.
std::string apply_profile_fields(const json &b, json &details, std::string *relation, bool creating) {
    if (creating || b.contains("name")) {
        if (!b.contains("name") || !b["name"].is_string() || b["name"].get<std::string>().empty() ||
            b["name"].get<std::string>().size() > 200)
            return "name: a non-empty string of at most 200 bytes";
        details["name"] = b["name"];
    }
    if (relation && (creating || b.contains("relation"))) {
        std::string r = b.value("relation", "");
        if (!kRelations.count(r)) return "relation: one of child, parent, partner, sibling, other";
        *relation = r;
    }
    if (b.contains("birth_date")) {
        if (b["birth_date"].is_null()) details.erase("birth_date");
        else if (!b["birth_date"].is_string() || !valid_date(b["birth_date"])) return "birth_date: YYYY-MM-DD";
        else details["birth_date"] = b["birth_date"];
    }
    if (b.contains("sex")) {
        std::string sex = b["sex"].is_string() ? b["sex"].get<std::string>() : "";
        if (b["sex"].is_null()) details.erase("sex");
        else if (sex != "female" && sex != "male" && sex != "other") return "sex: female, male or other";
        else details["sex"] = sex;
    }
    if (b.contains("pregnant")) {
        if (b["pregnant"].is_null()) details.erase("pregnant");
        else if (!b["pregnant"].is_boolean()) return "pregnant: true or false";
        else details["pregnant"] = b["pregnant"];
    }
    return "";
}

}  // namespace

void HttpApi::add_profile_routes() {
    add("GET", "/v1/profiles", kPatients, [this](HttpRequest &req) {
        json list = json::array();
        for (const auto &p : engine_.store().profiles(req.who->account_id)) list.push_back(engine_.accounts().profile_json(p));
        req.audit.detail = {{"count", list.size()}};
        return HttpResponse::json(200, {{"profiles", list}});
    }, "profile.list");
    add("POST", "/v1/profiles", kPatients, [this](HttpRequest &req) {
        HttpResponse bad;
        auto b = json_body(req, bad);
        if (!b) return bad;
        json details = json::object();
        std::string relation;
        if (auto problem = apply_profile_fields(*b, details, &relation, true); !problem.empty())
            return HttpResponse::error(400, "invalid_field", problem);
        if (engine_.store().profiles(req.who->account_id).size() >= 20)
            return HttpResponse::error(409, "limit_reached", "an account may have at most 20 profiles");
        ProfileRecord p = engine_.accounts().new_profile(req.who->account_id, relation, details);
        Batch batch;
        Store::profile_insert(batch, p);
        engine_.store().write(batch);
        req.audit.profile_id = p.id;
        return HttpResponse::json(201, engine_.accounts().profile_json(p));
    }, "profile.create");
    add("GET", "/v1/profiles/{id}", kPatients, [this](HttpRequest &req) {
        req.audit.profile_id = req.params["id"];
        auto p = engine_.store().profile(req.params["id"]);
        if (!p || p->account_id != req.who->account_id) return HttpResponse::error(404, "not_found", "no such profile");
        return HttpResponse::json(200, engine_.accounts().profile_json(*p));
    }, "profile.read");
    add("PATCH", "/v1/profiles/{id}", kPatients, [this](HttpRequest &req) {
        req.audit.profile_id = req.params["id"];
        HttpResponse bad;
        auto b = json_body(req, bad);
        if (!b) return bad;
        auto p = engine_.store().profile(req.params["id"]);
        if (!p || p->account_id != req.who->account_id) return HttpResponse::error(404, "not_found", "no such profile");
        json details = engine_.accounts().profile_details(*p);
        std::string relation = p->relation;
        // The self profile stays self; members may change relation.
        if (auto problem = apply_profile_fields(*b, details, p->relation == "self" ? nullptr : &relation, false);
            !problem.empty())
            return HttpResponse::error(400, "invalid_field", problem);
        p->relation = relation;
        p->details_sealed = engine_.accounts().seal_profile_details(p->id, details);
        Batch batch;
        Store::profile_update(batch, *p);
        engine_.store().write(batch);
        return HttpResponse::json(200, engine_.accounts().profile_json(*p));
    }, "profile.update");
    add("DELETE", "/v1/profiles/{id}", kPatients, [this](HttpRequest &req) {
        req.audit.profile_id = req.params["id"];
        switch (engine_.privacy().erase_profile(*req.who, req.params["id"])) {
        case Privacy::EraseResult::not_found: return HttpResponse::error(404, "not_found", "no such profile");
        case Privacy::EraseResult::is_self:
            return HttpResponse::error(409, "is_self", "the self profile goes with the account: DELETE /v1/account");
        case Privacy::EraseResult::erased: break;
        }
        return HttpResponse::json(200, {{"erased", true}});
    }, "profile.erase");

    add("GET", "/v1/account", kSignedIn, [this](HttpRequest &req) {
        auto a = engine_.store().account(req.who->account_id);
        if (!a) return HttpResponse::error(404, "not_found", "no such account");
        req.audit.target = "account:" + a->id;
        json out = {{"id", a->id}, {"guest", a->kind == "guest"}, {"role", a->role}, {"created_at", a->created_ms}};
        std::string email = engine_.accounts().email_of(*a);
        out["email"] = email.empty() ? json(nullptr) : json(email);
        out["expires_at"] = a->expires_ms ? json(*a->expires_ms) : json(nullptr);
        return HttpResponse::json(200, out);
    }, "account.read");
    add("GET", "/v1/account/export", kPatients, [this](HttpRequest &req) {
        req.audit.target = "account:" + req.who->account_id;
        HttpResponse r = HttpResponse::json(200, engine_.privacy().export_account(*req.who));
        r.headers.push_back({"Content-Disposition", "attachment; filename=\"consilium-export.json\""});
        r.headers.push_back({"Cache-Control", "no-store"});
        return r;
    }, "account.export");
    add("DELETE", "/v1/account", kSignedIn, [this](HttpRequest &req) {
        req.audit.target = "account:" + req.who->account_id;
        engine_.privacy().erase_account(*req.who);
        engine_.close_chats_of(*req.who, true);
        return HttpResponse::json(200, {{"erased", true}});
    }, "account.erase");
}

}  // namespace consilium
