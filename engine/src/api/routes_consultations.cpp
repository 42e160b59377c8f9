// Routes of a patient's consultations: the list (optionally of one family member) and one
// consultation with its messages. Another account's consultation answers 404, never 403, so
// ids cannot be probed.
#include "api/http_api.hpp"
#include "engine.hpp"

namespace consilium {

using json = nlohmann::json;

void HttpApi::add_consultation_routes() {
    add("GET", "/v1/consultations", kPatients, [this](HttpRequest &req) {
        std::optional<std::string> profile;
        if (req.query.count("profile_id") && !req.query["profile_id"].empty()) {
            req.audit.profile_id = req.query["profile_id"];
            auto p = engine_.store().profile(req.query["profile_id"]);
            if (!p || p->account_id != req.who->account_id) return HttpResponse::error(404, "not_found", "no such profile");
            profile = p->id;
        }
        json list = json::array();
        for (const auto &c : engine_.store().consultations(req.who->account_id, profile, 200))
            list.push_back(engine_.consultation_json(c, false));
        req.audit.detail = {{"count", list.size()}};
        return HttpResponse::json(200, {{"consultations", list}});
    }, "consultation.list");
    add("GET", "/v1/consultations/{id}", kPatients, [this](HttpRequest &req) {
        req.audit.target = "consultation:" + req.params["id"];
        auto c = engine_.store().consultation(req.params["id"]);
        if (!c || c->account_id != req.who->account_id) return HttpResponse::error(404, "not_found", "no such consultation");
        req.audit.profile_id = c->profile_id;
        return HttpResponse::json(200, engine_.consultation_json(*c, true));
    }, "consultation.read");
}

}  // namespace consilium
