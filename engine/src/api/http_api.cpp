#include "api/http_api.hpp"

#include "engine.hpp"
#include "util/log.hpp"

#include <algorithm>

namespace consilium {

using json = nlohmann::json;

namespace {

const std::set<std::string> kPatients = {"guest", "patient"};
const std::set<std::string> kSignedIn = {"guest", "patient", "author", "operator"};
const std::set<std::string> kAuthors = {"author", "operator"};

std::string url_decode(const std::string &s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

HttpResponse HttpResponse::json(int status, const nlohmann::json &body) {
    HttpResponse r;
    r.status = status;
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
}

HttpResponse HttpResponse::error(int status, const std::string &code, const std::string &message) {
    return json(status, {{"error", {{"code", code}, {"message", message}}}});
}

void HttpApi::split_target(const std::string &target, std::string &path, std::map<std::string, std::string> &query) {
    auto q = target.find('?');
    path = url_decode(target.substr(0, q));
    if (q == std::string::npos) return;
    std::string rest = target.substr(q + 1);
    size_t start = 0;
    while (start <= rest.size()) {
        size_t amp = rest.find('&', start);
        std::string kv = rest.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
        start = amp == std::string::npos ? rest.size() + 1 : amp + 1;
        if (kv.empty()) continue;
        auto eq = kv.find('=');
        query[url_decode(kv.substr(0, eq))] = eq == std::string::npos ? "" : url_decode(kv.substr(eq + 1));
    }
}

bool HttpApi::match(const std::string &pattern, const std::string &path, std::map<std::string, std::string> &params) {
    size_t i = 0, j = 0;
    while (i < pattern.size() && j <= path.size()) {
        if (pattern[i] == '{') {
            size_t close = pattern.find('}', i);
            std::string name = pattern.substr(i + 1, close - i - 1);
            size_t end = path.find('/', j);
            if (end == std::string::npos) end = path.size();
            if (end == j) return false;
            params[name] = path.substr(j, end - j);
            i = close + 1;
            j = end;
            continue;
        }
        if (j >= path.size() || pattern[i] != path[j]) return false;
        ++i;
        ++j;
    }
    return i == pattern.size() && j == path.size();
}

void HttpApi::add(std::string method, std::string pattern, std::set<std::string> roles, Handler h) {
    routes_.push_back({std::move(method), std::move(pattern), std::move(roles), std::move(h)});
}

HttpApi::HttpApi(Engine &engine) : engine_(engine) {
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
    add("POST", "/v1/auth/guest", {"public"}, [this](HttpRequest &) {
        if (!engine_.service().accepting())
            return HttpResponse::error(503, "shutting_down", "the server is restarting; try again shortly");
        return HttpResponse::json(201, engine_.accounts().create_guest());
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
    add("POST", "/v1/admin/personas/reload", kAuthors, [this](HttpRequest &) {
        LoadResult r = engine_.reload_personas();
        json diags = json::array();
        for (const auto &d : r.diagnostics) diags.push_back(d.format());
        auto live = engine_.panel();
        json body = {{"reloaded", r.ok()},
                     {"personas", live->personas.size()},
                     {"generation", live->generation},
                     {"errors", r.errors()},
                     {"diagnostics", diags}};
        // 422: the new files were refused and the last good panel is still live.
        return HttpResponse::json(r.ok() ? 200 : 422, body);
    });
    add("POST", "/v1/voice/session", kPatients, [this](HttpRequest &req) {
        json b = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
        if (!b.is_object()) return HttpResponse::error(400, "bad_json", "the body must be a JSON object");
        for (const char *k : {"consultation_id", "profile_id", "specialist", "locale"})
            if (b.contains(k) && !b[k].is_string()) return HttpResponse::error(400, "invalid_field", std::string(k) + ": a string");
        VoiceError error{};
        auto out = engine_.voice().mint(*req.who, b, error);
        if (!out) return HttpResponse::error(error.status, error.code, error.message);
        return HttpResponse::json(201, *out);
    });
    add("POST", "/v1/voice/transcript", kPatients, [this](HttpRequest &req) {
        // Transcripts of a browser's own WebRTC session, sent back to be kept with the
        // consultation: {consultation_id, specialist?, locale?, items: [{id, role, text}]}.
        json b = json::parse(req.body, nullptr, false);
        if (!b.is_object() || !b.contains("consultation_id") || !b["consultation_id"].is_string())
            return HttpResponse::error(400, "missing_field", "consultation_id: required");
        if (!b.contains("items") || !b["items"].is_array() || b["items"].empty() || b["items"].size() > 100)
            return HttpResponse::error(400, "invalid_field", "items: a list of 1 to 100 {id, role, text}");
        for (const auto &item : b["items"]) {
            if (!item.is_object() || !item.contains("id") || !item["id"].is_string() || item["id"].get<std::string>().empty() ||
                item["id"].get<std::string>().size() > 128 || !item.contains("text") || !item["text"].is_string() ||
                (item.value("role", "") != "patient" && item.value("role", "") != "specialist"))
                return HttpResponse::error(400, "invalid_field", "items: each {id, role: patient|specialist, text}");
            if (item["text"].get<std::string>().size() > 32000)
                return HttpResponse::error(413, "too_large", "items: text at most 32000 bytes");
        }
        json params = {{"consultation_id", b["consultation_id"]}};
        for (const char *k : {"specialist", "locale"})
            if (b.contains(k) && b[k].is_string()) params[k] = b[k];
        VoiceError error{};
        auto ctx = engine_.voice().prepare(*req.who, params, error);
        if (!ctx) return HttpResponse::error(error.status, error.code, error.message);
        json emergency = nullptr;
        for (const auto &item : b["items"]) {
            json e = engine_.voice().transcript(*req.who, *ctx, item["role"], item["id"], item["text"]);
            if (!e.is_null()) emergency = e;
        }
        // 202: the turns are being stored; they appear in the consultation's events.
        return HttpResponse::json(202, {{"accepted", b["items"].size()}, {"emergency", emergency}});
    });
    add("GET", "/v1/profiles", kPatients, [this](HttpRequest &req) {
        json list = json::array();
        for (const auto &p : engine_.store().profiles(req.who->account_id)) list.push_back(engine_.accounts().profile_json(p));
        return HttpResponse::json(200, {{"profiles", list}});
    });
    add("POST", "/v1/profiles", kPatients, [this](HttpRequest &req) {
        json b = json::parse(req.body, nullptr, false);
        if (!b.is_object()) return HttpResponse::error(400, "bad_json", "the body must be a JSON object");
        static const std::set<std::string> relations = {"child", "parent", "partner", "sibling", "other"};
        if (!b.contains("name") || !b["name"].is_string() || b["name"].get<std::string>().empty() ||
            b["name"].get<std::string>().size() > 200)
            return HttpResponse::error(400, "invalid_field", "name: a non-empty string of at most 200 characters");
        std::string relation = b.value("relation", "");
        if (!relations.count(relation))
            return HttpResponse::error(400, "invalid_field", "relation: one of child, parent, partner, sibling, other");
        json details = {{"name", b["name"]}};
        if (b.contains("birth_date")) {
            if (!b["birth_date"].is_string() || b["birth_date"].get<std::string>().size() != 10)
                return HttpResponse::error(400, "invalid_field", "birth_date: YYYY-MM-DD");
            details["birth_date"] = b["birth_date"];
        }
        if (b.contains("sex")) {
            std::string sex = b["sex"].is_string() ? b["sex"].get<std::string>() : "";
            if (sex != "female" && sex != "male" && sex != "other")
                return HttpResponse::error(400, "invalid_field", "sex: female, male or other");
            details["sex"] = sex;
        }
        if (engine_.store().profiles(req.who->account_id).size() >= 20)
            return HttpResponse::error(409, "limit_reached", "an account may have at most 20 profiles");
        ProfileRecord p = engine_.accounts().new_profile(req.who->account_id, relation, details);
        Batch batch;
        Store::profile_insert(batch, p);
        engine_.store().write(batch);
        return HttpResponse::json(201, engine_.accounts().profile_json(p));
    });
    add("GET", "/v1/consultations", kPatients, [this](HttpRequest &req) {
        std::optional<std::string> profile;
        if (req.query.count("profile_id") && !req.query["profile_id"].empty()) {
            auto p = engine_.store().profile(req.query["profile_id"]);
            if (!p || p->account_id != req.who->account_id)
                return HttpResponse::error(404, "not_found", "no such profile");
            profile = p->id;
        }
        json list = json::array();
        for (const auto &c : engine_.store().consultations(req.who->account_id, profile, 200))
            list.push_back(engine_.consultation_json(c, false));
        return HttpResponse::json(200, {{"consultations", list}});
    });
    add("GET", "/v1/consultations/{id}", kPatients, [this](HttpRequest &req) {
        auto c = engine_.store().consultation(req.params["id"]);
        // Someone else's consultation is "not found", never "forbidden": ids cannot be probed.
        if (!c || c->account_id != req.who->account_id) return HttpResponse::error(404, "not_found", "no such consultation");
        return HttpResponse::json(200, engine_.consultation_json(*c, true));
    });
}

HttpResponse HttpApi::handle(HttpRequest req) {
    bool path_known = false;
    for (const auto &r : routes_) {
        std::map<std::string, std::string> params;
        if (!match(r.pattern, req.path, params)) continue;
        path_known = true;
        if (r.method != req.method && !(r.method == "GET" && req.method == "HEAD")) continue;
        req.params = std::move(params);
        if (!r.roles.count("public")) {
            auto auth = req.headers.find("authorization");
            std::string token;
            if (auth != req.headers.end() && auth->second.size() > 7 &&
                (auth->second.compare(0, 7, "Bearer ") == 0 || auth->second.compare(0, 7, "bearer ") == 0))
                token = auth->second.substr(7);
            if (token.empty()) {
                auto r401 = HttpResponse::error(401, "unauthorized", "this needs Authorization: Bearer <access_token>");
                r401.headers.push_back({"WWW-Authenticate", "Bearer"});
                return r401;
            }
            AuthFailure why;
            req.who = engine_.accounts().authenticate(token, why);
            if (!req.who) {
                auto r401 = HttpResponse::error(why.status, why.code, why.message);
                r401.headers.push_back({"WWW-Authenticate", "Bearer error=\"invalid_token\""});
                return r401;
            }
            if (!r.roles.count(req.who->role))
                return HttpResponse::error(403, "forbidden", "your role may not call this");
        }
        try {
            return r.handler(req);
        } catch (const StorageError &e) {
            log::error("api", "storage failed", {{"route", r.pattern}, {"why", e.what()}});
            return HttpResponse::error(503, "storage_unavailable", "storage is unavailable; try again");
        } catch (const std::exception &e) {
            log::error("api", "handler failed", {{"route", r.pattern}, {"why", e.what()}});
            return HttpResponse::error(500, "internal", "internal error");
        }
    }
    if (path_known) return HttpResponse::error(405, "method_not_allowed", "method not allowed here");
    return HttpResponse::error(404, "not_found", "no such endpoint");
}

}  // namespace consilium
