// The REST API (CONTRACT.md "HTTP API"). Each route declares who may call it: "public" or a set
// of roles (tests/engine/api/http_api_test.cpp fails if a route has none), and the audit action
// it records, if it touches health data or administers the service (docs/security.md). Routes
// live in routes_*.cpp by area. Handlers run on the engine's workers (they may read storage),
// never on a transport thread.
#pragma once

#include "consult/consultation.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace consilium {

class Engine;

struct HttpRequest {
    std::string method;
    std::string path;
    std::map<std::string, std::string> query;
    std::map<std::string, std::string> headers;  // lowercase names
    std::string body;
    std::string peer;
    std::map<std::string, std::string> params;   // from the route pattern, e.g. {id}
    std::optional<Principal> who;                // set for authenticated routes
    // What the audit entry of this request names; handlers fill it as they learn it.
    struct {
        std::optional<std::string> profile_id;
        std::optional<std::string> target;
        nlohmann::json detail = nlohmann::json::object();
    } audit;
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    static HttpResponse json(int status, const nlohmann::json &body);
    static HttpResponse error(int status, const std::string &code, const std::string &message);
};

class HttpApi {
public:
    using Handler = std::function<HttpResponse(HttpRequest &)>;
    struct Route {
        std::string method;
        std::string pattern;          // "/v1/consultations/{id}"
        std::set<std::string> roles;  // {"public"} or roles that may call it
        std::string audit;            // audit action ("" = not audited)
        Handler handler;
    };

    explicit HttpApi(Engine &engine);
    // Splits target into path and query, finds the route, authenticates, authorizes, runs the
    // handler. Unknown paths: 404; known path, other method: 405.
    HttpResponse handle(HttpRequest req);
    const std::vector<Route> &routes() const { return routes_; }

    static void split_target(const std::string &target, std::string &path, std::map<std::string, std::string> &query);

    static const std::set<std::string> kPatients;  // guest, patient: their own health data
    static const std::set<std::string> kSignedIn;  // every role
    static const std::set<std::string> kAuthors;   // author, operator
    static const std::set<std::string> kOperators; // operator

private:
    void add(std::string method, std::string pattern, std::set<std::string> roles, Handler h,
             std::string audit = "");
    void add_service_routes();
    void add_auth_routes();
    void add_profile_routes();
    void add_consultation_routes();
    void add_voice_routes();
    void add_admin_routes();
    HttpResponse run(const Route &r, HttpRequest &req);
    // The bearer token of the Authorization header: nullopt without the header, "" when it is
    // not a bearer token.
    static std::optional<std::string> bearer_token(const HttpRequest &req);
    // Reads a JSON object body; nullopt (and `error` set) when it is not one.
    static std::optional<nlohmann::json> json_body(const HttpRequest &req, HttpResponse &error, bool empty_ok = false);
    static bool match(const std::string &pattern, const std::string &path, std::map<std::string, std::string> &params);

    Engine &engine_;
    std::vector<Route> routes_;
};

}  // namespace consilium
