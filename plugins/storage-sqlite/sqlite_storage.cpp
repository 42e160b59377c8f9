// sqlite_storage.cpp: the sqlite storage plugin, Consilium's embedded default store.
//
// One file in WAL mode. Writes go through one connection, serialised by a mutex, each batch in
// BEGIN IMMEDIATE ... COMMIT; batches of only reads take a connection from a small read-only
// pool and run in one read transaction (one consistent snapshot). The schema is versioned in
// PRAGMA user_version and brought up to date by kMigrations, one transaction per step.
#include "connection.hpp"
#include "ops.hpp"

#include <consilium/sdk/storage.hpp>

#include <condition_variable>
#include <filesystem>
#include <iterator>
#include <memory>
#include <mutex>
#include <vector>

namespace consilium::sqlite {

namespace {

// ---------------------------------------------------------------------------------------------
// Schema. Append a migration to change it; never edit one that has shipped.

struct Migration {
    int version;  // user_version once applied
    const char *what;
    const char *sql;
};

// STRICT tables: a value of the wrong type is refused instead of silently converted, and
// columns come back with the type they were declared with. *_sealed columns are BLOBs holding
// the engine's ciphertext byte for byte.
constexpr Migration kMigrations[] = {
    {1, "accounts, profiles, consultations, messages, events, meta", R"sql(
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
)sql"},
    // ABI 1.2. Sessions and refresh tokens go with their account (ON DELETE CASCADE, like
    // everything an account owns); audit entries refer to nothing, so they outlive the erasure
    // of the accounts and profiles they name, and a trigger keeps them from being changed
    // (CS_OP_AUDIT_PURGE is the only way out). events is rebuilt with a rowid (the same
    // columns and key): CS_OP_SEALED_SCAN pages every sealed kind by rowid.
    {2, "sessions, refresh_tokens, audit; events with a rowid", R"sql(
CREATE TABLE sessions (
  id            TEXT PRIMARY KEY,
  account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  created_ms    INTEGER NOT NULL,
  last_used_ms  INTEGER NOT NULL,
  expires_ms    INTEGER NOT NULL,
  revoked_ms    INTEGER,
  revoke_reason TEXT
) STRICT;
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  created_ms INTEGER NOT NULL,
  used_ms    INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE audit (
  seq           INTEGER PRIMARY KEY,
  at_ms         INTEGER NOT NULL,
  actor_account TEXT,
  actor_role    TEXT NOT NULL,
  profile_id    TEXT,
  action        TEXT NOT NULL,
  target        TEXT,
  outcome       TEXT NOT NULL,
  peer          TEXT,
  detail        TEXT NOT NULL,
  prev_hash     TEXT NOT NULL,
  hash          TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_time ON audit (at_ms);
CREATE INDEX audit_by_actor ON audit (actor_account, seq) WHERE actor_account IS NOT NULL;
CREATE INDEX audit_by_profile ON audit (profile_id, seq) WHERE profile_id IS NOT NULL;
CREATE TRIGGER audit_is_append_only BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'audit entries are append-only');
END;

CREATE TABLE events_with_rowid (
  consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
  seq             INTEGER NOT NULL,
  type            TEXT NOT NULL,
  body_sealed     BLOB NOT NULL,
  created_ms      INTEGER NOT NULL,
  PRIMARY KEY (consultation_id, seq)
) STRICT;
INSERT INTO events_with_rowid (consultation_id, seq, type, body_sealed, created_ms)
  SELECT consultation_id, seq, type, body_sealed, created_ms FROM events ORDER BY consultation_id, seq;
DROP TABLE events;
ALTER TABLE events_with_rowid RENAME TO events;
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
    std::string file;  // absolute or as given, never empty
    bool synchronous_full = true;
    Tuning tuning;
    int read_connections = 4;
};

Options read_options(const sdk::Host &host, const std::string &path, const sdk::json &opts) {
    Options o;
    std::string file = opts.at("path").get<std::string>();
    if (file.empty()) throw sdk::Error(CS_E_INVALID, sdk::join_path(path, "path") + ": must not be empty");
    std::filesystem::path p(file);
    if (p.is_relative() && !host.data_dir().empty()) p = std::filesystem::path(host.data_dir()) / p;
    o.file = p.lexically_normal().string();

    std::string sync = opts.at("synchronous").get<std::string>();
    if (sync != "full" && sync != "normal")
        throw sdk::Error(CS_E_INVALID, sdk::join_path(path, "synchronous") +
                                           ": must be \"full\" (an acknowledged write survives a power "
                                           "loss) or \"normal\", got \"" + sync + "\"");
    o.synchronous_full = sync == "full";
    o.tuning.busy_timeout_ms = static_cast<int>(sdk::option_int(opts, path, "busy_timeout_ms", 0, 600000));
    o.tuning.cache_size_kib = static_cast<int>(sdk::option_int(opts, path, "cache_size_kib", 64, 16 << 20));
    o.read_connections = static_cast<int>(sdk::option_int(opts, path, "read_connections", 1, 64));
    return o;
}

void make_parent_directory(const std::string &file) {
    std::filesystem::path dir = std::filesystem::path(file).parent_path();
    if (dir.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        throw sdk::Error(CS_E_IO, "cannot create the directory " + dir.string() + " for the database: " +
                                      ec.message());
}

// ---------------------------------------------------------------------------------------------
// Read-only connections, lent to one read batch at a time.
// LIFETIME: owns its connections; a Lease must be returned (destroyed) before the pool goes.
class ReaderPool {
public:
    class Lease {
    public:
        Lease(ReaderPool &pool, Connection *conn) : pool_(pool), conn_(conn) {}
        ~Lease() { pool_.give_back(conn_); }
        Lease(const Lease &) = delete;
        Lease &operator=(const Lease &) = delete;
        Connection &operator*() const { return *conn_; }

    private:
        ReaderPool &pool_;
        Connection *conn_;
    };

    ReaderPool(const std::string &file, int size, const Tuning &tuning) {
        for (int i = 0; i < size; ++i) {
            all_.push_back(std::make_unique<Connection>(file, Connection::Mode::read_only, tuning));
            free_.push_back(all_.back().get());
        }
    }

    // Waits until a connection is free.
    Lease acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !free_.empty(); });
        Connection *c = free_.back();
        free_.pop_back();
        return Lease(*this, c);
    }

private:
    void give_back(Connection *c) {
        {
            std::lock_guard lock(mu_);
            free_.push_back(c);
        }
        cv_.notify_one();
    }

    std::vector<std::unique_ptr<Connection>> all_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Connection *> free_;
};

// ---------------------------------------------------------------------------------------------

class SqliteStorage final : public sdk::Storage {
public:
    static sdk::json defaults() {
        return {{"path", "consilium.db"},
                {"synchronous", "full"},
                {"busy_timeout_ms", 5000},
                {"read_connections", 4},
                {"cache_size_kib", 8192}};
    }

    // LIFETIME: host is the SDK's wrapper of the host table, valid until destroy() returns.
    SqliteStorage(const sdk::Host &host, const std::string &config_path, const sdk::json &opts)
        : host_(host), config_path_(config_path), options_(read_options(host, config_path, opts)) {
        try {
            make_parent_directory(options_.file);
            writer_ = std::make_unique<Connection>(options_.file, Connection::Mode::read_write, options_.tuning);
            configure_writer();
            migrate();
            // Opened after the writer has switched the file to WAL and created the schema.
            readers_ = std::make_unique<ReaderPool>(options_.file, options_.read_connections, options_.tuning);
        } catch (const sdk::Error &e) {
            // Every refusal to start names the file ("file is not a database" alone would not).
            std::string msg = e.what();
            if (msg.find(options_.file) == std::string::npos) msg = options_.file + ": " + msg;
            throw sdk::Error(e.status(), msg);
        }
        host_.info("sqlite: opened " + options_.file + " (schema " + std::to_string(kLatestVersion) +
                   ", WAL, synchronous=" + (options_.synchronous_full ? "FULL" : "NORMAL") + ", " +
                   std::to_string(options_.read_connections) + " read connections)");
    }

    ~SqliteStorage() override {
        // Readers first: the writer, closing last, checkpoints the WAL into the database.
        readers_.reset();
        writer_.reset();
    }

    void exec(std::span<const cs_storage_op> ops) override {
        // Check the whole batch before touching the database: an unknown op or a bad parameter
        // fails it with nothing started.
        std::vector<const OpSpec *> specs(ops.size());
        bool writes = false;
        for (size_t i = 0; i < ops.size(); ++i) {
            specs[i] = find_op(ops[i].op);
            if (!specs[i])
                throw sdk::Error(CS_E_UNSUPPORTED, where(i, ops.size()) + "unknown op " + std::to_string(ops[i].op) +
                                                       "; this sqlite plugin implements storage_ops.h of ABI " +
                                                       std::to_string(CS_ABI_MAJOR) + "." +
                                                       std::to_string(CS_ABI_MINOR) +
                                                       ": rebuild it against the host's SDK");
            try {
                check_params(*specs[i], ops[i]);
            } catch (const sdk::Error &e) {
                throw sdk::Error(e.status(), where(i, ops.size()) + e.what());
            }
            writes = writes || specs[i]->write;
        }
        if (ops.empty()) return;
        if (writes) {
            std::lock_guard lock(write_mu_);
            run_batch(*writer_, "BEGIN IMMEDIATE", ops, specs);
        } else {
            ReaderPool::Lease conn = readers_->acquire();
            run_batch(*conn, "BEGIN", ops, specs);
        }
    }

private:
    static std::string where(size_t i, size_t n) {
        return "batch op " + std::to_string(i + 1) + " of " + std::to_string(n) + ": ";
    }

    // Runs the batch in one transaction on conn; on any error nothing of it stays.
    void run_batch(Connection &conn, const char *begin, std::span<const cs_storage_op> ops,
                   const std::vector<const OpSpec *> &specs) {
        try {
            conn.exec(begin);
        } catch (const sdk::Error &e) {
            throw sdk::Error(e.status(), "cannot start a transaction on " + conn.file() + ": " + e.what());
        }
        size_t i = 0;
        try {
            for (; i < ops.size(); ++i) run_op(conn, *specs[i], ops[i]);
            conn.exec("COMMIT");
        } catch (const sdk::Error &e) {
            conn.rollback_quietly();
            if (i == ops.size()) throw sdk::Error(e.status(), "commit failed on " + conn.file() + ": " + e.what());
            throw sdk::Error(e.status(), where(i, ops.size()) + specs[i]->name + ": " + e.what());
        } catch (...) {
            conn.rollback_quietly();
            throw;
        }
    }

    void configure_writer() {
        std::string mode = writer_->query_text("PRAGMA journal_mode = WAL");
        if (mode != "wal")
            throw sdk::Error(CS_E_IO, options_.file + ": cannot switch the database to WAL journal mode (it stays in \"" +
                                          mode + "\" mode). Consilium needs WAL for crash safety with concurrent "
                                                 "readers: put the file on a local file system (not a network "
                                                 "share or :memory:) and make sure no other program holds it open");
        writer_->exec(options_.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        if (writer_->query_int("PRAGMA foreign_keys") != 1)
            throw sdk::Error(CS_E_INTERNAL, "this SQLite library cannot enforce foreign keys; cascading deletes "
                                            "would leave health data behind. Use an SQLite built with them");
    }

    // Brings the schema to kLatestVersion, one transaction per migration. Re-running is a
    // no-op; a database from a newer plugin is refused.
    void migrate() {
        int64_t found = writer_->query_int("PRAGMA user_version");
        if (found > kLatestVersion) throw newer_schema(found);
        for (const Migration &m : kMigrations) {
            if (m.version <= found) continue;
            try {
                writer_->exec("BEGIN IMMEDIATE");
                // Another process may have migrated while we waited for the lock.
                found = writer_->query_int("PRAGMA user_version");
                if (found < m.version) {
                    writer_->exec(m.sql);
                    writer_->exec(("PRAGMA user_version = " + std::to_string(m.version)).c_str());
                    found = m.version;
                    host_.info("sqlite: " + options_.file + " migrated to schema " + std::to_string(m.version));
                }
                writer_->exec("COMMIT");
            } catch (const sdk::Error &e) {
                writer_->rollback_quietly();
                throw sdk::Error(e.status(), options_.file + ": migration to schema " + std::to_string(m.version) +
                                                 " (" + m.what + ") failed: " + e.what());
            }
            if (found > kLatestVersion) throw newer_schema(found);
        }
    }

    sdk::Error newer_schema(int64_t found) const {
        return sdk::Error(CS_E_INVALID,
                          options_.file + ": the database has schema version " + std::to_string(found) +
                              " but this sqlite plugin knows versions up to " + std::to_string(kLatestVersion) +
                              "; it was written by a newer Consilium. Upgrade Consilium (its sqlite plugin), "
                              "or point " + sdk::join_path(config_path_, "path") +
                              " at another file; do not downgrade the database");
    }

    sdk::Host host_;
    std::string config_path_;  // "storage.sqlite": where our options sit in the host's config
    Options options_;
    std::mutex write_mu_;                  // serialises every use of writer_
    std::unique_ptr<Connection> writer_;   // the one read-write connection
    std::unique_ptr<ReaderPool> readers_;  // read-only connections for read-only batches
};

}  // namespace

}  // namespace consilium::sqlite

CONSILIUM_STORAGE_PLUGIN(consilium::sqlite::SqliteStorage, "sqlite", "1.0.0",
                         "SQLite: the embedded default store (one file, WAL, versioned schema)")
