// ops.cpp: every op of consilium/storage_ops.h mapped to SQL, with its parameter list, checked
// before anything runs. Parameters bind positionally (?1 is the op's first parameter), and the
// result columns of each SELECT are in the order storage_ops.h lists them.
#include "ops.hpp"

#include <array>
#include <vector>

namespace consilium::sqlite {

namespace {

using P = ParamSpec;
constexpr ParamKind T = ParamKind::text;
constexpr ParamKind I = ParamKind::integer;
constexpr ParamKind N = ParamKind::count;
constexpr ParamKind S = ParamKind::sealed;
constexpr bool NUL = true;   // the parameter may be CS_VAL_NULL
constexpr bool REQ = false;  // it may not

// ---- parameters, per op (names as in storage_ops.h) ----

constexpr P kAccountInsert[] = {{"id", T, REQ},           {"kind", T, REQ},          {"role", T, REQ},
                                {"email_index", T, NUL},  {"email_sealed", S, NUL},  {"password_hash", T, NUL},
                                {"created_ms", I, REQ},   {"expires_ms", I, NUL}};
constexpr P kAccountUpdate[] = {{"id", T, REQ},          {"kind", T, REQ},         {"role", T, REQ},
                                {"email_index", T, NUL}, {"email_sealed", S, NUL}, {"password_hash", T, NUL},
                                {"expires_ms", I, NUL}};
constexpr P kId[] = {{"id", T, REQ}};
constexpr P kEmailIndex[] = {{"email_index", T, REQ}};
constexpr P kListExpired[] = {{"now_ms", I, REQ}, {"limit", N, REQ}};

constexpr P kProfileInsert[] = {{"id", T, REQ},
                                {"account_id", T, REQ},
                                {"relation", T, REQ},
                                {"details_sealed", S, REQ},
                                {"created_ms", I, REQ}};
constexpr P kAccountId[] = {{"account_id", T, REQ}};
constexpr P kProfileUpdate[] = {{"id", T, REQ}, {"relation", T, REQ}, {"details_sealed", S, REQ}};

constexpr P kConsultationInsert[] = {
    {"id", T, REQ}, {"account_id", T, REQ}, {"profile_id", T, REQ}, {"created_ms", I, REQ}};
constexpr P kConsultationList[] = {{"account_id", T, REQ}, {"profile_id", T, NUL}, {"limit", N, REQ}};
constexpr P kSetSpecialist[] = {{"id", T, REQ}, {"specialist", T, NUL}, {"updated_ms", I, REQ}};
constexpr P kReserveSeq[] = {{"id", T, REQ}, {"seq_reserved", I, REQ}};

constexpr P kMessageInsert[] = {{"consultation_id", T, REQ}, {"seq", I, REQ},        {"account_id", T, REQ},
                                {"client_id", T, NUL},       {"role", T, REQ},       {"specialist", T, NUL},
                                {"body_sealed", S, REQ},     {"meta", T, REQ},       {"created_ms", I, REQ}};
constexpr P kConsultationId[] = {{"consultation_id", T, REQ}};
constexpr P kFindByClientId[] = {{"account_id", T, REQ}, {"client_id", T, REQ}};

constexpr P kEventInsert[] = {{"consultation_id", T, REQ},
                              {"seq", I, REQ},
                              {"type", T, REQ},
                              {"body_sealed", S, REQ},
                              {"created_ms", I, REQ}};
constexpr P kEventListAfter[] = {{"consultation_id", T, REQ}, {"after_seq", I, REQ}, {"limit", N, REQ}};

constexpr P kKey[] = {{"key", T, REQ}};
constexpr P kMetaSet[] = {{"key", T, REQ}, {"value", T, REQ}};

#define ACCOUNT_COLUMNS "id, kind, role, email_index, email_sealed, password_hash, created_ms, expires_ms"
#define PROFILE_COLUMNS "id, account_id, relation, details_sealed, created_ms"
#define CONSULTATION_COLUMNS \
    "id, account_id, profile_id, created_ms, updated_ms, last_seq, specialist, seq_reserved"
#define MESSAGE_COLUMNS "consultation_id, seq, client_id, role, specialist, body_sealed, meta, created_ms"
#define EVENT_COLUMNS "seq, type, body_sealed, created_ms"

// ---- the catalogue ----

const std::array kOps{
    OpSpec{CS_OP_ACCOUNT_INSERT, "ACCOUNT_INSERT", true, kAccountInsert,
           "INSERT INTO accounts (" ACCOUNT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", {}, nullptr},
    OpSpec{CS_OP_ACCOUNT_GET, "ACCOUNT_GET", false, kId,
           "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE id = ?1", {}, nullptr},
    OpSpec{CS_OP_ACCOUNT_GET_BY_EMAIL, "ACCOUNT_GET_BY_EMAIL", false, kEmailIndex,
           "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE email_index = ?1", {}, nullptr},
    OpSpec{CS_OP_ACCOUNT_UPDATE, "ACCOUNT_UPDATE", true, kAccountUpdate,
           "UPDATE accounts SET kind = ?2, role = ?3, email_index = ?4, email_sealed = ?5, "
           "password_hash = ?6, expires_ms = ?7 WHERE id = ?1",
           {}, "no such account"},
    // Profiles, consultations, messages and events go with it: ON DELETE CASCADE.
    OpSpec{CS_OP_ACCOUNT_DELETE, "ACCOUNT_DELETE", true, kId, "DELETE FROM accounts WHERE id = ?1", {},
           "no such account"},
    OpSpec{CS_OP_ACCOUNT_LIST_EXPIRED, "ACCOUNT_LIST_EXPIRED", false, kListExpired,
           "SELECT id FROM accounts WHERE kind = 'guest' AND expires_ms <= ?1 "
           "ORDER BY expires_ms, id LIMIT ?2",
           {}, nullptr},

    OpSpec{CS_OP_PROFILE_INSERT, "PROFILE_INSERT", true, kProfileInsert,
           "INSERT INTO profiles (" PROFILE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)", {}, nullptr},
    OpSpec{CS_OP_PROFILE_GET, "PROFILE_GET", false, kId,
           "SELECT " PROFILE_COLUMNS " FROM profiles WHERE id = ?1", {}, nullptr},
    OpSpec{CS_OP_PROFILE_LIST, "PROFILE_LIST", false, kAccountId,
           "SELECT " PROFILE_COLUMNS " FROM profiles WHERE account_id = ?1 ORDER BY created_ms, rowid", {},
           nullptr},
    OpSpec{CS_OP_PROFILE_UPDATE, "PROFILE_UPDATE", true, kProfileUpdate,
           "UPDATE profiles SET relation = ?2, details_sealed = ?3 WHERE id = ?1", {}, "no such profile"},
    // Consultations, messages and events go with it: ON DELETE CASCADE.
    OpSpec{CS_OP_PROFILE_DELETE, "PROFILE_DELETE", true, kId, "DELETE FROM profiles WHERE id = ?1", {},
           "no such profile"},

    OpSpec{CS_OP_CONSULTATION_INSERT, "CONSULTATION_INSERT", true, kConsultationInsert,
           "INSERT INTO consultations (id, account_id, profile_id, created_ms, updated_ms) "
           "VALUES (?1, ?2, ?3, ?4, ?4)",
           {}, nullptr},
    OpSpec{CS_OP_CONSULTATION_GET, "CONSULTATION_GET", false, kId,
           "SELECT " CONSULTATION_COLUMNS " FROM consultations WHERE id = ?1", {}, nullptr},
    OpSpec{CS_OP_CONSULTATION_LIST, "CONSULTATION_LIST", false, kConsultationList,
           "SELECT " CONSULTATION_COLUMNS " FROM consultations "
           "WHERE account_id = ?1 AND (?2 IS NULL OR profile_id = ?2) "
           "ORDER BY updated_ms DESC, id DESC LIMIT ?3",
           {}, nullptr},
    OpSpec{CS_OP_CONSULTATION_SET_SPECIALIST, "CONSULTATION_SET_SPECIALIST", true, kSetSpecialist,
           "UPDATE consultations SET specialist = ?2, updated_ms = ?3 WHERE id = ?1", {}, "no such consultation"},
    OpSpec{CS_OP_CONSULTATION_RESERVE_SEQ, "CONSULTATION_RESERVE_SEQ", true, kReserveSeq,
           "UPDATE consultations SET seq_reserved = ?2 WHERE id = ?1", {}, "no such consultation"},

    OpSpec{CS_OP_MESSAGE_INSERT, "MESSAGE_INSERT", true, kMessageInsert,
           "INSERT INTO messages (consultation_id, seq, account_id, client_id, role, specialist, "
           "body_sealed, meta, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
           {}, nullptr},
    OpSpec{CS_OP_MESSAGE_LIST, "MESSAGE_LIST", false, kConsultationId,
           "SELECT " MESSAGE_COLUMNS " FROM messages WHERE consultation_id = ?1 ORDER BY seq", {}, nullptr},
    OpSpec{CS_OP_MESSAGE_FIND_BY_CLIENT_ID, "MESSAGE_FIND_BY_CLIENT_ID", false, kFindByClientId,
           "SELECT consultation_id, seq FROM messages WHERE account_id = ?1 AND client_id = ?2", {}, nullptr},

    OpSpec{CS_OP_EVENT_INSERT, "EVENT_INSERT", true, kEventInsert,
           "INSERT INTO events (" EVENT_COLUMNS ", consultation_id) VALUES (?2, ?3, ?4, ?5, ?1)",
           "UPDATE consultations SET last_seq = max(last_seq, ?2), updated_ms = max(updated_ms, ?5) "
           "WHERE id = ?1",
           nullptr},
    OpSpec{CS_OP_EVENT_LIST_AFTER, "EVENT_LIST_AFTER", false, kEventListAfter,
           "SELECT " EVENT_COLUMNS " FROM events WHERE consultation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
           {}, nullptr},

    OpSpec{CS_OP_META_GET, "META_GET", false, kKey, "SELECT value FROM meta WHERE key = ?1", {}, nullptr},
    OpSpec{CS_OP_META_SET, "META_SET", true, kMetaSet,
           "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
           {}, nullptr},
};

const char *kind_name(uint32_t type) {
    switch (type) {
    case CS_VAL_NULL: return "NULL";
    case CS_VAL_INT: return "an integer";
    case CS_VAL_TEXT: return "text";
    case CS_VAL_BLOB: return "a blob";
    default: return "an unknown value type";
    }
}

const char *wanted(const ParamSpec &p) {
    switch (p.kind) {
    case ParamKind::text: return p.nullable ? "text or NULL" : "text";
    case ParamKind::integer: return p.nullable ? "an integer or NULL" : "an integer";
    case ParamKind::count: return "an integer >= 0";
    case ParamKind::sealed: return p.nullable ? "a blob or NULL" : "a blob";
    }
    return "?";
}

bool fits(const ParamSpec &p, const cs_value &v) {
    if (v.type == CS_VAL_NULL) return p.nullable;
    switch (p.kind) {
    case ParamKind::text: return v.type == CS_VAL_TEXT;
    case ParamKind::integer: return v.type == CS_VAL_INT;
    case ParamKind::count: return v.type == CS_VAL_INT && v.i >= 0;
    case ParamKind::sealed: return v.type == CS_VAL_BLOB || v.type == CS_VAL_TEXT;
    }
    return false;
}

void bind_params(Statement &stmt, const OpSpec &spec, const cs_storage_op &op) {
    int used = stmt.parameter_count();
    for (size_t i = 0; i < spec.params.size() && static_cast<int>(i) < used; ++i) {
        int index = static_cast<int>(i) + 1;
        if (spec.params[i].kind == ParamKind::sealed)
            stmt.bind_blob(index, op.params[i]);
        else
            stmt.bind(index, op.params[i]);
    }
}

}  // namespace

const OpSpec *find_op(uint32_t id) {
    for (const OpSpec &spec : kOps)
        if (spec.id == id) return &spec;
    return nullptr;
}

void check_params(const OpSpec &spec, const cs_storage_op &op) {
    if (op.param_count != spec.params.size())
        throw sdk::Error(CS_E_INVALID, std::string(spec.name) + " takes " + std::to_string(spec.params.size()) +
                                           (spec.params.size() == 1 ? " parameter" : " parameters") + ", got " +
                                           std::to_string(op.param_count));
    if (op.param_count > 0 && !op.params)
        throw sdk::Error(CS_E_INVALID, std::string(spec.name) + ": params is NULL");
    for (size_t i = 0; i < spec.params.size(); ++i) {
        const ParamSpec &p = spec.params[i];
        const cs_value &v = op.params[i];
        if (fits(p, v)) continue;
        std::string got = kind_name(v.type);
        if (p.kind == ParamKind::count && v.type == CS_VAL_INT) got = "a negative integer";
        throw sdk::Error(CS_E_INVALID, std::string(spec.name) + ": parameter " + std::to_string(i + 1) + " (" +
                                           p.name + ") must be " + wanted(p) + ", got " + got);
    }
}

void run_op(Connection &conn, const OpSpec &spec, const cs_storage_op &op) {
    {
        Statement stmt = conn.prepare(spec.sql);
        bind_params(stmt, spec, op);
        std::vector<cs_value> row;
        while (stmt.step()) {
            if (!op.rows) continue;
            row.clear();
            for (int c = 0; c < stmt.column_count(); ++c) row.push_back(stmt.column(c));
            if (op.rows->row(op.rows->ctx, row.data(), row.size()) != 0) break;  // caller is done
        }
        if (spec.missing && conn.changes() == 0) throw sdk::Error(CS_E_NOT_FOUND, spec.missing);
    }
    if (!spec.then_sql.empty()) {
        Statement stmt = conn.prepare(spec.then_sql);
        bind_params(stmt, spec, op);
        while (stmt.step()) {
        }
    }
}

}  // namespace consilium::sqlite
