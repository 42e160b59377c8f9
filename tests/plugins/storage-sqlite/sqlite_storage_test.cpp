// Tests of the sqlite storage plugin (plugins/storage-sqlite): the storage conformance suite,
// then what is particular to SQLite: WAL on disk, the file surviving the instance, versioned
// migrations (from a schema 1 file too), the audit table refusing UPDATE at the SQL level,
// option validation, and another process holding the write lock.
#include "storage_conformance.hpp"

#include <sqlite3.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace consilium::test::storage {
namespace {

std::unique_ptr<PluginHarness> make_sqlite(const std::string &data_dir, const std::string &options = "{}") {
    return std::make_unique<PluginHarness>("storage", "sqlite", options, data_dir);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StorageConformance,
                         testing::Values(StorageBackend{"sqlite", [](const std::string &dir) { return make_sqlite(dir); }}),
                         backend_name);

// The database file opened directly with SQLite, beside the plugin, as another process would.
// LIFETIME: owns its connection.
class RawDb {
public:
    explicit RawDb(const std::filesystem::path &file) {
        if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
            throw std::runtime_error("cannot open " + file.string());
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb &) = delete;
    RawDb &operator=(const RawDb &) = delete;

    void exec(const std::string &sql) {
        char *msg = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
            std::string m = msg ? msg : "?";
            sqlite3_free(msg);
            throw std::runtime_error(sql + ": " + m);
        }
    }
    // The first column of every row, as text.
    std::vector<std::string> column(const std::string &sql) {
        sqlite3_stmt *stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
        std::vector<std::string> out;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            const auto *p = reinterpret_cast<const char *>(sqlite3_column_text(stmt, 0));
            out.emplace_back(p ? p : "");
        }
        sqlite3_finalize(stmt);
        return out;
    }
    std::string value(const std::string &sql) {
        auto col = column(sql);
        return col.empty() ? "" : col.front();
    }

private:
    sqlite3 *db_ = nullptr;
};

class SqliteStorage : public testing::Test {
protected:
    std::filesystem::path db_file() const { return dir_.path() / "consilium.db"; }
    std::unique_ptr<PluginHarness> open(const std::string &options = "{}") const {
        return make_sqlite(dir_.str(), options);
    }
    // The message the plugin refuses options with (what PluginHarness throws).
    std::string refusal(const std::string &options) const {
        try {
            open(options);
        } catch (const std::exception &e) {
            return e.what();
        }
        return "(accepted)";
    }
    int latest_schema() const {
        TempDir scratch;
        make_sqlite(scratch.str()).reset();
        return std::stoi(RawDb(scratch.path() / "consilium.db").value("PRAGMA user_version"));
    }

    TempDir dir_;
};

TEST_F(SqliteStorage, FileIsInWalModeWithTheSchema) {
    auto h = open();
    ASSERT_TRUE(std::filesystem::exists(db_file()));
    RawDb raw(db_file());
    EXPECT_EQ(raw.value("PRAGMA journal_mode"), "wal");
    EXPECT_GE(std::stoi(raw.value("PRAGMA user_version")), 1);
    auto tables = raw.column("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name");
    EXPECT_EQ(tables, (std::vector<std::string>{"accounts", "audit", "consultations", "events", "messages", "meta",
                                                "profiles", "refresh_tokens", "sessions"}));
    auto indexes = raw.column("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL");
    for (const char *want : {"messages_by_client_id", "consultations_by_account", "consultations_by_profile",
                             "sessions_by_account", "refresh_tokens_by_session", "audit_by_time", "audit_by_actor",
                             "audit_by_profile"})
        EXPECT_NE(std::find(indexes.begin(), indexes.end(), want), indexes.end()) << want;
    EXPECT_EQ(raw.column("SELECT name FROM sqlite_schema WHERE type = 'trigger'"),
              (std::vector<std::string>{"audit_is_append_only"}));
}

// Append-only is enforced by the file itself, not only by the plugin having no op for it: an
// UPDATE from any connection is refused. (DELETE stays possible: CS_OP_AUDIT_PURGE needs it.)
TEST_F(SqliteStorage, AuditEntriesCannotBeUpdatedEvenInTheFile) {
    auto h = open();
    StorageClient db(*h);
    op::AuditEntry e;
    e.actor_account = text("a1");
    db.must({op::audit(e)});

    RawDb raw(db_file());
    for (const char *sql : {"UPDATE audit SET outcome = 'tampered'", "UPDATE audit SET seq = 7",
                            "UPDATE audit SET actor_account = NULL WHERE actor_account = 'a1'"}) {
        try {
            raw.exec(sql);
            ADD_FAILURE() << sql << ": accepted";
        } catch (const std::runtime_error &err) {
            EXPECT_NE(std::string(err.what()).find("append-only"), std::string::npos) << err.what();
        }
    }
    EXPECT_EQ(db.must(CS_OP_AUDIT_LAST, {}), Rows{op::audit_row(e)});
}

TEST_F(SqliteStorage, RelativePathIsUnderTheDataDirAndDirectoriesAreMade) {
    open(R"({"path": "nested/deeper/store.db"})").reset();
    EXPECT_TRUE(std::filesystem::exists(dir_.path() / "nested" / "deeper" / "store.db"));

    TempDir elsewhere;
    auto absolute = elsewhere.path() / "x" / "abs.db";
    open(R"({"path": ")" + absolute.string() + R"("})").reset();
    EXPECT_TRUE(std::filesystem::exists(absolute));
    EXPECT_FALSE(std::filesystem::exists(db_file()));
}

TEST_F(SqliteStorage, DataSurvivesTheInstance) {
    const std::string sealed("\0\xff sealed \0", 11);
    {
        auto h = open();
        StorageClient db(*h);
        db.must({op::account("a1", "patient", text("idx")), op::profile("p1", "a1"), op::consultation("c1", "a1", "p1"),
                 op::message("c1", 1, "a1", text("m1"), blob(sealed)), op::event("c1", 1, blob(sealed), 5000),
                 Op{CS_OP_META_SET, {text("k"), text("v")}}});
    }
    auto h = open(R"({"synchronous": "normal"})");
    StorageClient db(*h);
    EXPECT_EQ(db.must(CS_OP_ACCOUNT_GET_BY_EMAIL, {text("idx")}).size(), 1u);
    EXPECT_EQ(db.must(CS_OP_MESSAGE_LIST, {text("c1")}).at(0).at(5), blob(sealed));
    EXPECT_EQ(db.must(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(9)}).at(0).at(2), blob(sealed));
    EXPECT_EQ(db.must(CS_OP_CONSULTATION_GET, {text("c1")}).at(0).at(5), integer(1));
    EXPECT_EQ(db.must(CS_OP_META_GET, {text("k")}), (Rows{{text("v")}}));
}

TEST_F(SqliteStorage, ReopeningIsIdempotent) {
    open().reset();
    RawDb first(db_file());
    const std::string version = first.value("PRAGMA user_version");
    const auto schema = first.column("SELECT type || ' ' || name || ': ' || ifnull(sql, '') FROM sqlite_schema ORDER BY name");
    {
        auto h = open();
        StorageClient(*h).must({op::account("a1")});
    }
    for (int i = 0; i < 2; ++i) {
        auto h = open();
        EXPECT_EQ(StorageClient(*h).must(CS_OP_ACCOUNT_GET, {text("a1")}).size(), 1u);
    }
    RawDb after(db_file());
    EXPECT_EQ(after.value("PRAGMA user_version"), version);
    EXPECT_EQ(after.column("SELECT type || ' ' || name || ': ' || ifnull(sql, '') FROM sqlite_schema ORDER BY name"),
              schema);
}

// Schema 1 exactly as it shipped (kMigrations[0]); frozen here so that the upgrade path is tested
// from what is on disk in the field, not from what the plugin creates today.
constexpr const char *kSchema1 = R"sql(
CREATE TABLE accounts (
  id            TEXT PRIMARY KEY,
  kind          TEXT NOT NULL CHECK (kind IN ('guest', 'patient')),
  role          TEXT NOT NULL,
  email_index   TEXT UNIQUE,
  email_sealed  BLOB,
  password_hash TEXT,
  created_ms    INTEGER NOT NULL,
  expires_ms    INTEGER
) STRICT;
CREATE INDEX accounts_guest_expiry ON accounts (expires_ms) WHERE kind = 'guest';
CREATE TABLE profiles (
  id             TEXT PRIMARY KEY,
  account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  relation       TEXT NOT NULL,
  details_sealed BLOB NOT NULL,
  created_ms     INTEGER NOT NULL
) STRICT;
CREATE INDEX profiles_by_account ON profiles (account_id, created_ms);
CREATE TABLE consultations (
  id           TEXT PRIMARY KEY,
  account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  profile_id   TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
  created_ms   INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL,
  last_seq     INTEGER NOT NULL DEFAULT 0,
  specialist   TEXT,
  seq_reserved INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX consultations_by_account ON consultations (account_id, updated_ms);
CREATE INDEX consultations_by_profile ON consultations (profile_id);
CREATE TABLE messages (
  consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
  seq             INTEGER NOT NULL,
  account_id      TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  client_id       TEXT,
  role            TEXT NOT NULL CHECK (role IN ('patient', 'specialist')),
  specialist      TEXT,
  body_sealed     BLOB NOT NULL,
  meta            TEXT NOT NULL,
  created_ms      INTEGER NOT NULL,
  PRIMARY KEY (consultation_id, seq)
) STRICT;
CREATE UNIQUE INDEX messages_by_client_id ON messages (account_id, client_id)
  WHERE client_id IS NOT NULL;
CREATE INDEX messages_by_account ON messages (account_id);
CREATE TABLE events (
  consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
  seq             INTEGER NOT NULL,
  type            TEXT NOT NULL,
  body_sealed     BLOB NOT NULL,
  created_ms      INTEGER NOT NULL,
  PRIMARY KEY (consultation_id, seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
PRAGMA user_version = 1;
)sql";

// A schema 1 file with a little of everything in it, as an older Consilium left it.
constexpr const char *kSchema1Data = R"sql(
INSERT INTO accounts VALUES ('a1', 'patient', 'user', 'idx-a1', x'00656d00', 'argon2id$h', 1000, NULL);
INSERT INTO accounts VALUES ('g1', 'guest', 'guest', NULL, NULL, NULL, 1001, 9000);
INSERT INTO profiles VALUES ('p1', 'a1', 'self', x'6470310000', 1100);
INSERT INTO consultations VALUES ('c1', 'a1', 'p1', 1200, 4000, 3, 'cardiology', 64);
INSERT INTO consultations VALUES ('c0', 'a1', 'p1', 1150, 1150, 0, NULL, 0);
INSERT INTO messages VALUES ('c1', 1, 'a1', 'client-1', 'patient', NULL, x'6d00', '{}', 2000);
INSERT INTO messages VALUES ('c1', 2, 'a1', NULL, 'specialist', 'cardiology', x'', '{"m":1}', 2100);
INSERT INTO events VALUES ('c1', 3, 'end', x'650033', 4000);
INSERT INTO events VALUES ('c1', 1, 'chunk', x'6500', 2000);
INSERT INTO events VALUES ('c1', 2, 'chunk', x'', 3000);
INSERT INTO meta VALUES ('schema.engine', '1');
)sql";

void make_schema1_file(const std::filesystem::path &file) {
    RawDb raw(file);
    raw.exec(kSchema1);
    raw.exec(kSchema1Data);
}

TEST_F(SqliteStorage, Schema1FileIsMigratedWithItsData) {
    make_schema1_file(db_file());
    const int latest = latest_schema();
    ASSERT_GE(latest, 2);
    {
        auto h = open();
        StorageClient db(*h);
        EXPECT_EQ(db.must(CS_OP_ACCOUNT_GET, {text("a1")}),
                  (Rows{{text("a1"), text("patient"), text("user"), text("idx-a1"), blob(std::string("\0em\0", 4)),
                         text("argon2id$h"), integer(1000), null()}}));
        EXPECT_EQ(db.must(CS_OP_ACCOUNT_LIST_EXPIRED, {integer(9000), integer(10)}), (Rows{{text("g1")}}));
        EXPECT_EQ(db.must(CS_OP_PROFILE_LIST, {text("a1")}),
                  (Rows{{text("p1"), text("a1"), text("self"), blob(std::string("dp1\0\0", 5)), integer(1100)}}));
        EXPECT_EQ(db.must(CS_OP_CONSULTATION_GET, {text("c1")}),
                  (Rows{{text("c1"), text("a1"), text("p1"), integer(1200), integer(4000), integer(3), text("cardiology"),
                         integer(64)}}));
        EXPECT_EQ(db.must(CS_OP_MESSAGE_LIST, {text("c1")}),
                  (Rows{{text("c1"), integer(1), text("client-1"), text("patient"), null(), blob(std::string("m\0", 2)),
                         text("{}"), integer(2000)},
                        {text("c1"), integer(2), null(), text("specialist"), text("cardiology"), blob(""),
                         text(R"({"m":1})"), integer(2100)}}));
        EXPECT_EQ(db.must(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {text("a1"), text("client-1")}),
                  (Rows{{text("c1"), integer(1)}}));
        // events was rebuilt (it has a rowid now): same rows, same order, same key.
        EXPECT_EQ(db.must(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(10)}),
                  (Rows{{integer(1), text("chunk"), blob(std::string("e\0", 2)), integer(2000)},
                        {integer(2), text("chunk"), blob(""), integer(3000)},
                        {integer(3), text("end"), blob(std::string("e\0" "3", 3)), integer(4000)}}));
        EXPECT_EQ(db.exec({op::event("c1", 2)}).status, CS_E_CONFLICT);
        EXPECT_EQ(db.must(CS_OP_META_GET, {text("schema.engine")}), (Rows{{text("1")}}));

        // The new ops work on the old rows: re-encryption sees the migrated events, and old
        // accounts get sessions.
        EXPECT_EQ(db.must(CS_OP_SEALED_SCAN, {text("event"), integer(0), integer(10)}).size(), 3u);
        EXPECT_EQ(db.must(CS_OP_SEALED_SCAN, {text("account"), integer(0), integer(10)}).size(), 1u);
        db.must({op::session("s1", "a1"), op::refresh("h1", "s1"), op::event("c1", 4, blob("e4"), 5000)});
        EXPECT_EQ(db.must(CS_OP_REFRESH_USE, {text("h1"), integer(6000)}), (Rows{{text("s1"), null()}}));
        EXPECT_EQ(db.must(CS_OP_CONSULTATION_GET, {text("c1")}).at(0).at(5), integer(4));
    }
    RawDb raw(db_file());
    EXPECT_EQ(raw.value("PRAGMA user_version"), std::to_string(latest));
    EXPECT_EQ(raw.value("PRAGMA integrity_check"), "ok");
    EXPECT_EQ(raw.column("PRAGMA foreign_key_check"), std::vector<std::string>{});

    // The migrated file has the schema a new one gets.
    TempDir fresh;
    make_sqlite(fresh.str()).reset();
    const char *schema = "SELECT type || ' ' || name || ': ' || ifnull(sql, '') FROM sqlite_schema ORDER BY name";
    EXPECT_EQ(raw.column(schema), RawDb(fresh.path() / "consilium.db").column(schema));

    // Foreign keys of the rebuilt events table still cascade.
    auto h = open();
    StorageClient db(*h);
    db.must(CS_OP_ACCOUNT_DELETE, {text("a1")});
    EXPECT_EQ(db.must(CS_OP_SEALED_SCAN, {text("event"), integer(0), integer(10)}), Rows{});
    EXPECT_EQ(db.must(CS_OP_SESSION_GET, {text("s1")}), Rows{});
}

// A migration that fails leaves the file as it was: still schema 1, with its data.
TEST_F(SqliteStorage, FailedMigrationKeepsTheOldSchemaAndData) {
    make_schema1_file(db_file());
    RawDb(db_file()).exec("CREATE TABLE sessions (x INTEGER)");  // in the way of schema 2

    std::string msg = refusal("{}");
    EXPECT_NE(msg.find(db_file().string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("migration to schema 2"), std::string::npos) << msg;

    RawDb raw(db_file());
    EXPECT_EQ(raw.value("PRAGMA user_version"), "1");
    EXPECT_EQ(raw.value("SELECT count(*) FROM events"), "3");
    EXPECT_EQ(raw.column("SELECT name FROM sqlite_schema WHERE name IN ('audit', 'refresh_tokens', "
                         "'events_with_rowid')"),
              std::vector<std::string>{});
    EXPECT_NE(raw.value("SELECT sql FROM sqlite_schema WHERE name = 'events'").find("WITHOUT ROWID"), std::string::npos);
}

TEST_F(SqliteStorage, NewerSchemaIsRefusedWithWhatToDo) {
    const int latest = latest_schema();
    const int future = latest + 7;
    RawDb(db_file()).exec("PRAGMA user_version = " + std::to_string(future));

    std::string msg = refusal("{}");
    EXPECT_NE(msg.find(db_file().string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("version " + std::to_string(future)), std::string::npos) << msg;
    EXPECT_NE(msg.find("up to " + std::to_string(latest)), std::string::npos) << msg;
    EXPECT_NE(msg.find("Upgrade Consilium"), std::string::npos) << msg;
    EXPECT_NE(msg.find("storage.sqlite.path"), std::string::npos) << msg;
    // The file is left as it was.
    EXPECT_EQ(RawDb(db_file()).value("PRAGMA user_version"), std::to_string(future));
}

TEST_F(SqliteStorage, FileThatIsNotADatabaseIsRefusedByName) {
    std::ofstream(db_file()) << "this is not an SQLite database, just some text that is long enough";
    std::string msg = refusal("{}");
    EXPECT_NE(msg.find(db_file().string()), std::string::npos) << msg;
}

TEST_F(SqliteStorage, OptionsAreValidatedByPath) {
    EXPECT_NE(refusal(R"({"pth": "x.db"})").find("storage.sqlite.pth"), std::string::npos);
    EXPECT_NE(refusal(R"({"synchronous": "off"})").find("storage.sqlite.synchronous"), std::string::npos);
    EXPECT_NE(refusal(R"({"synchronous": 1})").find("storage.sqlite.synchronous"), std::string::npos);
    EXPECT_NE(refusal(R"({"busy_timeout_ms": "5"})").find("storage.sqlite.busy_timeout_ms"), std::string::npos);
    EXPECT_NE(refusal(R"({"read_connections": 0})").find("storage.sqlite.read_connections"), std::string::npos);
    EXPECT_NE(refusal(R"({"cache_size_kib": -1})").find("storage.sqlite.cache_size_kib"), std::string::npos);
    EXPECT_NE(refusal(R"({"path": ""})").find("storage.sqlite.path"), std::string::npos);
    EXPECT_EQ(refusal(R"({"synchronous": "normal", "busy_timeout_ms": 100, "read_connections": 1,
                          "cache_size_kib": 1024, "path": "ok.db"})"),
              "(accepted)");
}

// Another program holding the write lock makes writes CS_E_BUSY after busy_timeout_ms; reads go
// on from the last committed snapshot (WAL).
TEST_F(SqliteStorage, ForeignWriteLockMeansBusyWritesButNotBlockedReads) {
    auto h = open(R"({"busy_timeout_ms": 50})");
    StorageClient db(*h);
    db.must(CS_OP_META_SET, {text("k"), text("before")});

    RawDb other(db_file());
    other.exec("BEGIN IMMEDIATE; UPDATE meta SET value = 'during' WHERE key = 'k'");
    Outcome write = db.one(CS_OP_META_SET, {text("k2"), text("v")});
    EXPECT_EQ(write.status, CS_E_BUSY) << write.message;
    EXPECT_NE(write.message.find(db_file().string()), std::string::npos) << write.message;
    EXPECT_EQ(db.must(CS_OP_META_GET, {text("k")}), (Rows{{text("before")}}));

    other.exec("COMMIT");
    EXPECT_EQ(db.must(CS_OP_META_GET, {text("k")}), (Rows{{text("during")}}));
    db.must(CS_OP_META_SET, {text("k2"), text("v")});
}

}  // namespace
}  // namespace consilium::test::storage
