// The REST API (CONTRACT.md "HTTP API"). Each route declares who may call it: "public" or a set
// of roles; tests/engine/api/http_api_test.cpp fails if a route has no rule. Handlers run on the
// engine's workers (they may read storage), never on a transport thread.
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
        Handler handler;
    };

    explicit HttpApi(Engine &engine);
    // Splits target into path and query, finds the route, authenticates, authorizes, runs the
    // handler. Unknown paths: 404; known path, other method: 405.
    HttpResponse handle(HttpRequest req);
    const std::vector<Route> &routes() const { return routes_; }

    static void split_target(const std::string &target, std::string &path, std::map<std::string, std::string> &query);

private:
    void add(std::string method, std::string pattern, std::set<std::string> roles, Handler h);
    static bool match(const std::string &pattern, const std::string &path, std::map<std::string, std::string> &params);

    Engine &engine_;
    std::vector<Route> routes_;
};

}  // namespace consilium
