// connection.hpp: one SQLite connection of the sqlite storage plugin, with its cache of prepared
// statements, and the mapping from SQLite result codes to cs_status.
//
// A Connection is used by one thread at a time (the plugin's write mutex or reader pool makes
// sure of it), so it is opened with SQLITE_OPEN_NOMUTEX and keeps no lock of its own.
// Every failure is thrown as sdk::Error; messages carry SQLite's own text (table, column and
// constraint names, never bound values) so they are free of health data.
#pragma once

#include <consilium/sdk/core.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace consilium::sqlite {

// What an SQLite (extended) result code means for the engine: CS_E_CONFLICT for a uniqueness
// violation, CS_E_NOT_FOUND for a missing referenced row, CS_E_BUSY, CS_E_IO...
cs_status status_of(int rc);

class Connection;

// One use of a cached prepared statement: bind, step, read columns. Resets the statement and
// clears its bindings when it goes, so the cache can hand it out again.
// LIFETIME: borrows the sqlite3_stmt, which its Connection owns; must not outlive it. Bound
// TEXT/BLOB values are borrowed (SQLITE_STATIC): they must outlive this object. Values read with
// column() are valid until the next step() or until this object goes.
class Statement {
public:
    Statement(Connection &conn, sqlite3_stmt *stmt) : conn_(conn), stmt_(stmt) {}
    ~Statement();
    Statement(const Statement &) = delete;
    Statement &operator=(const Statement &) = delete;

    // The highest parameter index the SQL uses.
    int parameter_count() const { return sqlite3_bind_parameter_count(stmt_); }
    // Binds by the value's own type (TEXT as text, BLOB as blob).
    void bind(int index, const cs_value &value);
    // Binds TEXT or BLOB as a blob: the *_sealed columns store the engine's bytes as they are.
    void bind_blob(int index, const cs_value &value);

    // Returns true when a row is ready, false when the statement is done.
    bool step();
    int column_count() const { return sqlite3_column_count(stmt_); }
    // The column as a cs_value of the type SQLite holds (STRICT tables make that the declared one).
    cs_value column(int index) const;

private:
    void check_bind(int rc, int index);

    Connection &conn_;
    sqlite3_stmt *stmt_;
};

struct Tuning {
    int busy_timeout_ms = 5000;
    int cache_size_kib = 8192;
};

class Connection {
public:
    enum class Mode { read_write, read_only };

    // Opens (read_write also creates) the database file and applies the per-connection
    // settings of `tuning`. Throws sdk::Error naming the file.
    Connection(const std::string &file, Mode mode, const Tuning &tuning);
    ~Connection();
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    // Runs one or more statements that return no rows we need.
    void exec(const char *sql);
    // The first column of the first row of a one-off query ("" / 0 when it has no row).
    std::string query_text(const char *sql);
    int64_t query_int(const char *sql);

    // A cached prepared statement for sql.
    // LIFETIME: sql must have static storage duration (the cache keys on the view of it).
    Statement prepare(std::string_view sql);

    // Rows changed by the last INSERT/UPDATE/DELETE (not counting foreign-key cascades).
    int64_t changes() const { return sqlite3_changes64(db_); }
    // Ends an open transaction, if any, ignoring errors: used while another error is in flight.
    void rollback_quietly() noexcept;

    // Throws sdk::Error with status_of(rc) and "<doing>: <SQLite's message>" (doing may be empty).
    [[noreturn]] void fail(int rc, std::string_view doing) const;

    const std::string &file() const { return file_; }

private:
    sqlite3 *db_ = nullptr;  // owned
    std::string file_;
    std::unordered_map<std::string_view, sqlite3_stmt *> cache_;  // statements owned
};

}  // namespace consilium::sqlite
