// The audit log's hash chain on the real SQLite storage: it verifies as written, and a changed,
// reordered or removed entry (also at the tail) is found and named; a purge past retention keeps
// the rest verifiable; a new process continues the chain.
#include "audit/audit_log.hpp"
#include "runtime.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

namespace consilium {
namespace {

class Audit : public ::testing::Test {
protected:
    void SetUp() override { open(); }
    void open() {
        store_.reset();
        runtime_.reset();
        host::ConfigSources src;
        src.data_dir = dir_.path();
        src.sets.emplace_back("log.level", "warn");
        runtime_ = std::make_unique<host::HostRuntime>(host::load_config(src), host::HostRuntime::Mode::storage_only);
        store_ = std::make_unique<Store>(runtime_->storage()->vtable<cs_storage_vtable>(), runtime_->storage()->instance());
        log_ = std::make_unique<AuditLog>(*store_, metrics_);
    }
    void record(int n, const std::string &action = "consultation.read") {
        AuditActor who;
        who.account = "a_test";
        who.role = "patient";
        who.peer = "127.0.0.1";
        for (int i = 0; i < n; ++i) {
            AuditEvent what;
            what.action = action;
            what.profile_id = "p_1";
            what.target = std::to_string(i);
            what.target->insert(0, "consultation:c_");
            what.detail = {{"i", i}};
            log_->record(who, what);
        }
        log_->flush();
    }
    static AuditFilter page(int64_t after, int64_t limit) {
        AuditFilter f;
        f.after_seq = after;
        f.limit = limit;
        return f;
    }
    // Edits the table behind the engine's back, as someone with the file could.
    void tamper(const std::string &sql) {
        log_.reset();
        store_.reset();
        runtime_.reset();
        sqlite3 *db = nullptr;
        ASSERT_EQ(sqlite3_open((dir_.path() / "consilium.db").c_str(), &db), SQLITE_OK);
        sqlite3_exec(db, "DROP TRIGGER IF EXISTS audit_is_append_only", nullptr, nullptr, nullptr);
        char *err = nullptr;
        EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
        sqlite3_free(err);
        sqlite3_close(db);
        open();
    }

    test::TempDir dir_;
    metrics::Registry metrics_;
    std::unique_ptr<host::HostRuntime> runtime_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<AuditLog> log_;
};

TEST_F(Audit, AnUntouchedLogVerifies) {
    record(25);
    auto r = AuditLog::verify(*store_);
    EXPECT_TRUE(r.ok) << r.problem;
    EXPECT_EQ(r.checked, 25);
}

TEST_F(Audit, AChangedEntryIsNamed) {
    record(10);
    tamper("UPDATE audit SET detail = '{\"i\":99}' WHERE seq = 4");
    auto r = AuditLog::verify(*store_);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.first_bad_seq, 4);
    EXPECT_NE(r.problem.find("changed"), std::string::npos) << r.problem;
}

TEST_F(Audit, AChangedAndRehashedEntryIsStillFound) {
    record(10);
    // The attacker recomputes entry 4's own hash, but entry 5 still names the old one.
    auto rows = store_->audit_list(page(3, 1));
    ASSERT_EQ(rows.size(), 1u);
    AuditRecord forged = rows[0];
    forged.outcome = "denied";
    std::string hash = AuditLog::hash_of(forged);
    tamper("UPDATE audit SET outcome = 'denied', hash = '" + hash + "' WHERE seq = 4");
    auto r = AuditLog::verify(*store_);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.first_bad_seq, 4) << r.problem;
}

TEST_F(Audit, ReorderedEntriesAreFound) {
    record(10);
    tamper("UPDATE audit SET seq = -5 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = 6; "
           "UPDATE audit SET seq = 6 WHERE seq = -5");
    auto r = AuditLog::verify(*store_);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.first_bad_seq, 5) << r.problem;
}

TEST_F(Audit, RemovedEntriesAreFoundInTheMiddleAndAtTheEnd) {
    record(10);
    tamper("DELETE FROM audit WHERE seq = 7");
    auto r = AuditLog::verify(*store_);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.first_bad_seq, 7) << r.problem;
    EXPECT_NE(r.problem.find("removed"), std::string::npos) << r.problem;

    tamper("DELETE FROM audit WHERE seq >= 7");
    r = AuditLog::verify(*store_);
    EXPECT_FALSE(r.ok) << "the head in meta says 10 entries";
    EXPECT_EQ(r.first_bad_seq, 7) << r.problem;
}

TEST_F(Audit, APurgeKeepsTheRestVerifiable) {
    record(6, "auth.login");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    int64_t cut = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    record(4);
    EXPECT_EQ(log_->purge_before(cut), 6);
    auto r = AuditLog::verify(*store_);
    EXPECT_TRUE(r.ok) << r.problem;
    EXPECT_EQ(r.checked, 4);
    tamper("UPDATE audit SET action = 'auth.login' WHERE seq = 8");
    r = AuditLog::verify(*store_);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.first_bad_seq, 8);
}

TEST_F(Audit, ANewProcessContinuesTheChain) {
    record(3);
    open();  // a restart
    record(2);
    auto r = AuditLog::verify(*store_);
    EXPECT_TRUE(r.ok) << r.problem;
    EXPECT_EQ(r.checked, 5);
    auto rows = store_->audit_list(page(0, 10));
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(rows[3].prev_hash, rows[2].hash);
}

TEST_F(Audit, EntriesHoldIdsAndCodesAsJson) {
    record(1);
    auto rows = store_->audit_list(page(0, 10));
    ASSERT_EQ(rows.size(), 1u);
    auto j = AuditLog::to_json(rows[0]);
    EXPECT_EQ(j["seq"], 1);
    EXPECT_EQ(j["actor"]["account"], "a_test");
    EXPECT_EQ(j["actor"]["role"], "patient");
    EXPECT_EQ(j["profile_id"], "p_1");
    EXPECT_EQ(j["action"], "consultation.read");
    EXPECT_EQ(j["outcome"], "ok");
    EXPECT_EQ(j["prev_hash"], AuditLog::kGenesis);
    EXPECT_EQ(j["hash"].get<std::string>().size(), 64u);
}

}  // namespace
}  // namespace consilium
