// Routes of sign-in (CONTRACT.md, docs/security.md): guests, registration (and guest upgrade),
// login, refresh and logout. Their audit entries are written by Accounts, which knows more
// (which account a failed login was for, a replayed refresh token).
#include "api/http_api.hpp"
#include "engine.hpp"

namespace consilium {

using json = nlohmann::json;

namespace {

HttpResponse answer(const AuthResult &r, int ok_status) {
    if (r.body) {
        HttpResponse resp = HttpResponse::json(ok_status, *r.body);
        resp.headers.push_back({"Cache-Control", "no-store"});
        return resp;
    }
    HttpResponse resp = HttpResponse::error(r.failure.status, r.failure.code, r.failure.message);
    if (r.failure.retry_after_ms > 0)
        resp.headers.push_back({"Retry-After", std::to_string((r.failure.retry_after_ms + 999) / 1000)});
    if (r.failure.status == 401) resp.headers.push_back({"WWW-Authenticate", "Bearer"});
    return resp;
}

}  // namespace

void HttpApi::add_auth_routes() {
    add("POST", "/v1/auth/guest", {"public"}, [this](HttpRequest &req) {
        if (!engine_.service().accepting())
            return HttpResponse::error(503, "shutting_down", "the server is restarting; try again shortly");
        HttpResponse resp = HttpResponse::json(201, engine_.accounts().create_guest(req.peer));
        resp.headers.push_back({"Cache-Control", "no-store"});
        return resp;
    });
    add("POST", "/v1/auth/register", {"public"}, [this](HttpRequest &req) {
        HttpResponse bad;
        auto body = json_body(req, bad);
        if (!body) return bad;
        // With a guest's token: upgrade that guest (its history stays). A token that does not
        // verify is refused rather than silently ignored.
        std::optional<Principal> guest;
        if (auto token = bearer_token(req)) {
            AuthFailure why;
            guest = token->empty() ? std::nullopt : engine_.accounts().authenticate(*token, why);
            if (!guest) return HttpResponse::error(401, "unauthorized", why.message.empty() ? "invalid token" : why.message);
        }
        return answer(engine_.accounts().register_account(*body, guest, req.peer), 201);
    });
    add("POST", "/v1/auth/login", {"public"}, [this](HttpRequest &req) {
        HttpResponse bad;
        auto body = json_body(req, bad);
        if (!body) return bad;
        return answer(engine_.accounts().login(*body, req.peer), 200);
    });
    add("POST", "/v1/auth/refresh", {"public"}, [this](HttpRequest &req) {
        HttpResponse bad;
        auto body = json_body(req, bad);
        if (!body) return bad;
        return answer(engine_.accounts().refresh(*body, req.peer), 200);
    });
    add("POST", "/v1/auth/logout", kSignedIn, [this](HttpRequest &req) {
        HttpResponse bad;
        auto body = json_body(req, bad, true);
        if (!body) return bad;
        bool everywhere = body->value("everywhere", false);
        engine_.accounts().logout(*req.who, everywhere);
        engine_.close_chats_of(*req.who, everywhere);
        req.audit.target = "account:" + req.who->account_id;
        req.audit.detail = {{"everywhere", everywhere}};
        return HttpResponse::json(200, {{"logged_out", true}});
    }, "auth.logout");
}

}  // namespace consilium
