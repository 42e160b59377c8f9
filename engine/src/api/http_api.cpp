#include "api/http_api.hpp"

#include "engine.hpp"
#include "util/log.hpp"

#include <algorithm>

namespace consilium {

using json = nlohmann::json;

namespace {

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

std::string outcome_of(int status) {
    if (status < 400) return "ok";
    if (status == 401 || status == 403) return "denied";
    if (status == 404) return "not_found";
    if (status < 500) return "invalid";
    return "error";
}

}  // namespace

const std::set<std::string> HttpApi::kPatients = {"guest", "patient"};
const std::set<std::string> HttpApi::kSignedIn = {"guest", "patient", "author", "operator"};
const std::set<std::string> HttpApi::kAuthors = {"author", "operator"};
const std::set<std::string> HttpApi::kOperators = {"operator"};

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

void HttpApi::add(std::string method, std::string pattern, std::set<std::string> roles, Handler h, std::string audit) {
    routes_.push_back({std::move(method), std::move(pattern), std::move(roles), std::move(audit), std::move(h)});
}

HttpApi::HttpApi(Engine &engine) : engine_(engine) {
    add_service_routes();
    add_auth_routes();
    add_profile_routes();
    add_consultation_routes();
    add_voice_routes();
    add_admin_routes();
}

std::optional<json> HttpApi::json_body(const HttpRequest &req, HttpResponse &error, bool empty_ok) {
    if (req.body.empty() && empty_ok) return json::object();
    json b = json::parse(req.body, nullptr, false);
    if (!b.is_object()) {
        error = HttpResponse::error(400, "bad_json", "the body must be a JSON object");
        return std::nullopt;
    }
    return b;
}

HttpResponse HttpApi::handle(HttpRequest req) {
    bool path_known = false;
    for (const auto &r : routes_) {
        std::map<std::string, std::string> params;
        if (!match(r.pattern, req.path, params)) continue;
        path_known = true;
        if (r.method != req.method && !(r.method == "GET" && req.method == "HEAD")) continue;
        req.params = std::move(params);
        HttpResponse resp = run(r, req);
        if (!r.audit.empty()) {
            AuditActor actor;
            if (req.who) {
                actor.account = req.who->account_id;
                actor.role = req.who->role;
            }
            if (!req.peer.empty()) actor.peer = req.peer;
            json detail = req.audit.detail;
            detail["status"] = resp.status;
            engine_.audit().record(actor, {r.audit, outcome_of(resp.status), req.audit.profile_id, req.audit.target, detail});
        }
        return resp;
    }
    if (path_known) return HttpResponse::error(405, "method_not_allowed", "method not allowed here");
    return HttpResponse::error(404, "not_found", "no such endpoint");
}

std::optional<std::string> HttpApi::bearer_token(const HttpRequest &req) {
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end()) return std::nullopt;
    const std::string &v = auth->second;
    if (v.size() > 7 && (v.compare(0, 7, "Bearer ") == 0 || v.compare(0, 7, "bearer ") == 0)) return v.substr(7);
    return std::string();
}

HttpResponse HttpApi::run(const Route &r, HttpRequest &req) {
    if (!r.roles.count("public")) {
        auto token = bearer_token(req);
        if (!token || token->empty()) {
            auto r401 = HttpResponse::error(401, "unauthorized", "this needs Authorization: Bearer <access_token>");
            r401.headers.push_back({"WWW-Authenticate", "Bearer"});
            return r401;
        }
        AuthFailure why;
        try {
            req.who = engine_.accounts().authenticate(*token, why);
        } catch (const StorageError &e) {
            log::error("api", "storage failed", {{"route", r.pattern}, {"why", e.what()}});
            return HttpResponse::error(503, "storage_unavailable", "storage is unavailable; try again");
        }
        if (!req.who) {
            auto r401 = HttpResponse::error(why.status, why.code, why.message);
            r401.headers.push_back({"WWW-Authenticate", "Bearer error=\"invalid_token\""});
            return r401;
        }
        req.who->peer = req.peer;
        if (!r.roles.count(req.who->role)) return HttpResponse::error(403, "forbidden", "your role may not call this");
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

}  // namespace consilium
