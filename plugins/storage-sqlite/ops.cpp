// ops.cpp: every op of consilium/storage_ops.h mapped to SQL, with its parameter list, checked
// before anything runs. Parameters bind positionally (?1 is the op's first parameter), and the
// result columns of each SELECT are in the order storage_ops.h lists them.
#include "ops.hpp"

#include <array>
#include <string>
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

constexpr P kSessionInsert[] = {{"id", T, REQ},
                                {"account_id", T, REQ},
                                {"created_ms", I, REQ},
                                {"last_used_ms", I, REQ},
                                {"expires_ms", I, REQ}};
constexpr P kSessionTouch[] = {{"id", T, REQ}, {"last_used_ms", I, REQ}};
constexpr P kSessionRevoke[] = {{"id", T, REQ}, {"revoked_ms", I, REQ}, {"reason", T, REQ}};
constexpr P kSessionRevokeAccount[] = {{"account_id", T, REQ}, {"revoked_ms", I, REQ}, {"reason", T, REQ}};
constexpr P kRefreshInsert[] = {{"token_hash", T, REQ}, {"session_id", T, REQ}, {"created_ms", I, REQ}};
constexpr P kRefreshUse[] = {{"token_hash", T, REQ}, {"used_ms", I, REQ}};

constexpr P kAuditAppend[] = {{"seq", I, REQ},       {"at_ms", I, REQ},    {"actor_account", T, NUL},
                              {"actor_role", T, REQ}, {"profile_id", T, NUL}, {"action", T, REQ},
                              {"target", T, NUL},    {"outcome", T, REQ},  {"peer", T, NUL},
                              {"detail", T, REQ},    {"prev_hash", T, REQ}, {"hash", T, REQ}};
constexpr P kAuditList[] = {{"after_seq", I, REQ},     {"limit", N, REQ},      {"from_ms", I, NUL},
                            {"to_ms", I, NUL},         {"actor_account", T, NUL}, {"profile_id", T, NUL},
                            {"action", T, NUL}};
constexpr P kAuditPurge[] = {{"before_ms", I, REQ}};

constexpr P kSealedScan[] = {{"kind", T, REQ}, {"after_cursor", I, REQ}, {"limit", N, REQ}};
constexpr P kSealedRewrite[] = {
    {"kind", T, REQ}, {"id", T, REQ}, {"seq", I, NUL}, {"old_sealed", S, REQ}, {"new_sealed", S, REQ}};

constexpr P kKey[] = {{"key", T, REQ}};
constexpr P kMetaSet[] = {{"key", T, REQ}, {"value", T, REQ}};

#define ACCOUNT_COLUMNS "id, kind, role, email_index, email_sealed, password_hash, created_ms, expires_ms"
#define PROFILE_COLUMNS "id, account_id, relation, details_sealed, created_ms"
#define CONSULTATION_COLUMNS \
    "id, account_id, profile_id, created_ms, updated_ms, last_seq, specialist, seq_reserved"
#define MESSAGE_COLUMNS "consultation_id, seq, client_id, role, specialist, body_sealed, meta, created_ms"
#define EVENT_COLUMNS "seq, type, body_sealed, created_ms"
#define SESSION_COLUMNS "id, account_id, created_ms, last_used_ms, expires_ms, revoked_ms, revoke_reason"
#define AUDIT_COLUMNS \
    "seq, at_ms, actor_account, actor_role, profile_id, action, target, outcome, peer, detail, prev_hash, hash"

// ---- ops one fixed statement cannot express ----

// SEALED_SCAN and SEALED_REWRITE, per kind. The scan's cursor is the table's rowid (events has
// one since schema 2); the rewrite compares the stored bytes with old_sealed (both BLOBs, so
// byte for byte) and changes nothing when they differ.
struct SealedKind {
    std::string_view kind;
    bool keyed_by_seq;  // rows are (consultation_id, seq); else (id) and seq must be NULL
    std::string_view scan;
    std::string_view rewrite;
};

constexpr SealedKind kSealedKinds[] = {
    {"account", false,
     "SELECT rowid, id, NULL, email_sealed FROM accounts WHERE rowid > ?2 AND email_sealed IS NOT NULL "
     "ORDER BY rowid LIMIT ?3",
     "UPDATE accounts SET email_sealed = ?5 WHERE id = ?2 AND email_sealed = ?4"},
    {"profile", false,
     "SELECT rowid, id, NULL, details_sealed FROM profiles WHERE rowid > ?2 ORDER BY rowid LIMIT ?3",
     "UPDATE profiles SET details_sealed = ?5 WHERE id = ?2 AND details_sealed = ?4"},
    {"message", true,
     "SELECT rowid, consultation_id, seq, body_sealed FROM messages WHERE rowid > ?2 ORDER BY rowid LIMIT ?3",
     "UPDATE messages SET body_sealed = ?5 WHERE consultation_id = ?2 AND seq = ?3 AND body_sealed = ?4"},
    {"event", true,
     "SELECT rowid, consultation_id, seq, body_sealed FROM events WHERE rowid > ?2 ORDER BY rowid LIMIT ?3",
     "UPDATE events SET body_sealed = ?5 WHERE consultation_id = ?2 AND seq = ?3 AND body_sealed = ?4"},
};

std::string_view as_view(const cs_value &v) { return {v.s.data ? v.s.data : "", v.s.size}; }

// Parameter 1 of both SEALED_* ops. The message lists the kinds but never repeats the value.
const SealedKind &sealed_kind(const OpSpec &spec, const cs_storage_op &op) {
    for (const SealedKind &k : kSealedKinds)
        if (as_view(op.params[0]) == k.kind) return k;
    throw sdk::Error(CS_E_INVALID, std::string(spec.name) +
                                       ": parameter 1 (kind) must be \"account\", \"profile\", \"message\" or "
                                       "\"event\"");
}

std::string_view pick_sealed_scan(const OpSpec &spec, const cs_storage_op &op) {
    return sealed_kind(spec, op).scan;
}

std::string_view pick_sealed_rewrite(const OpSpec &spec, const cs_storage_op &op) {
    const SealedKind &k = sealed_kind(spec, op);
    bool has_seq = op.params[2].type != CS_VAL_NULL;
    if (has_seq != k.keyed_by_seq)
        throw sdk::Error(CS_E_INVALID, std::string(spec.name) +
                                           ": parameter 3 (seq) must be an integer for kinds \"message\" and "
                                           "\"event\", and NULL for \"account\" and \"profile\"");
    return k.rewrite;
}

// AUDIT_LIST: one statement per combination of the filters given (bit i set: parameter 3 + i is
// not NULL), so that every term is one the planner can use an index for (audit_by_actor,
// audit_by_profile), where "?5 IS NULL OR actor_account = ?5" would make it scan by seq.
// LIFETIME: built once, kept for the life of the plugin (prepare() caches on the text).
const std::array<std::string, 32> &audit_list_statements() {
    static const std::array<std::string, 32> all = [] {
        constexpr const char *kTerms[] = {" AND at_ms >= ?3", " AND at_ms < ?4", " AND actor_account = ?5",
                                          " AND profile_id = ?6", " AND action = ?7"};
        std::array<std::string, 32> out;
        for (unsigned mask = 0; mask < out.size(); ++mask) {
            std::string sql = "SELECT " AUDIT_COLUMNS " FROM audit WHERE seq > ?1";
            for (unsigned bit = 0; bit < std::size(kTerms); ++bit)
                if (mask & (1u << bit)) sql += kTerms[bit];
            out[mask] = sql + " ORDER BY seq LIMIT ?2";
        }
        return out;
    }();
    return all;
}

std::string_view pick_audit_list(const OpSpec &, const cs_storage_op &op) {
    unsigned mask = 0;
    for (unsigned bit = 0; bit < 5; ++bit)
        if (op.params[2 + bit].type != CS_VAL_NULL) mask |= 1u << bit;
    return audit_list_statements()[mask];
}

// REFRESH_USE: the UPDATE marks the token only while it is unused, so of two uses of one token
// exactly one changes the row (the batch holds the write lock from BEGIN IMMEDIATE, and the
// UPDATE would take it anyway); the row read back then says who was first.
void run_refresh_use(Connection &conn, const OpSpec &, const cs_storage_op &op) {
    bool first_use = false;
    {
        Statement mark = conn.prepare("UPDATE refresh_tokens SET used_ms = ?2 WHERE token_hash = ?1 AND used_ms IS NULL");
        mark.bind(1, op.params[0]);
        mark.bind(2, op.params[1]);
        while (mark.step()) {
        }
        first_use = conn.changes() > 0;
    }
    Statement read = conn.prepare("SELECT session_id, used_ms FROM refresh_tokens WHERE token_hash = ?1");
    read.bind(1, op.params[0]);
    if (!read.step() || !op.rows) return;  // no row: an unknown token
    const cs_value row[2] = {read.column(0), first_use ? cs_value{CS_VAL_NULL, 0, {nullptr, 0}} : read.column(1)};
    op.rows->row(op.rows->ctx, row, std::size(row));
}

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
    // Profiles, consultations, messages, events, sessions and refresh tokens go with it: ON
    // DELETE CASCADE. Audit entries stay: they refer to nothing (ids only, outliving erasure).
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

    OpSpec{CS_OP_SESSION_INSERT, "SESSION_INSERT", true, kSessionInsert,
           "INSERT INTO sessions (id, account_id, created_ms, last_used_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
           {}, nullptr},
    OpSpec{CS_OP_SESSION_GET, "SESSION_GET", false, kId,
           "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ?1", {}, nullptr},
    OpSpec{CS_OP_SESSION_TOUCH, "SESSION_TOUCH", true, kSessionTouch,
           "UPDATE sessions SET last_used_ms = ?2 WHERE id = ?1", {}, "no such session"},
    // A session already revoked keeps when and why it was first revoked (the row still counts
    // as changed, so only a missing session is NOT_FOUND).
    OpSpec{CS_OP_SESSION_REVOKE, "SESSION_REVOKE", true, kSessionRevoke,
           "UPDATE sessions SET revoked_ms = coalesce(revoked_ms, ?2), "
           "revoke_reason = CASE WHEN revoked_ms IS NULL THEN ?3 ELSE revoke_reason END WHERE id = ?1",
           {}, "no such session"},
    OpSpec{CS_OP_SESSION_REVOKE_ACCOUNT, "SESSION_REVOKE_ACCOUNT", true, kSessionRevokeAccount,
           "UPDATE sessions SET revoked_ms = ?2, revoke_reason = ?3 WHERE account_id = ?1 AND revoked_ms IS NULL",
           {}, nullptr},
    OpSpec{CS_OP_REFRESH_INSERT, "REFRESH_INSERT", true, kRefreshInsert,
           "INSERT INTO refresh_tokens (token_hash, session_id, created_ms) VALUES (?1, ?2, ?3)", {}, nullptr},
    OpSpec{CS_OP_REFRESH_USE, "REFRESH_USE", true, kRefreshUse, {}, {}, nullptr, nullptr, &run_refresh_use},

    // Entries are never updated: a trigger refuses UPDATE (see the schema).
    OpSpec{CS_OP_AUDIT_APPEND, "AUDIT_APPEND", true, kAuditAppend,
           "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", {},
           nullptr},
    OpSpec{CS_OP_AUDIT_LAST, "AUDIT_LAST", false, {},
           "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY seq DESC LIMIT 1", {}, nullptr},
    OpSpec{CS_OP_AUDIT_LIST, "AUDIT_LIST", false, kAuditList, {}, {}, nullptr, &pick_audit_list},
    OpSpec{CS_OP_AUDIT_PURGE, "AUDIT_PURGE", true, kAuditPurge, "DELETE FROM audit WHERE at_ms < ?1", {}, nullptr},

    OpSpec{CS_OP_SEALED_SCAN, "SEALED_SCAN", false, kSealedScan, {}, {}, nullptr, &pick_sealed_scan},
    OpSpec{CS_OP_SEALED_REWRITE, "SEALED_REWRITE", true, kSealedRewrite, {}, {}, nullptr, &pick_sealed_rewrite},

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
    if (spec.pick) spec.pick(spec, op);  // throws for values it has no statement for
}

void run_op(Connection &conn, const OpSpec &spec, const cs_storage_op &op) {
    if (spec.run) return spec.run(conn, spec, op);
    {
        Statement stmt = conn.prepare(spec.pick ? spec.pick(spec, op) : spec.sql);
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
