// Tests of the sqlite storage plugin (plugins/storage-sqlite): the storage conformance suite,
// then what is particular to SQLite: WAL on disk, the file surviving the instance, versioned
// migrations, option validation, and another process holding the write lock.
#include "storage_conformance.hpp"

#include <sqlite3.h>

#include <gtest/gtest.h>

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
    EXPECT_EQ(tables,
              (std::vector<std::string>{"accounts", "consultations", "events", "messages", "meta", "profiles"}));
    auto indexes = raw.column("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL");
    for (const char *want : {"messages_by_client_id", "consultations_by_account", "consultations_by_profile"})
        EXPECT_NE(std::find(indexes.begin(), indexes.end(), want), indexes.end()) << want;
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
