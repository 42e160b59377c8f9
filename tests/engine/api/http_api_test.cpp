// Every route of the REST API declares who may call it, the routes that touch health data or
// administer the service are audited, and docs/security.md's roles table lists every route.
// The rules are then exercised on a real engine: no token, a guest on staff routes, and so on.
#include "runtime.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace consilium {
namespace {

using json = nlohmann::json;

class Routes : public ::testing::Test {
protected:
    void SetUp() override {
        host::ConfigSources src;
        src.data_dir = dir_.path();
        src.sets.emplace_back("log.level", "warn");
        runtime_ = std::make_unique<host::HostRuntime>(host::load_config(src));
        runtime_->engine().set_ready(true);
    }
    HttpApi &api() { return runtime_->engine().http_api(); }
    HttpResponse call(const std::string &method, const std::string &target, const std::string &token = "",
                      const std::string &body = "") {
        HttpRequest req;
        req.method = method;
        HttpApi::split_target(target, req.path, req.query);
        if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
        req.body = body;
        req.peer = "127.0.0.1:5555";
        return api().handle(req);
    }
    std::string token_for(const std::string &role) {
        json r = role == "guest" ? runtime_->engine().accounts().create_guest()
                                 : runtime_->engine().accounts().create_account(role);
        return r["access_token"];
    }
    // A concrete path for a pattern: {id} becomes an id nobody has.
    static std::string concrete(std::string pattern) {
        for (auto p = pattern.find('{'); p != std::string::npos; p = pattern.find('{'))
            pattern.replace(p, pattern.find('}', p) - p + 1, "x_does_not_exist");
        return pattern;
    }

    test::TempDir dir_;
    std::unique_ptr<host::HostRuntime> runtime_;
};

const std::set<std::string> kRoles = {"public", "guest", "patient", "author", "operator"};

TEST_F(Routes, EveryRouteDeclaresWhoMayCallIt) {
    ASSERT_GE(api().routes().size(), 20u);
    for (const auto &r : api().routes()) {
        SCOPED_TRACE(r.method + " " + r.pattern);
        EXPECT_FALSE(r.roles.empty()) << "no declared rule";
        for (const auto &role : r.roles) EXPECT_TRUE(kRoles.count(role)) << "unknown role " << role;
        if (r.roles.count("public")) {
            EXPECT_EQ(r.roles.size(), 1u) << "public routes name no roles";
            // Only the service's own routes and sign-in are open.
            EXPECT_TRUE(r.pattern == "/healthz" || r.pattern == "/readyz" || r.pattern == "/metrics" ||
                        r.pattern.rfind("/v1/auth/", 0) == 0);
        }
    }
}

TEST_F(Routes, HealthDataAndAdministrationAreAudited) {
    for (const auto &r : api().routes()) {
        SCOPED_TRACE(r.method + " " + r.pattern);
        bool health = r.pattern.rfind("/v1/profiles", 0) == 0 || r.pattern.rfind("/v1/consultations", 0) == 0 ||
                      r.pattern.rfind("/v1/account", 0) == 0 || r.pattern.rfind("/v1/voice", 0) == 0 ||
                      r.pattern.rfind("/v1/admin", 0) == 0;
        if (health) {
            EXPECT_FALSE(r.audit.empty()) << "touches health data or administers, but is not audited";
        }
    }
}

TEST_F(Routes, TheRolesTableInSecurityMdListsEveryRoute) {
    std::ifstream in(std::string(CONSILIUM_TEST_SOURCE_DIR) + "/docs/security.md");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string doc = ss.str();
    ASSERT_FALSE(doc.empty());
    for (const auto &r : api().routes())
        EXPECT_NE(doc.find("`" + r.method + " " + r.pattern + "`"), std::string::npos)
            << r.method << " " << r.pattern << " is missing from docs/security.md's roles table";
}

TEST_F(Routes, TheRulesHoldForEveryRoute) {
    for (const auto &r : api().routes()) {
        if (r.roles.count("public")) continue;
        SCOPED_TRACE(r.method + " " + r.pattern);
        std::string path = concrete(r.pattern);
        EXPECT_EQ(call(r.method, path).status, 401) << "no token";
        EXPECT_EQ(call(r.method, path, "not-a-token").status, 401);
        for (const char *role : {"guest", "patient", "author", "operator"}) {
            // A fresh account per call: some routes end the session or erase the account.
            HttpResponse resp = call(r.method, path, token_for(role), "{}");
            json body = json::parse(resp.body, nullptr, false);
            std::string code = body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
            if (r.roles.count(role))
                EXPECT_NE(code, "forbidden") << role << " may call this";
            else
                EXPECT_TRUE(resp.status == 403 && code == "forbidden") << role << " may not call this: " << resp.body;
            EXPECT_NE(resp.status, 401) << role << ": " << resp.body;
        }
    }
}

}  // namespace
}  // namespace consilium
