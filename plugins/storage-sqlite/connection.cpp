// connection.cpp: opening SQLite connections, caching statements, binding and reading values,
// and turning SQLite result codes into cs_status with messages free of health data.
#include "connection.hpp"

namespace consilium::sqlite {

namespace {

// A non-null pointer for empty TEXT/BLOB values: SQLite binds a null pointer as SQL NULL, and a
// sealed column that is empty is not the same as one that is absent.
const char kEmpty[1] = {'\0'};

}  // namespace

cs_status status_of(int rc) {
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID: return CS_E_CONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY: return CS_E_NOT_FOUND;  // the referenced row is missing
    default: break;
    }
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return CS_OK;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return CS_E_INVALID;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return CS_E_BUSY;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
    case SQLITE_AUTH: return CS_E_IO;
    default: return CS_E_INTERNAL;  // SQLITE_ERROR (bad SQL), SQLITE_MISUSE, SQLITE_NOMEM...
    }
}

// ---------------------------------------------------------------------------------------------
// Statement

Statement::~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

void Statement::check_bind(int rc, int index) {
    if (rc != SQLITE_OK) conn_.fail(rc, "binding parameter " + std::to_string(index));
}

void Statement::bind(int index, const cs_value &value) {
    switch (value.type) {
    case CS_VAL_NULL: check_bind(sqlite3_bind_null(stmt_, index), index); return;
    case CS_VAL_INT: check_bind(sqlite3_bind_int64(stmt_, index, value.i), index); return;
    case CS_VAL_TEXT:
        check_bind(sqlite3_bind_text64(stmt_, index, value.s.data ? value.s.data : kEmpty,
                                       value.s.size, SQLITE_STATIC, SQLITE_UTF8),
                   index);
        return;
    case CS_VAL_BLOB: bind_blob(index, value); return;
    default:
        throw sdk::Error(CS_E_INVALID, "parameter " + std::to_string(index) + " has unknown value type " +
                                           std::to_string(value.type));
    }
}

void Statement::bind_blob(int index, const cs_value &value) {
    if (value.type != CS_VAL_TEXT && value.type != CS_VAL_BLOB) return bind(index, value);
    check_bind(sqlite3_bind_blob64(stmt_, index, value.s.data ? value.s.data : kEmpty, value.s.size,
                                   SQLITE_STATIC),
               index);
}

bool Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)  // SQLite does not say which reference is dangling
        throw sdk::Error(status_of(rc), "a row it refers to does not exist (FOREIGN KEY constraint failed)");
    conn_.fail(rc, "");
}

cs_value Statement::column(int index) const {
    cs_value v{CS_VAL_NULL, 0, {nullptr, 0}};
    switch (sqlite3_column_type(stmt_, index)) {
    case SQLITE_INTEGER:
        v.type = CS_VAL_INT;
        v.i = sqlite3_column_int64(stmt_, index);
        break;
    case SQLITE_TEXT: {
        v.type = CS_VAL_TEXT;
        const auto *p = reinterpret_cast<const char *>(sqlite3_column_text(stmt_, index));
        v.s = {p ? p : kEmpty, static_cast<size_t>(sqlite3_column_bytes(stmt_, index))};
        break;
    }
    case SQLITE_BLOB: {
        v.type = CS_VAL_BLOB;
        const auto *p = static_cast<const char *>(sqlite3_column_blob(stmt_, index));
        v.s = {p ? p : kEmpty, static_cast<size_t>(sqlite3_column_bytes(stmt_, index))};
        break;
    }
    default: break;  // NULL (no FLOAT column exists in this schema)
    }
    return v;
}

// ---------------------------------------------------------------------------------------------
// Connection

Connection::Connection(const std::string &file, Mode mode, const Tuning &tuning) : file_(file) {
    int flags = SQLITE_OPEN_NOMUTEX |
                (mode == Mode::read_write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    int rc = sqlite3_open_v2(file.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw sdk::Error(status_of(rc), "cannot open " + file + ": " + msg +
                                            "; check that the directory exists and is writable");
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, tuning.busy_timeout_ms);
    try {
        exec(("PRAGMA cache_size = -" + std::to_string(tuning.cache_size_kib)).c_str());
        exec("PRAGMA foreign_keys = ON");
        exec("PRAGMA trusted_schema = OFF");
        if (mode == Mode::read_only) exec("PRAGMA query_only = ON");
    } catch (...) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

Connection::~Connection() {
    for (auto &[sql, stmt] : cache_) sqlite3_finalize(stmt);
    cache_.clear();
    // Every statement is finalized, so close() succeeds; the last connection to close
    // checkpoints the WAL into the database file.
    sqlite3_close(db_);
}

void Connection::exec(const char *sql) {
    char *errmsg = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &errmsg);
    if (rc == SQLITE_OK) return;
    std::string msg = errmsg ? errmsg : sqlite3_errstr(rc);
    sqlite3_free(errmsg);
    throw sdk::Error(status_of(rc), msg);
}

std::string Connection::query_text(const char *sql) {
    sqlite3_stmt *stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, "preparing a query");
    std::string out;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const auto *p = reinterpret_cast<const char *>(sqlite3_column_text(stmt, 0));
        if (p) out.assign(p, static_cast<size_t>(sqlite3_column_bytes(stmt, 0)));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, "running a query");
    return out;
}

int64_t Connection::query_int(const char *sql) {
    std::string s = query_text(sql);
    return s.empty() ? 0 : std::stoll(s);
}

Statement Connection::prepare(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return Statement(*this, it->second);
    sqlite3_stmt *stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, "preparing a statement");
    cache_.emplace(sql, stmt);
    return Statement(*this, stmt);
}

void Connection::rollback_quietly() noexcept {
    if (db_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Connection::fail(int rc, std::string_view doing) const {
    std::string msg(doing);
    if (!msg.empty()) msg += ": ";
    msg += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    throw sdk::Error(status_of(rc), msg);
}

}  // namespace consilium::sqlite
