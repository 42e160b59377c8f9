// Routes of the service itself: health, readiness, metrics, and the specialist panel.
#include "api/http_api.hpp"
#include "engine.hpp"

namespace consilium {

using json = nlohmann::json;

void HttpApi::add_service_routes() {
    add("GET", "/healthz", {"public"}, [](HttpRequest &) { return HttpResponse::json(200, {{"status", "alive"}}); });
    add("GET", "/readyz", {"public"}, [this](HttpRequest &) {
        auto why = engine_.not_ready_reason();
        if (!why.empty()) return HttpResponse::json(503, {{"status", "not_ready"}, {"reason", why}});
        return HttpResponse::json(200, {{"status", "ready"}});
    });
    add("GET", "/metrics", {"public"}, [this](HttpRequest &) {
        HttpResponse r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = engine_.metrics().render();
        return r;
    });
    add("GET", "/v1/specialists", kSignedIn, [this](HttpRequest &req) {
        auto panel = engine_.panel();
        std::string locale = req.query.count("locale") ? req.query["locale"] : "";
        auto locales = engine_.locales();
        const Locale *loc = locales && !locale.empty() ? locales->find(locale) : nullptr;
        json list = json::array();
        for (const auto &p : panel->personas) {
            json item = {{"id", p.id},       {"name", p.name},   {"title", p.title}, {"specialty", p.specialty},
                         {"group", p.group}, {"entry", p.entry}, {"voice", p.voice}};
            if (loc && loc->personas.contains(p.id)) {
                const json &l = loc->personas[p.id];
                if (l.contains("name")) item["name"] = l["name"];
                if (l.contains("title")) item["title"] = l["title"];
            }
            json audience = json::object();
            if (p.audience.min_age_years) audience["min_age_years"] = *p.audience.min_age_years;
            if (p.audience.max_age_years) audience["max_age_years"] = *p.audience.max_age_years;
            item["audience"] = audience;
            list.push_back(item);
        }
        return HttpResponse::json(200, {{"specialists", list}});
    });
}

}  // namespace consilium
