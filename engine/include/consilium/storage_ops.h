/*
 * consilium/storage_ops.h: the operations a storage plugin executes (cs_storage_vtable.exec).
 *
 * Each operation is one domain step, not raw SQL, so that SQLite, PostgreSQL or any other store
 * implements the same list. Parameters and result columns are positional; their order is part of
 * the ABI (this file is hashed with abi.h). Columns named *_sealed hold data the engine has
 * already encrypted: a store never sees health data in clear and must store those bytes as they
 * are. Times are Unix milliseconds. Ids are opaque text made by the engine.
 *
 * A plugin that does not know an op returns CS_E_UNSUPPORTED naming it. Ops marked [write]
 * change data; the others only read. A batch given to exec() is one transaction.
 *
 * Rules every store follows (tests/plugins/storage-conformance checks them):
 *  - Each op takes exactly the parameters listed, of the listed types; otherwise CS_E_INVALID,
 *    naming the op and the parameter by its 1-based position. *_sealed parameters may be given
 *    as TEXT or BLOB and always come back as BLOB; "type" and meta values are TEXT.
 *  - Uniqueness violations return CS_E_CONFLICT. A write whose parent row (account, profile,
 *    consultation) does not exist returns CS_E_NOT_FOUND. A negative limit is CS_E_INVALID.
 *  - Error messages name the op and never contain parameter values (they may be health data).
 */
#ifndef CONSILIUM_STORAGE_OPS_H
#define CONSILIUM_STORAGE_OPS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Result columns shared by several ops. */
/* ACCOUNT_COLUMNS: id, kind ("guest"|"patient"), role, email_index|NULL, email_sealed|NULL,
 *                  password_hash|NULL, created_ms, expires_ms|NULL */
/* PROFILE_COLUMNS: id, account_id, relation, details_sealed, created_ms */
/* CONSULTATION_COLUMNS: id, account_id, profile_id, created_ms, updated_ms, last_seq,
 *                       specialist|NULL, seq_reserved */
/* MESSAGE_COLUMNS: consultation_id, seq, client_id|NULL, role ("patient"|"specialist"),
 *                  specialist|NULL, body_sealed, meta (JSON text, no health data), created_ms */
/* EVENT_COLUMNS: seq, type, body_sealed, created_ms */
/* SESSION_COLUMNS: id, account_id, created_ms, last_used_ms, expires_ms, revoked_ms|NULL,
 *                  revoke_reason|NULL                                         (ABI 1.2) */
/* AUDIT_COLUMNS: seq, at_ms, actor_account|NULL, actor_role, profile_id|NULL, action,
 *                target|NULL, outcome, peer|NULL, detail (JSON text, no health data),
 *                prev_hash, hash                                             (ABI 1.2) */

typedef enum cs_storage_op_id {
    /* [write] id, kind, role, email_index|NULL, email_sealed|NULL, password_hash|NULL,
     *         created_ms, expires_ms|NULL. CONFLICT when id or email_index exists. */
    CS_OP_ACCOUNT_INSERT = 1,
    /* id -> ACCOUNT_COLUMNS (0 or 1 row) */
    CS_OP_ACCOUNT_GET = 2,
    /* email_index -> ACCOUNT_COLUMNS (0 or 1 row) */
    CS_OP_ACCOUNT_GET_BY_EMAIL = 3,
    /* [write] id, kind, role, email_index|NULL, email_sealed|NULL, password_hash|NULL,
     *         expires_ms|NULL. NOT_FOUND when no such account. */
    CS_OP_ACCOUNT_UPDATE = 4,
    /* [write] id. Deletes the account and everything it owns (profiles, consultations,
     *         messages, events). NOT_FOUND when no such account. */
    CS_OP_ACCOUNT_DELETE = 5,
    /* now_ms, limit -> id: guest accounts whose expires_ms <= now_ms */
    CS_OP_ACCOUNT_LIST_EXPIRED = 6,

    /* [write] id, account_id, relation, details_sealed, created_ms */
    CS_OP_PROFILE_INSERT = 10,
    /* id -> PROFILE_COLUMNS (0 or 1 row) */
    CS_OP_PROFILE_GET = 11,
    /* account_id -> PROFILE_COLUMNS, oldest first */
    CS_OP_PROFILE_LIST = 12,
    /* [write] id, relation, details_sealed. NOT_FOUND when no such profile. */
    CS_OP_PROFILE_UPDATE = 13,
    /* [write] id. Deletes the profile, its consultations, messages and events.
     *         NOT_FOUND when no such profile. */
    CS_OP_PROFILE_DELETE = 14,

    /* [write] id, account_id, profile_id, created_ms */
    CS_OP_CONSULTATION_INSERT = 20,
    /* id -> CONSULTATION_COLUMNS (0 or 1 row) */
    CS_OP_CONSULTATION_GET = 21,
    /* account_id, profile_id|NULL, limit -> CONSULTATION_COLUMNS, most recently updated first */
    CS_OP_CONSULTATION_LIST = 22,
    /* [write] id, specialist|NULL, updated_ms. NOT_FOUND when no such consultation. */
    CS_OP_CONSULTATION_SET_SPECIALIST = 23,
    /* [write] id, seq_reserved: the highest seq the engine may hand out before it writes this
     *         again; after a crash numbering resumes above it. NOT_FOUND when no such
     *         consultation. */
    CS_OP_CONSULTATION_RESERVE_SEQ = 24,

    /* [write] consultation_id, seq, account_id, client_id|NULL, role, specialist|NULL,
     *         body_sealed, meta, created_ms. CONFLICT when (account_id, client_id) or
     *         (consultation_id, seq) exists. role is "patient" or "specialist". */
    CS_OP_MESSAGE_INSERT = 30,
    /* consultation_id -> MESSAGE_COLUMNS, by seq */
    CS_OP_MESSAGE_LIST = 31,
    /* account_id, client_id -> consultation_id, seq (0 or 1 row) */
    CS_OP_MESSAGE_FIND_BY_CLIENT_ID = 32,

    /* [write] consultation_id, seq, type, body_sealed, created_ms. Also raises the
     *         consultation's last_seq to seq and its updated_ms to created_ms.
     *         CONFLICT when (consultation_id, seq) exists. */
    CS_OP_EVENT_INSERT = 40,
    /* consultation_id, after_seq, limit -> EVENT_COLUMNS with seq > after_seq, by seq */
    CS_OP_EVENT_LIST_AFTER = 41,

    /* --- ABI 1.2: sessions, refresh tokens, audit log, re-encryption ------------------------ */

    /* [write] id, account_id, created_ms, last_used_ms, expires_ms. A session is one sign-in
     *         (one refresh token family). CONFLICT when id exists; NOT_FOUND without the account. */
    CS_OP_SESSION_INSERT = 50,
    /* id -> SESSION_COLUMNS (0 or 1 row) */
    CS_OP_SESSION_GET = 51,
    /* [write] id, last_used_ms. NOT_FOUND when no such session. */
    CS_OP_SESSION_TOUCH = 52,
    /* [write] id, revoked_ms, reason: ends one session (a session already revoked keeps its
     *         first reason). NOT_FOUND when no such session. */
    CS_OP_SESSION_REVOKE = 53,
    /* [write] account_id, revoked_ms, reason: ends every open session of the account. */
    CS_OP_SESSION_REVOKE_ACCOUNT = 54,
    /* [write] token_hash, session_id, created_ms: a refresh token (only its hash is stored).
     *         CONFLICT when token_hash exists; NOT_FOUND without the session. */
    CS_OP_REFRESH_INSERT = 55,
    /* [write] token_hash, used_ms -> session_id, previously_used_ms|NULL (0 or 1 row).
     *         Marks the token used if it was not, atomically: of two callers presenting the
     *         same token exactly one sees previously_used_ms NULL. No row: unknown token. */
    CS_OP_REFRESH_USE = 56,

    /* [write] the AUDIT_COLUMNS in order. Entries are append-only: a store never updates them
     *         and deletes them only through CS_OP_AUDIT_PURGE. CONFLICT when seq exists. */
    CS_OP_AUDIT_APPEND = 60,
    /* -> AUDIT_COLUMNS of the entry with the highest seq (0 or 1 row) */
    CS_OP_AUDIT_LAST = 61,
    /* after_seq, limit, from_ms|NULL, to_ms|NULL, actor_account|NULL, profile_id|NULL,
     * action|NULL -> AUDIT_COLUMNS with seq > after_seq matching every non-NULL filter
     * (from_ms <= at_ms < to_ms), by seq */
    CS_OP_AUDIT_LIST = 62,
    /* [write] before_ms: deletes entries with at_ms < before_ms (retention). */
    CS_OP_AUDIT_PURGE = 63,

    /* kind, after_cursor, limit -> cursor, id, seq|NULL, sealed (by cursor): every sealed
     * value of a kind, for re-encryption under a new key. kind is "account" (id: account id,
     * sealed: email_sealed, rows without one skipped), "profile" (id, details_sealed),
     * "message" (id: consultation_id, seq, body_sealed) or "event" (id: consultation_id, seq,
     * body_sealed). cursor is an INTEGER that only this op interprets; start with 0. */
    CS_OP_SEALED_SCAN = 70,
    /* [write] kind, id, seq|NULL, old_sealed, new_sealed: replaces the value only if it still
     *         equals old_sealed (a concurrent write wins; nothing happens then). */
    CS_OP_SEALED_REWRITE = 71,

    /* key -> value (0 or 1 row) */
    CS_OP_META_GET = 90,
    /* [write] key, value */
    CS_OP_META_SET = 91
} cs_storage_op_id;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CONSILIUM_STORAGE_OPS_H */
