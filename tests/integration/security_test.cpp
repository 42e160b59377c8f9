// Issue 6's checks over real sockets against the real host (docs/security.md): two accounts with
// two family members each cannot reach each other's data by any id; forged, altered and expired
// tokens are refused; a replayed refresh token ends the session; a guest who registers keeps the
// history and an expired guest is erased; `consilium audit verify` finds a changed or removed
// entry; and no health data is in the database files, the log or the metrics in clear.
#include "chat_client.hpp"
#include "test_support.hpp"

#include "crypto/keyring.hpp"
#include "util/ids.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <csignal>
#include <sys/wait.h>
#include <thread>

namespace consilium::test {
namespace {

using namespace std::chrono_literals;

bool is(const json &f, const char *type) { return f.value("type", "") == type; }

net::Headers bearer(const std::string &token) { return {{"Authorization", "Bearer " + token}}; }

struct Patient {
    std::string id;
    std::string access;
    std::string refresh;
    std::string child;         // a family member's profile
    std::string consultation;  // about the child
};

json body_of(const net::HttpResponse &r) { return json::parse(r.body, nullptr, false); }

Patient register_patient(uint16_t port, const std::string &email) {
    net::HttpClient http("127.0.0.1", port, 30s);
    auto r = http.request("POST", "/v1/auth/register", json{{"email", email}, {"password", "correct horse battery"}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    json j = body_of(r);
    Patient p;
    p.id = j["account"].value("id", "");
    p.access = j.value("access_token", "");
    p.refresh = j.value("refresh_token", "");
    return p;
}

// A family member and one finished consultation about them.
void add_child_with_consultation(uint16_t port, Patient &p, const std::string &name, const std::string &text) {
    net::HttpClient http("127.0.0.1", port);
    auto r = http.request("POST", "/v1/profiles", json{{"name", name}, {"relation", "child"}, {"birth_date", "2019-04-02"}}.dump(),
                          bearer(p.access));
    ASSERT_EQ(r.status, 201) << r.body;
    p.child = body_of(r).value("id", "");
    ChatClient chat(port);
    ASSERT_TRUE(chat.connect(p.access));
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "m-" + p.child}, {"profile_id", p.child}, {"text", text}}));
    auto frames = chat.until_stream_end();
    ASSERT_FALSE(frames.empty());
    ASSERT_TRUE(is(frames.back(), "stream_end")) << frames.back().dump();
    p.consultation = frames.front().value("consultation_id", "");
    ASSERT_FALSE(p.consultation.empty());
}

std::string read_file(const std::filesystem::path &p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs `consilium ARGS` to completion; returns the exit code and fills out with stdout+stderr.
int run_cli(const std::string &args, std::string &out, const std::string &stdin_text = "") {
    std::string cmd = std::string(CONSILIUM_TEST_HOST_BINARY) + " " + args + " 2>&1";
    if (!stdin_text.empty()) cmd = "printf '%s\\n' '" + stdin_text + "' | " + cmd;
    FILE *f = popen(cmd.c_str(), "r");
    if (!f) return -1;
    char buf[4096];
    out.clear();
    while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// An access token as the host would sign it, with the parts a test wants wrong.
std::string forge(const std::filesystem::path &data_dir, json header, json payload, bool sign = true) {
    KeyRing ring = KeyRing::load(data_dir / "keys" / "token.keys", nullptr, false);
    if (header.is_object() && !header.contains("kid")) header["kid"] = ring.current_id();
    std::string input = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
    return input + "." + (sign ? base64url_encode(hmac_sha256(ring.current_key(), input)) : "");
}


// The key id in an access token's header.
std::string kid_of(const std::string &token) {
    auto header = base64url_decode(token.substr(0, token.find('.')));
    json h = json::parse(header.value_or(""), nullptr, false);
    return h.is_object() ? h.value("kid", "") : "";
}

// "data keys: current k_1; all: ..." -> k_1
std::string current_key(const std::string &status_out, const std::string &ring) {
    auto p = status_out.find(ring + " keys: current ");
    if (p == std::string::npos) return "";
    p += ring.size() + std::string(" keys: current ").size();
    return status_out.substr(p, status_out.find(';', p) - p);
}

int64_t now_s() { return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(); }

class Security : public ::testing::Test {
protected:
    void SetUp() override {
        host_ = std::make_unique<HostProcess>(std::vector<std::string>{"providers.mock.first_token_ms=0",
                                                                       "providers.mock.tokens_per_second=0",
                                                                       "providers.mock.reply_tokens=40"},
                                              dir_.path());
        ASSERT_TRUE(host_->start()) << host_->log();
    }
    uint16_t port() const { return host_->port(); }
    int status(const std::string &method, const std::string &target, const std::string &token, const std::string &body = "") {
        net::HttpClient http("127.0.0.1", port());
        return http.request(method, target, body, bearer(token)).status;
    }

    TempDir dir_;
    std::unique_ptr<HostProcess> host_;
};

TEST_F(Security, NoAccountReachesAnotherAccountsFamilyByAnyId) {
    Patient a = register_patient(port(), "ana@example.org");
    Patient b = register_patient(port(), "ben@example.org");
    ASSERT_NO_FATAL_FAILURE(add_child_with_consultation(port(), a, "Alma", "my daughter has a rash on her arms"));
    ASSERT_NO_FATAL_FAILURE(add_child_with_consultation(port(), b, "Bruno", "my son coughs at night"));

    for (const auto &[me, other] : {std::pair{a, b}, std::pair{b, a}}) {
        SCOPED_TRACE(me.id + " tries " + other.id);
        EXPECT_EQ(status("GET", "/v1/consultations/" + other.consultation, me.access), 404);
        EXPECT_EQ(status("GET", "/v1/profiles/" + other.child, me.access), 404);
        EXPECT_EQ(status("PATCH", "/v1/profiles/" + other.child, me.access, R"({"name":"x"})"), 404);
        EXPECT_EQ(status("DELETE", "/v1/profiles/" + other.child, me.access), 404);
        net::HttpClient http("127.0.0.1", port());
        auto list = http.get("/v1/consultations?profile_id=" + other.child, bearer(me.access));
        EXPECT_TRUE(list.status == 404 || body_of(list)["consultations"].empty()) << list.body;

        ChatClient chat(port());
        ASSERT_TRUE(chat.connect(me.access));
        ASSERT_TRUE(chat.send({{"type", "resume"}, {"consultation_id", other.consultation}, {"after_seq", 0}}));
        auto e = chat.next();
        ASSERT_TRUE(e);
        EXPECT_TRUE(is(*e, "error") && (*e)["code"] == "not_found") << e->dump();
        ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "x1"}, {"consultation_id", other.consultation}, {"text", "hello"}}));
        e = chat.next();
        ASSERT_TRUE(e);
        EXPECT_TRUE(is(*e, "error") && (*e)["code"] == "not_found") << e->dump();
        ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "x2"}, {"profile_id", other.child}, {"text", "hello"}}));
        e = chat.next();
        ASSERT_TRUE(e);
        EXPECT_TRUE(is(*e, "error") && (*e)["code"] == "not_found") << e->dump();
    }
    // Nothing of theirs changed.
    net::HttpClient http("127.0.0.1", port());
    auto mine = http.get("/v1/consultations/" + b.consultation, bearer(b.access));
    ASSERT_EQ(mine.status, 200);
    EXPECT_EQ(body_of(mine)["messages"].size(), 2u) << mine.body;
    EXPECT_EQ(status("GET", "/v1/profiles/" + b.child, b.access), 200);
    // An unknown id answers exactly like a foreign one.
    auto missing = http.get("/v1/consultations/c_doesnotexist", bearer(a.access));
    auto foreign = http.get("/v1/consultations/" + b.consultation, bearer(a.access));
    EXPECT_EQ(missing.status, foreign.status);
    EXPECT_EQ(body_of(missing)["error"]["code"], body_of(foreign)["error"]["code"]);
}

TEST_F(Security, ForgedAlteredAndExpiredTokensAreRefused) {
    Patient a = register_patient(port(), "cara@example.org");
    ASSERT_EQ(status("GET", "/v1/account", a.access), 200);
    // The token's own claims, to alter one at a time.
    auto dot1 = a.access.find('.'), dot2 = a.access.rfind('.');
    json claims = json::parse(base64url_decode(a.access.substr(dot1 + 1, dot2 - dot1 - 1)).value_or(""));
    ASSERT_TRUE(claims.is_object());
    json header = {{"alg", "HS256"}, {"typ", "at+jwt"}};
    ASSERT_EQ(status("GET", "/v1/account", forge(dir_.path(), header, claims)), 200) << "the forging itself is right";

    auto with = [&](const char *key, json value) {
        json c = claims;
        c[key] = std::move(value);
        return c;
    };
    std::map<std::string, std::string> attacks = {
        {"alg none", forge(dir_.path(), {{"alg", "none"}, {"typ", "at+jwt"}}, claims, false)},
        {"alg HS512", forge(dir_.path(), {{"alg", "HS512"}, {"typ", "at+jwt"}}, claims)},
        {"typ JWT", forge(dir_.path(), {{"alg", "HS256"}, {"typ", "JWT"}}, claims)},
        {"unknown kid", forge(dir_.path(), {{"alg", "HS256"}, {"typ", "at+jwt"}, {"kid", "k_nope"}}, claims)},
        {"other audience", forge(dir_.path(), header, with("aud", "another-api"))},
        {"other issuer", forge(dir_.path(), header, with("iss", "someone-else"))},
        {"expired", forge(dir_.path(), header, with("exp", now_s() - 60))},
        {"not yet valid", forge(dir_.path(), header, with("nbf", now_s() + 3600))},
        {"no session", [&] {
             json c = claims;
             c.erase("sid");
             return forge(dir_.path(), header, c);
         }()},
        {"unknown session", forge(dir_.path(), header, with("sid", "sn_forged"))},
    };
    // Altered after signing: role raised to operator, signature kept.
    json raised = with("role", "operator");
    attacks["tampered payload"] = a.access.substr(0, dot1 + 1) + base64url_encode(raised.dump()) + a.access.substr(dot2);
    attacks["truncated signature"] = a.access.substr(0, a.access.size() - 4);
    attacks["garbage"] = "not.a.token";

    for (const auto &[what, token] : attacks) {
        SCOPED_TRACE(what);
        EXPECT_EQ(status("GET", "/v1/account", token), 401);
        EXPECT_EQ(status("GET", "/v1/admin/audit", token), 401);
        ChatClient chat(port());
        EXPECT_FALSE(chat.connect(token));
    }
    // The real one still works, and a patient is not an operator.
    EXPECT_EQ(status("GET", "/v1/account", a.access), 200);
    EXPECT_EQ(status("GET", "/v1/admin/audit", a.access), 403);
}

TEST_F(Security, AReplayedRefreshTokenEndsTheSessionAndItsChats) {
    Patient a = register_patient(port(), "dora@example.org");
    net::HttpClient http("127.0.0.1", port());
    auto first = http.request("POST", "/v1/auth/refresh", json{{"refresh_token", a.refresh}}.dump());
    ASSERT_EQ(first.status, 200) << first.body;
    json pair = body_of(first);
    std::string access = pair["access_token"], refresh = pair["refresh_token"];
    ASSERT_NE(refresh, a.refresh);
    ASSERT_EQ(status("GET", "/v1/account", access), 200);

    ChatClient chat(port());
    ASSERT_TRUE(chat.connect(access));

    // Someone replays the spent token: the whole session ends.
    auto replay = http.request("POST", "/v1/auth/refresh", json{{"refresh_token", a.refresh}}.dump());
    EXPECT_EQ(replay.status, 401);
    EXPECT_EQ(body_of(replay)["error"]["code"], "invalid_grant");
    auto next = http.request("POST", "/v1/auth/refresh", json{{"refresh_token", refresh}}.dump());
    EXPECT_EQ(next.status, 401) << "the legitimate newer token is spent too";

    EXPECT_FALSE(chat.next(5s)) << "no frame, the chat closes";
    ASSERT_TRUE(chat.ws().close_info());
    EXPECT_EQ(chat.ws().close_info()->code, 4004);
    // Access tokens of the session stop working within the session cache's 5 s.
    bool refused = false;
    for (int i = 0; i < 40 && !refused; ++i) {
        refused = status("GET", "/v1/account", access) == 401;
        if (!refused) std::this_thread::sleep_for(250ms);
    }
    EXPECT_TRUE(refused);
    // Signing in again works.
    auto login = http.request("POST", "/v1/auth/login", json{{"email", "dora@example.org"}, {"password", "correct horse battery"}}.dump());
    EXPECT_EQ(login.status, 200) << login.body;
}

TEST_F(Security, LogoutEndsTheSessionAndWrongPasswordsAreThrottled) {
    Patient a = register_patient(port(), "eli@example.org");
    ChatClient chat(port());
    ASSERT_TRUE(chat.connect(a.access));
    EXPECT_EQ(status("POST", "/v1/auth/logout", a.access, "{}"), 200);
    EXPECT_FALSE(chat.next(5s));
    ASSERT_TRUE(chat.ws().close_info());
    EXPECT_EQ(chat.ws().close_info()->code, 4004);
    EXPECT_EQ(status("GET", "/v1/account", a.access), 401);

    net::HttpClient http("127.0.0.1", port(), 30s);
    auto unknown = http.request("POST", "/v1/auth/login", json{{"email", "nobody@example.org"}, {"password", "whatever123"}}.dump());
    auto wrong = http.request("POST", "/v1/auth/login", json{{"email", "eli@example.org"}, {"password", "whatever123"}}.dump());
    EXPECT_EQ(unknown.status, 401);
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(body_of(unknown)["error"], body_of(wrong)["error"]) << "the same answer: addresses cannot be probed";
    int throttled = 0;
    for (int i = 0; i < 8 && !throttled; ++i) {
        auto r = http.request("POST", "/v1/auth/login", json{{"email", "eli@example.org"}, {"password", "guess" + std::to_string(i) + "xxxxx"}}.dump());
        if (r.status == 429) {
            ++throttled;
            EXPECT_FALSE(r.header("Retry-After").empty());
        }
    }
    EXPECT_EQ(throttled, 1) << "lockouts begin after auth.login_free_failures";
}

TEST_F(Security, AGuestWhoRegistersKeepsTheHistory) {
    auto guest = new_guest(port());
    ChatClient chat(port());
    ASSERT_TRUE(chat.connect(guest.access_token));
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "g1"}, {"text", "I twisted my ankle yesterday"}}));
    auto frames = chat.until_stream_end();
    ASSERT_FALSE(frames.empty());
    std::string consultation = frames.front().value("consultation_id", "");

    net::HttpClient http("127.0.0.1", port(), 30s);
    auto r = http.request("POST", "/v1/auth/register", json{{"email", "fay@example.org"}, {"password", "correct horse battery"}}.dump(),
                          bearer(guest.access_token));
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(body_of(r)["account"]["id"], guest.account_id);
    EXPECT_EQ(body_of(r)["account"]["guest"], false);

    auto login = http.request("POST", "/v1/auth/login", json{{"email", "fay@example.org"}, {"password", "correct horse battery"}}.dump());
    ASSERT_EQ(login.status, 200);
    std::string access = body_of(login)["access_token"];
    auto list = http.get("/v1/consultations", bearer(access));
    ASSERT_EQ(list.status, 200);
    ASSERT_EQ(body_of(list)["consultations"].size(), 1u) << list.body;
    EXPECT_EQ(body_of(list)["consultations"][0]["id"], consultation);
    // The address is taken now.
    auto again = http.request("POST", "/v1/auth/register", json{{"email", "FAY@example.org"}, {"password", "another password"}}.dump());
    EXPECT_EQ(again.status, 409);
}

TEST(SecurityGuests, AnExpiredGuestIsErased) {
    HostProcess host({"auth.guest_ttl_s=2", "auth.guest_sweep_interval_s=1", "providers.mock.first_token_ms=0",
                      "providers.mock.tokens_per_second=0", "providers.mock.reply_tokens=20"});
    ASSERT_TRUE(host.start()) << host.log();
    auto guest = new_guest(host.port());
    std::string consultation;
    {
        ChatClient chat(host.port());
        ASSERT_TRUE(chat.connect(guest.access_token));
        ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "g1"}, {"text", "my ear hurts"}}));
        auto frames = chat.until_stream_end();
        ASSERT_FALSE(frames.empty());
        consultation = frames.front().value("consultation_id", "");
    }
    std::this_thread::sleep_for(4500ms);
    net::HttpClient http("127.0.0.1", host.port());
    EXPECT_EQ(http.get("/v1/consultations/" + consultation, bearer(guest.access_token)).status, 401);
    ASSERT_EQ(host.stop(), 0);
    // Gone from storage too, not only refused.
    sqlite3 *db = nullptr;
    ASSERT_EQ(sqlite3_open_v2((host.data_dir() / "consilium.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    auto count = [&](const std::string &sql) {
        sqlite3_stmt *st = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
        int64_t n = -1;
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return n;
    };
    EXPECT_EQ(count("SELECT count(*) FROM accounts WHERE id = '" + guest.account_id + "'"), 0);
    EXPECT_EQ(count("SELECT count(*) FROM consultations WHERE id = '" + consultation + "'"), 0);
    EXPECT_EQ(count("SELECT count(*) FROM messages WHERE consultation_id = '" + consultation + "'"), 0);
    EXPECT_EQ(count("SELECT count(*) FROM audit WHERE action = 'guest.expire'"), 1);
    sqlite3_close(db);
}

TEST_F(Security, AuditVerifyFindsAChangedOrRemovedEntry) {
    Patient a = register_patient(port(), "gus@example.org");
    ASSERT_NO_FATAL_FAILURE(add_child_with_consultation(port(), a, "Gina", "my daughter has a fever"));
    EXPECT_EQ(status("GET", "/v1/consultations/" + a.consultation, a.access), 200);
    ASSERT_EQ(host_->stop(), 0) << host_->log();

    std::string out;
    std::string args = "audit verify --data-dir " + dir_.str();
    ASSERT_EQ(run_cli(args, out), 0) << out;

    sqlite3 *db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() / "consilium.db").c_str(), &db), SQLITE_OK);
    auto exec = [&](const char *sql) { ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db); };
    // The table refuses updates; someone with the file drops that guard first.
    EXPECT_NE(sqlite3_exec(db, "UPDATE audit SET outcome = 'denied' WHERE seq = 3", nullptr, nullptr, nullptr), SQLITE_OK);
    exec("DROP TRIGGER audit_is_append_only");
    // One field of one entry: the outcome of entry 3.
    exec("UPDATE audit SET outcome = 'denied' WHERE seq = 3");
    EXPECT_EQ(run_cli(args, out), 1) << out;
    EXPECT_NE(out.find("3"), std::string::npos) << out;
    exec("UPDATE audit SET outcome = 'ok' WHERE seq = 3");
    ASSERT_EQ(run_cli(args, out), 0) << out;
    // An entry removed from the middle.
    exec("DELETE FROM audit WHERE seq = 2");
    EXPECT_EQ(run_cli(args, out), 1) << out;
    EXPECT_NE(out.find("2"), std::string::npos) << out;
    sqlite3_close(db);
}

TEST_F(Security, NoHealthDataInTheDatabaseFilesTheLogOrTheMetrics) {
    const std::string secret_text = "zebrafinch marmalade allergy since tuesday";
    const std::string secret_name = "Wilhelmina Quartermaine";
    const std::string email = "hedwig.quartermaine@example.org";
    Patient a = register_patient(port(), email);
    ASSERT_NO_FATAL_FAILURE(add_child_with_consultation(port(), a, secret_name, secret_text));
    net::HttpClient http("127.0.0.1", port());
    // The patient reads it back in clear, so it is stored.
    auto back = http.get("/v1/consultations/" + a.consultation, bearer(a.access));
    ASSERT_NE(back.body.find(secret_text), std::string::npos);
    auto metrics = http.get("/metrics");
    ASSERT_EQ(metrics.status, 200);
    for (const std::string &s : {secret_text, secret_name, email, std::string("zebrafinch")}) {
        EXPECT_EQ(metrics.body.find(s), std::string::npos) << s << " in /metrics";
    }
    // Before stopping: the WAL holds recent pages.
    for (const auto &entry : std::filesystem::recursive_directory_iterator(dir_.path())) {
        if (!entry.is_regular_file()) continue;
        std::string bytes = read_file(entry.path());
        for (const std::string &s : {std::string("zebrafinch"), std::string("Quartermaine"), email}) {
            EXPECT_EQ(bytes.find(s), std::string::npos) << s << " in clear in " << entry.path();
        }
    }
    ASSERT_EQ(host_->stop(), 0);
    std::string log = host_->stdout_text() + host_->stderr_text();
    for (const std::string &s : {std::string("zebrafinch"), std::string("Quartermaine"), std::string("Wilhelmina"), email,
                                 a.access, a.refresh}) {
        EXPECT_EQ(log.find(s), std::string::npos) << "the log holds " << s;
    }
    for (const auto &entry : std::filesystem::recursive_directory_iterator(dir_.path())) {
        if (!entry.is_regular_file()) continue;
        std::string bytes = read_file(entry.path());
        EXPECT_EQ(bytes.find("zebrafinch"), std::string::npos) << entry.path();
        EXPECT_EQ(bytes.find("Quartermaine"), std::string::npos) << entry.path();
    }
}

TEST_F(Security, OperatorsReadAConsultationOnlyUnderEmergencyAccess) {
    Patient a = register_patient(port(), "ivo@example.org");
    ASSERT_NO_FATAL_FAILURE(add_child_with_consultation(port(), a, "Ida", "my daughter fell off her bike"));
    std::string out;
    ASSERT_EQ(run_cli("account create --role operator --email ops@example.org --data-dir " + dir_.str(), out,
                      "operator password 1"),
              0)
        << out;
    net::HttpClient http("127.0.0.1", port(), 30s);
    auto login = http.request("POST", "/v1/auth/login", json{{"email", "ops@example.org"}, {"password", "operator password 1"}}.dump());
    ASSERT_EQ(login.status, 200) << login.body;
    std::string ops = body_of(login)["access_token"];

    EXPECT_EQ(status("GET", "/v1/consultations/" + a.consultation, ops), 403);
    EXPECT_EQ(status("GET", "/v1/admin/consultations/" + a.consultation, ops), 403);
    EXPECT_EQ(status("POST", "/v1/admin/emergency-access", ops, json{{"consultation_id", a.consultation}, {"reason", "short"}}.dump()), 400);
    EXPECT_EQ(status("POST", "/v1/admin/emergency-access", a.access,
                     json{{"consultation_id", a.consultation}, {"reason", "a patient may not grant themselves this"}}.dump()),
              403);
    auto grant = http.request("POST", "/v1/admin/emergency-access",
                              json{{"consultation_id", a.consultation}, {"reason", "safeguarding report received by phone, ticket 4411"}}.dump(),
                              bearer(ops));
    ASSERT_EQ(grant.status, 201) << grant.body;
    auto read = http.get("/v1/admin/consultations/" + a.consultation, bearer(ops));
    ASSERT_EQ(read.status, 200) << read.body;
    EXPECT_NE(read.body.find("fell off her bike"), std::string::npos);

    auto audit = http.get("/v1/admin/audit?action=admin.consultation_read", bearer(ops));
    ASSERT_EQ(audit.status, 200) << audit.body;
    json entries = body_of(audit)["entries"];
    ASSERT_FALSE(entries.empty()) << audit.body;
    bool ok_read = false;
    for (const auto &e : entries) ok_read |= e["outcome"] == "ok" && e["target"] == "consultation:" + a.consultation;
    EXPECT_TRUE(ok_read) << audit.body;
    // And the patient's own reads are in the log under their account, with no text.
    auto mine = http.get("/v1/admin/audit?actor=" + a.id, bearer(ops));
    ASSERT_EQ(mine.status, 200);
    EXPECT_FALSE(body_of(mine)["entries"].empty());
    EXPECT_EQ(mine.body.find("fell off"), std::string::npos);
}

TEST_F(Security, ExportHoldsEverythingAndErasureRemovesIt) {
    Patient a = register_patient(port(), "kai@example.org");
    ASSERT_NO_FATAL_FAILURE(add_child_with_consultation(port(), a, "Kit", "my son bumped his head on a door"));
    net::HttpClient http("127.0.0.1", port(), 30s);
    auto ex = http.get("/v1/account/export", bearer(a.access));
    ASSERT_EQ(ex.status, 200) << ex.body;
    json doc = body_of(ex);
    EXPECT_EQ(doc["account"]["email"], "kai@example.org");
    ASSERT_EQ(doc["profiles"].size(), 2u) << ex.body;
    std::string self;
    for (const auto &p : doc["profiles"]) {
        if (p["relation"] == "self") self = p["id"];
        if (p["id"] == a.child) {
            EXPECT_EQ(p["name"], "Kit");
            ASSERT_EQ(p["consultations"].size(), 1u);
            EXPECT_NE(p["consultations"][0].dump().find("bumped his head"), std::string::npos);
        }
    }
    ASSERT_FALSE(self.empty());

    EXPECT_EQ(status("DELETE", "/v1/profiles/" + self, a.access), 409);
    EXPECT_EQ(status("DELETE", "/v1/profiles/" + a.child, a.access), 200);
    EXPECT_EQ(status("GET", "/v1/consultations/" + a.consultation, a.access), 404);
    EXPECT_EQ(status("GET", "/v1/profiles/" + a.child, a.access), 404);
    auto after = body_of(http.get("/v1/account/export", bearer(a.access)));
    EXPECT_EQ(after["profiles"].size(), 1u);
    EXPECT_EQ(after.dump().find("bumped"), std::string::npos);

    EXPECT_EQ(status("DELETE", "/v1/account", a.access), 200);
    EXPECT_EQ(status("GET", "/v1/account", a.access), 401);
    auto login = http.request("POST", "/v1/auth/login", json{{"email", "kai@example.org"}, {"password", "correct horse battery"}}.dump());
    EXPECT_EQ(login.status, 401);
    // The address is free again.
    EXPECT_EQ(register_patient(port(), "kai@example.org").id.empty(), false);
}

TEST_F(Security, KeysRotateAndRetireWithoutLoggingAnyoneOutOrLosingData) {
    Patient a = register_patient(port(), "lou@example.org");
    ASSERT_NO_FATAL_FAILURE(add_child_with_consultation(port(), a, "Lina", "my daughter has had a cough for days"));
    const std::string dd = " --data-dir " + dir_.str();
    std::string out;
    ASSERT_EQ(run_cli("keys status" + dd, out), 0) << out;
    const std::string old_data = current_key(out, "data"), old_token = current_key(out, "token");
    ASSERT_FALSE(old_data.empty()) << out;
    EXPECT_EQ(kid_of(a.access), old_token);

    ASSERT_EQ(run_cli("keys rotate data" + dd, out), 0) << out;
    ASSERT_EQ(run_cli("keys rotate token" + dd, out), 0) << out;
    ASSERT_EQ(run_cli("keys status" + dd, out), 0) << out;
    const std::string new_data = current_key(out, "data"), new_token = current_key(out, "token");
    ASSERT_NE(new_data, old_data);
    ASSERT_NE(new_token, old_token);
    EXPECT_NE(run_cli("keys retire data " + old_data + dd, out), 0) << "not re-encrypted yet: " << out;

    ASSERT_EQ(::kill(host_->pid(), SIGHUP), 0);
    bool done = false;
    for (int i = 0; i < 80 && !done; ++i) {
        ASSERT_EQ(run_cli("keys status" + dd, out), 0) << out;
        done = out.find("re-encrypted under: " + new_data) != std::string::npos;
        if (!done) std::this_thread::sleep_for(250ms);
    }
    ASSERT_TRUE(done) << out << host_->log();
    EXPECT_EQ(status("GET", "/v1/account", a.access), 200) << "tokens of the old key still verify";
    net::HttpClient http("127.0.0.1", port(), 30s);
    auto login = http.request("POST", "/v1/auth/login", json{{"email", "lou@example.org"}, {"password", "correct horse battery"}}.dump());
    ASSERT_EQ(login.status, 200) << login.body;
    std::string access = body_of(login)["access_token"];
    EXPECT_EQ(kid_of(access), new_token);

    ASSERT_EQ(run_cli("keys retire data " + old_data + dd, out), 0) << out;
    ASSERT_EQ(run_cli("keys retire token " + old_token + dd, out), 0) << out;
    ASSERT_EQ(::kill(host_->pid(), SIGHUP), 0);
    bool refused = false;
    for (int i = 0; i < 40 && !refused; ++i) {
        refused = status("GET", "/v1/account", a.access) == 401;
        if (!refused) std::this_thread::sleep_for(250ms);
    }
    EXPECT_TRUE(refused) << "the retired token key signs nothing valid any more";
    // Everything sealed under the retired data key was resealed: it all still opens, also
    // after a restart, and the e-mail index still finds the account.
    ASSERT_EQ(host_->stop(), 0);
    ASSERT_TRUE(host_->start()) << host_->log();
    net::HttpClient again("127.0.0.1", port(), 30s);
    login = again.request("POST", "/v1/auth/login", json{{"email", "lou@example.org"}, {"password", "correct horse battery"}}.dump());
    ASSERT_EQ(login.status, 200) << login.body;
    access = body_of(login)["access_token"];
    auto c = again.get("/v1/consultations/" + a.consultation, bearer(access));
    ASSERT_EQ(c.status, 200) << c.body;
    EXPECT_NE(c.body.find("cough for days"), std::string::npos);
    auto p = again.get("/v1/profiles/" + a.child, bearer(access));
    ASSERT_EQ(p.status, 200);
    EXPECT_EQ(body_of(p)["name"], "Lina");
}

}  // namespace
}  // namespace consilium::test
