// storage_conformance.cpp: the storage conformance tests (see storage_conformance.hpp) and the
// client that drives a storage plugin through cs_storage_vtable.
#include "storage_conformance.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace consilium::test::storage {

// ---------------------------------------------------------------------------------------------
// Values

Val null() { return Val{}; }
Val integer(int64_t i) { return Val{CS_VAL_INT, i, {}}; }
Val text(std::string s) { return Val{CS_VAL_TEXT, 0, std::move(s)}; }
Val blob(std::string s) { return Val{CS_VAL_BLOB, 0, std::move(s)}; }

void PrintTo(const Val &v, std::ostream *os) {
    switch (v.type) {
    case CS_VAL_NULL: *os << "NULL"; return;
    case CS_VAL_INT: *os << v.i; return;
    case CS_VAL_TEXT: *os << "text \"" << v.s << "\""; return;
    case CS_VAL_BLOB: {
        *os << "blob[" << v.s.size() << "] ";
        static const char *hex = "0123456789abcdef";
        for (unsigned char c : v.s.substr(0, 32)) *os << hex[c >> 4] << hex[c & 15];
        if (v.s.size() > 32) *os << "...";
        return;
    }
    default: *os << "value of type " << v.type;
    }
}

std::string op_name(uint32_t op) {
    switch (op) {
    case CS_OP_ACCOUNT_INSERT: return "ACCOUNT_INSERT";
    case CS_OP_ACCOUNT_GET: return "ACCOUNT_GET";
    case CS_OP_ACCOUNT_GET_BY_EMAIL: return "ACCOUNT_GET_BY_EMAIL";
    case CS_OP_ACCOUNT_UPDATE: return "ACCOUNT_UPDATE";
    case CS_OP_ACCOUNT_DELETE: return "ACCOUNT_DELETE";
    case CS_OP_ACCOUNT_LIST_EXPIRED: return "ACCOUNT_LIST_EXPIRED";
    case CS_OP_PROFILE_INSERT: return "PROFILE_INSERT";
    case CS_OP_PROFILE_GET: return "PROFILE_GET";
    case CS_OP_PROFILE_LIST: return "PROFILE_LIST";
    case CS_OP_PROFILE_UPDATE: return "PROFILE_UPDATE";
    case CS_OP_PROFILE_DELETE: return "PROFILE_DELETE";
    case CS_OP_CONSULTATION_INSERT: return "CONSULTATION_INSERT";
    case CS_OP_CONSULTATION_GET: return "CONSULTATION_GET";
    case CS_OP_CONSULTATION_LIST: return "CONSULTATION_LIST";
    case CS_OP_CONSULTATION_SET_SPECIALIST: return "CONSULTATION_SET_SPECIALIST";
    case CS_OP_CONSULTATION_RESERVE_SEQ: return "CONSULTATION_RESERVE_SEQ";
    case CS_OP_MESSAGE_INSERT: return "MESSAGE_INSERT";
    case CS_OP_MESSAGE_LIST: return "MESSAGE_LIST";
    case CS_OP_MESSAGE_FIND_BY_CLIENT_ID: return "MESSAGE_FIND_BY_CLIENT_ID";
    case CS_OP_EVENT_INSERT: return "EVENT_INSERT";
    case CS_OP_EVENT_LIST_AFTER: return "EVENT_LIST_AFTER";
    case CS_OP_SESSION_INSERT: return "SESSION_INSERT";
    case CS_OP_SESSION_GET: return "SESSION_GET";
    case CS_OP_SESSION_TOUCH: return "SESSION_TOUCH";
    case CS_OP_SESSION_REVOKE: return "SESSION_REVOKE";
    case CS_OP_SESSION_REVOKE_ACCOUNT: return "SESSION_REVOKE_ACCOUNT";
    case CS_OP_REFRESH_INSERT: return "REFRESH_INSERT";
    case CS_OP_REFRESH_USE: return "REFRESH_USE";
    case CS_OP_AUDIT_APPEND: return "AUDIT_APPEND";
    case CS_OP_AUDIT_LAST: return "AUDIT_LAST";
    case CS_OP_AUDIT_LIST: return "AUDIT_LIST";
    case CS_OP_AUDIT_PURGE: return "AUDIT_PURGE";
    case CS_OP_SEALED_SCAN: return "SEALED_SCAN";
    case CS_OP_SEALED_REWRITE: return "SEALED_REWRITE";
    case CS_OP_META_GET: return "META_GET";
    case CS_OP_META_SET: return "META_SET";
    default: return "op " + std::to_string(op);
    }
}

// ---------------------------------------------------------------------------------------------
// Client

namespace {

struct SinkState {
    Rows *rows;
    size_t stop_after;
};

int collect_row(void *ctx, const cs_value *columns, size_t count) {
    auto *state = static_cast<SinkState *>(ctx);
    Row row;
    for (size_t i = 0; i < count; ++i) {
        const cs_value &c = columns[i];
        Val v{c.type, c.type == CS_VAL_INT ? c.i : 0, {}};
        if (c.type == CS_VAL_TEXT || c.type == CS_VAL_BLOB) v.s.assign(c.s.data ? c.s.data : "", c.s.size);
        row.push_back(std::move(v));
    }
    state->rows->push_back(std::move(row));
    return state->stop_after != 0 && state->rows->size() >= state->stop_after ? 1 : 0;
}

cs_value to_cs_value(const Val &v) {
    return cs_value{v.type, v.i, {v.s.data(), v.s.size()}};
}

}  // namespace

StorageClient::StorageClient(PluginHarness &harness) : harness_(harness) {}

Outcome StorageClient::exec(const std::vector<Op> &ops, size_t stop_after) const {
    Outcome out;
    out.rows.resize(ops.size());
    std::vector<std::vector<cs_value>> params(ops.size());
    std::vector<SinkState> states(ops.size());
    std::vector<cs_row_sink> sinks(ops.size());
    std::vector<cs_storage_op> batch(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
        for (const Val &v : ops[i].params) params[i].push_back(to_cs_value(v));
        states[i] = SinkState{&out.rows[i], stop_after};
        sinks[i] = cs_row_sink{&states[i], &collect_row};
        batch[i] = cs_storage_op{ops[i].op, params[i].data(), params[i].size(),
                                 ops[i].want_rows ? &sinks[i] : nullptr};
    }
    const auto *vt = harness_.instance->vtable<cs_storage_vtable>();
    cs_error err{};
    out.status = vt->exec(harness_.instance->instance(), batch.data(), batch.size(), &err);
    if (out.status != CS_OK) out.message = err.message;
    return out;
}

Rows StorageClient::must(uint32_t op, std::vector<Val> params) const {
    Outcome out = one(op, std::move(params));
    if (out.status != CS_OK)
        throw std::runtime_error(op_name(op) + " failed with status " + std::to_string(out.status) + ": " +
                                 out.message);
    return out.rows.at(0);
}

void StorageClient::must(const std::vector<Op> &batch) const {
    Outcome out = exec(batch);
    if (out.status != CS_OK)
        throw std::runtime_error("batch failed with status " + std::to_string(out.status) + ": " + out.message);
}

// ---------------------------------------------------------------------------------------------
// Op builders

namespace op {

Op account(const std::string &id, const std::string &kind, Val email_index, Val email_sealed, Val password_hash,
           int64_t created_ms, Val expires_ms) {
    return Op{CS_OP_ACCOUNT_INSERT,
              {text(id), text(kind), text(kind == "guest" ? "guest" : "user"), std::move(email_index),
               std::move(email_sealed), std::move(password_hash), integer(created_ms), std::move(expires_ms)}};
}

Op profile(const std::string &id, const std::string &account_id, int64_t created_ms, Val details_sealed,
           const std::string &relation) {
    return Op{CS_OP_PROFILE_INSERT,
              {text(id), text(account_id), text(relation), std::move(details_sealed), integer(created_ms)}};
}

Op consultation(const std::string &id, const std::string &account_id, const std::string &profile_id,
                int64_t created_ms) {
    return Op{CS_OP_CONSULTATION_INSERT, {text(id), text(account_id), text(profile_id), integer(created_ms)}};
}

Op message(const std::string &consultation_id, int64_t seq, const std::string &account_id, Val client_id,
           Val body_sealed, const std::string &role, Val specialist, int64_t created_ms, const std::string &meta) {
    return Op{CS_OP_MESSAGE_INSERT,
              {text(consultation_id), integer(seq), text(account_id), std::move(client_id), text(role),
               std::move(specialist), std::move(body_sealed), text(meta), integer(created_ms)}};
}

Op event(const std::string &consultation_id, int64_t seq, Val body_sealed, int64_t created_ms,
         const std::string &type) {
    return Op{CS_OP_EVENT_INSERT,
              {text(consultation_id), integer(seq), text(type), std::move(body_sealed), integer(created_ms)}};
}

Op session(const std::string &id, const std::string &account_id, int64_t created_ms, int64_t expires_ms) {
    return Op{CS_OP_SESSION_INSERT,
              {text(id), text(account_id), integer(created_ms), integer(created_ms), integer(expires_ms)}};
}

Op refresh(const std::string &token_hash, const std::string &session_id, int64_t created_ms) {
    return Op{CS_OP_REFRESH_INSERT, {text(token_hash), text(session_id), integer(created_ms)}};
}

Row audit_row(const AuditEntry &e) {
    return {integer(e.seq),      integer(e.at_ms), e.actor_account,  text(e.actor_role),
            e.profile_id,        text(e.action),   e.target,         text(e.outcome),
            e.peer,              text(e.detail),   text("hash-" + std::to_string(e.seq - 1)),
            text("hash-" + std::to_string(e.seq))};
}

Op audit(const AuditEntry &e) { return Op{CS_OP_AUDIT_APPEND, audit_row(e)}; }

}  // namespace op

// ---------------------------------------------------------------------------------------------
// Fixture

void PrintTo(const StorageBackend &b, std::ostream *os) { *os << b.name; }

std::string backend_name(const testing::TestParamInfo<StorageBackend> &info) { return info.param.name; }

void StorageConformance::SetUp() {
    harness_ = GetParam().make(dir_.str());
    ASSERT_TRUE(harness_ && harness_->instance);
    client_ = std::make_unique<StorageClient>(*harness_);
}

void StorageConformance::TearDown() {
    client_.reset();
    harness_.reset();
}

void StorageConformance::seed(const std::string &account, const std::string &profile,
                              const std::string &consultation) const {
    db().must({op::account(account), op::profile(profile, account), op::consultation(consultation, account, profile)});
}

// Ops named by storage_ops.h appear in failure messages; parameter values never do.
#define EXPECT_FAILS(outcome, status_, op_)                                              \
    do {                                                                                 \
        const Outcome &o_ = (outcome);                                                   \
        EXPECT_EQ(o_.status, status_) << o_.message;                                     \
        EXPECT_NE(o_.message.find(op_name(op_)), std::string::npos) << o_.message;       \
    } while (0)

namespace {

// Every byte value, NULs included, twice: what ciphertext looks like.
std::string all_bytes() {
    std::string s;
    for (int round = 0; round < 2; ++round)
        for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
    return s;
}

Row account_row(const std::string &id, const std::string &kind, const std::string &role, Val email_index,
                Val email_sealed, Val password_hash, int64_t created_ms, Val expires_ms) {
    return {text(id),          text(kind),         text(role),           std::move(email_index),
            std::move(email_sealed), std::move(password_hash), integer(created_ms), std::move(expires_ms)};
}

std::vector<std::string> first_column_texts(const Rows &rows) {
    std::vector<std::string> out;
    for (const Row &r : rows) out.push_back(r.at(0).s);
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Accounts

TEST_P(StorageConformance, AccountInsertThenGetReturnsEveryColumn) {
    std::string sealed("\0mail\0sealed", 12);
    db().must({Op{CS_OP_ACCOUNT_INSERT,
                  {text("a1"), text("patient"), text("user"), text("idx-a1"), blob(sealed), text("argon2id$hash"),
                   integer(1000), null()}},
               Op{CS_OP_ACCOUNT_INSERT,
                  {text("g1"), text("guest"), text("guest"), null(), null(), null(), integer(1001), integer(9000)}}});

    Row a1 = account_row("a1", "patient", "user", text("idx-a1"), blob(sealed), text("argon2id$hash"), 1000, null());
    Row g1 = account_row("g1", "guest", "guest", null(), null(), null(), 1001, integer(9000));
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("a1")}), Rows{a1});
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("g1")}), Rows{g1});
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("nobody")}), Rows{});
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET_BY_EMAIL, {text("idx-a1")}), Rows{a1});
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET_BY_EMAIL, {text("idx-none")}), Rows{});
}

TEST_P(StorageConformance, AccountIdAndEmailIndexAreUnique) {
    db().must({op::account("a1", "patient", text("idx-1"))});
    EXPECT_FAILS(db().exec({op::account("a1", "patient", text("idx-2"))}), CS_E_CONFLICT, CS_OP_ACCOUNT_INSERT);
    EXPECT_FAILS(db().exec({op::account("a2", "patient", text("idx-1"))}), CS_E_CONFLICT, CS_OP_ACCOUNT_INSERT);
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("a2")}), Rows{});
    // Accounts without an e-mail (guests) do not collide with each other.
    db().must({op::account("g1", "guest"), op::account("g2", "guest")});
    EXPECT_EQ(count(CS_OP_ACCOUNT_GET, {text("g2")}), 1u);
}

TEST_P(StorageConformance, AccountUpdateChangesEverythingButCreation) {
    db().must({op::account("g1", "guest", null(), null(), null(), 1000, integer(5000)),
               op::account("a2", "patient", text("idx-taken"))});
    // A guest signs up: becomes a patient with an e-mail and a password, no expiry.
    db().must(CS_OP_ACCOUNT_UPDATE, {text("g1"), text("patient"), text("admin"), text("idx-g1"),
                                     blob(std::string("e\0m", 3)), text("hash"), null()});
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("g1")}),
              Rows{account_row("g1", "patient", "admin", text("idx-g1"), blob(std::string("e\0m", 3)), text("hash"),
                               1000, null())});
    EXPECT_EQ(count(CS_OP_ACCOUNT_GET_BY_EMAIL, {text("idx-g1")}), 1u);

    EXPECT_FAILS(db().one(CS_OP_ACCOUNT_UPDATE,
                          {text("nobody"), text("patient"), text("user"), null(), null(), null(), null()}),
                 CS_E_NOT_FOUND, CS_OP_ACCOUNT_UPDATE);
    EXPECT_FAILS(db().one(CS_OP_ACCOUNT_UPDATE,
                          {text("g1"), text("patient"), text("user"), text("idx-taken"), null(), null(), null()}),
                 CS_E_CONFLICT, CS_OP_ACCOUNT_UPDATE);
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("g1")}).at(0).at(3), text("idx-g1"));
}

TEST_P(StorageConformance, AccountListExpiredReturnsExpiredGuestsOnly) {
    db().must({op::account("g1", "guest", null(), null(), null(), 1, integer(100)),
               op::account("g2", "guest", null(), null(), null(), 1, integer(200)),
               op::account("g3", "guest", null(), null(), null(), 1, integer(300)),
               op::account("g4", "guest"),  // never expires
               op::account("p1", "patient", null(), null(), null(), 1, integer(50))});
    auto ids = first_column_texts(db().must(CS_OP_ACCOUNT_LIST_EXPIRED, {integer(200), integer(10)}));
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::string>{"g1", "g2"}));
    Rows limited = db().must(CS_OP_ACCOUNT_LIST_EXPIRED, {integer(1000), integer(2)});
    EXPECT_EQ(limited.size(), 2u);
    for (const Row &r : limited) EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(count(CS_OP_ACCOUNT_LIST_EXPIRED, {integer(99), integer(10)}), 0u);
}

TEST_P(StorageConformance, AccountDeleteTakesEverythingItOwns) {
    for (std::string a : {"a1", "a2"}) {
        db().must({op::account(a), op::profile(a + "-p1", a, 1000), op::profile(a + "-p2", a, 1001),
                   op::consultation(a + "-c1", a, a + "-p1"), op::consultation(a + "-c2", a, a + "-p2"),
                   op::message(a + "-c1", 1, a, text(a + "-m1")), op::message(a + "-c2", 1, a, text(a + "-m2")),
                   op::event(a + "-c1", 1), op::event(a + "-c2", 1)});
    }
    db().must(CS_OP_ACCOUNT_DELETE, {text("a1")});

    EXPECT_EQ(count(CS_OP_ACCOUNT_GET, {text("a1")}), 0u);
    EXPECT_EQ(count(CS_OP_PROFILE_LIST, {text("a1")}), 0u);
    EXPECT_EQ(count(CS_OP_PROFILE_GET, {text("a1-p1")}), 0u);
    EXPECT_EQ(count(CS_OP_CONSULTATION_LIST, {text("a1"), null(), integer(100)}), 0u);
    for (std::string c : {"a1-c1", "a1-c2"}) {
        EXPECT_EQ(count(CS_OP_CONSULTATION_GET, {text(c)}), 0u);
        EXPECT_EQ(count(CS_OP_MESSAGE_LIST, {text(c)}), 0u);
        EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text(c), integer(0), integer(100)}), 0u);
    }
    EXPECT_EQ(count(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {text("a1"), text("a1-m1")}), 0u);

    // The other account is untouched.
    EXPECT_EQ(count(CS_OP_PROFILE_LIST, {text("a2")}), 2u);
    EXPECT_EQ(count(CS_OP_CONSULTATION_LIST, {text("a2"), null(), integer(100)}), 2u);
    EXPECT_EQ(count(CS_OP_MESSAGE_LIST, {text("a2-c1")}), 1u);
    EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text("a2-c2"), integer(0), integer(100)}), 1u);

    EXPECT_FAILS(db().one(CS_OP_ACCOUNT_DELETE, {text("a1")}), CS_E_NOT_FOUND, CS_OP_ACCOUNT_DELETE);
    // The id is free again.
    db().must({op::account("a1")});
}

// ---------------------------------------------------------------------------------------------
// Profiles

TEST_P(StorageConformance, ProfilesInsertGetListOldestFirstAndUpdate) {
    db().must({op::account("a1"), op::account("a2"),
               op::profile("p-late", "a1", 2000, blob(std::string("d\0late", 6)), "self"),
               op::profile("p-early", "a1", 1000, blob("early"), "child"), op::profile("p-other", "a2", 500)});
    Row late{text("p-late"), text("a1"), text("self"), blob(std::string("d\0late", 6)), integer(2000)};
    Row early{text("p-early"), text("a1"), text("child"), blob("early"), integer(1000)};
    EXPECT_EQ(db().must(CS_OP_PROFILE_GET, {text("p-late")}), Rows{late});
    EXPECT_EQ(db().must(CS_OP_PROFILE_GET, {text("p-none")}), Rows{});
    EXPECT_EQ(db().must(CS_OP_PROFILE_LIST, {text("a1")}), (Rows{early, late}));

    db().must(CS_OP_PROFILE_UPDATE, {text("p-early"), text("parent"), blob(std::string("new\0", 4))});
    EXPECT_EQ(db().must(CS_OP_PROFILE_GET, {text("p-early")}),
              (Rows{{text("p-early"), text("a1"), text("parent"), blob(std::string("new\0", 4)), integer(1000)}}));
    EXPECT_FAILS(db().one(CS_OP_PROFILE_UPDATE, {text("p-none"), text("self"), blob("x")}), CS_E_NOT_FOUND,
                 CS_OP_PROFILE_UPDATE);
    EXPECT_FAILS(db().exec({op::profile("p-late", "a1")}), CS_E_CONFLICT, CS_OP_PROFILE_INSERT);
    // A profile needs its account.
    EXPECT_NE(db().exec({op::profile("p-orphan", "nobody")}).status, CS_OK);
    EXPECT_EQ(count(CS_OP_PROFILE_GET, {text("p-orphan")}), 0u);
}

TEST_P(StorageConformance, ProfileDeleteTakesItsConsultationsOnly) {
    db().must({op::account("a1"), op::profile("p1", "a1"), op::profile("p2", "a1"), op::consultation("c1", "a1", "p1"),
               op::consultation("c2", "a1", "p2"), op::message("c1", 1, "a1", text("m1")),
               op::message("c2", 1, "a1", text("m2")), op::event("c1", 1), op::event("c2", 1)});
    db().must(CS_OP_PROFILE_DELETE, {text("p1")});
    // Deleting it again: there is nothing to delete.
    EXPECT_FAILS(db().exec({{CS_OP_PROFILE_DELETE, {text("p1")}}}), CS_E_NOT_FOUND, CS_OP_PROFILE_DELETE);
    EXPECT_FAILS(db().exec({{CS_OP_CONSULTATION_SET_SPECIALIST, {text("c1"), text("x"), integer(1)}}}), CS_E_NOT_FOUND,
                 CS_OP_CONSULTATION_SET_SPECIALIST);
    // A reservation the engine relies on must never silently not happen.
    EXPECT_FAILS(db().exec({{CS_OP_CONSULTATION_RESERVE_SEQ, {text("c1"), integer(64)}}}), CS_E_NOT_FOUND,
                 CS_OP_CONSULTATION_RESERVE_SEQ);

    EXPECT_EQ(count(CS_OP_PROFILE_GET, {text("p1")}), 0u);
    EXPECT_EQ(count(CS_OP_CONSULTATION_GET, {text("c1")}), 0u);
    EXPECT_EQ(count(CS_OP_MESSAGE_LIST, {text("c1")}), 0u);
    EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(10)}), 0u);
    EXPECT_EQ(count(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {text("a1"), text("m1")}), 0u);

    EXPECT_EQ(count(CS_OP_ACCOUNT_GET, {text("a1")}), 1u);
    EXPECT_EQ(count(CS_OP_PROFILE_GET, {text("p2")}), 1u);
    EXPECT_EQ(count(CS_OP_CONSULTATION_GET, {text("c2")}), 1u);
    EXPECT_EQ(count(CS_OP_MESSAGE_LIST, {text("c2")}), 1u);
    EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text("c2"), integer(0), integer(10)}), 1u);
    // The client id of a deleted message may be used again.
    db().must({op::message("c2", 2, "a1", text("m1"))});
}

// ---------------------------------------------------------------------------------------------
// Consultations

TEST_P(StorageConformance, ConsultationInsertThenGetReturnsEveryColumn) {
    db().must({op::account("a1"), op::profile("p1", "a1"), op::consultation("c1", "a1", "p1", 4242)});
    EXPECT_EQ(db().must(CS_OP_CONSULTATION_GET, {text("c1")}),
              (Rows{{text("c1"), text("a1"), text("p1"), integer(4242), integer(4242), integer(0), null(),
                     integer(0)}}));
    EXPECT_EQ(db().must(CS_OP_CONSULTATION_GET, {text("c-none")}), Rows{});
    EXPECT_FAILS(db().exec({op::consultation("c1", "a1", "p1")}), CS_E_CONFLICT, CS_OP_CONSULTATION_INSERT);
    EXPECT_NE(db().exec({op::consultation("c-orphan", "a1", "p-none")}).status, CS_OK);
}

TEST_P(StorageConformance, ConsultationListIsMostRecentlyUpdatedFirst) {
    db().must({op::account("a1"), op::profile("p1", "a1"), op::profile("p2", "a1"),
               op::consultation("c1", "a1", "p1", 1000), op::consultation("c2", "a1", "p1", 2000),
               op::consultation("c3", "a1", "p2", 3000), op::account("a2"), op::profile("q1", "a2"),
               op::consultation("d1", "a2", "q1", 9000)});
    db().must(CS_OP_CONSULTATION_SET_SPECIALIST, {text("c1"), text("cardiology"), integer(5000)});

    auto ids = [&](Val profile, int64_t limit) {
        return first_column_texts(db().must(CS_OP_CONSULTATION_LIST, {text("a1"), std::move(profile), integer(limit)}));
    };
    EXPECT_EQ(ids(null(), 100), (std::vector<std::string>{"c1", "c3", "c2"}));
    EXPECT_EQ(ids(null(), 2), (std::vector<std::string>{"c1", "c3"}));
    EXPECT_EQ(ids(text("p1"), 100), (std::vector<std::string>{"c1", "c2"}));
    EXPECT_EQ(ids(text("p2"), 100), (std::vector<std::string>{"c3"}));
    EXPECT_EQ(ids(null(), 0), (std::vector<std::string>{}));
    Rows rows = db().must(CS_OP_CONSULTATION_LIST, {text("a1"), text("p2"), integer(10)});
    EXPECT_EQ(rows, (Rows{{text("c3"), text("a1"), text("p2"), integer(3000), integer(3000), integer(0), null(),
                           integer(0)}}));
}

TEST_P(StorageConformance, ConsultationSpecialistAndReservedSeq) {
    seed("a1", "p1", "c1");
    db().must(CS_OP_CONSULTATION_SET_SPECIALIST, {text("c1"), text("dermatology"), integer(7000)});
    db().must(CS_OP_CONSULTATION_RESERVE_SEQ, {text("c1"), integer(128)});
    EXPECT_EQ(db().must(CS_OP_CONSULTATION_GET, {text("c1")}),
              (Rows{{text("c1"), text("a1"), text("p1"), integer(1000), integer(7000), integer(0), text("dermatology"),
                     integer(128)}}));
    db().must(CS_OP_CONSULTATION_SET_SPECIALIST, {text("c1"), null(), integer(8000)});
    Row row = db().must(CS_OP_CONSULTATION_GET, {text("c1")}).at(0);
    EXPECT_EQ(row.at(6), null());
    EXPECT_EQ(row.at(4), integer(8000));
    EXPECT_EQ(row.at(7), integer(128));
}

// ---------------------------------------------------------------------------------------------
// Messages

TEST_P(StorageConformance, MessagesListBySeqWithEveryColumn) {
    seed("a1", "p1", "c1");
    db().must({op::message("c1", 2, "a1", null(), blob(std::string("ans\0wer", 7)), "specialist", text("cardiology"),
                           2200, R"({"model":"m","citations":1})"),
               op::message("c1", 1, "a1", text("client-1"), blob("question"), "patient", null(), 2100, "{}")});
    EXPECT_EQ(db().must(CS_OP_MESSAGE_LIST, {text("c1")}),
              (Rows{{text("c1"), integer(1), text("client-1"), text("patient"), null(), blob("question"), text("{}"),
                     integer(2100)},
                    {text("c1"), integer(2), null(), text("specialist"), text("cardiology"),
                     blob(std::string("ans\0wer", 7)), text(R"({"model":"m","citations":1})"), integer(2200)}}));
    EXPECT_EQ(db().must(CS_OP_MESSAGE_LIST, {text("c-none")}), Rows{});

    EXPECT_EQ(db().must(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {text("a1"), text("client-1")}),
              (Rows{{text("c1"), integer(1)}}));
    EXPECT_EQ(count(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {text("a1"), text("client-2")}), 0u);
    EXPECT_EQ(count(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {text("a2"), text("client-1")}), 0u);
}

TEST_P(StorageConformance, MessageClientIdIsUniquePerAccount) {
    seed("a1", "p1", "c1");
    seed("a2", "p2", "c2");
    db().must({op::message("c1", 1, "a1", text("client-secret-7f3a"))});
    Outcome dup = db().exec({op::message("c1", 2, "a1", text("client-secret-7f3a"), blob("body-secret-91c2"))});
    EXPECT_FAILS(dup, CS_E_CONFLICT, CS_OP_MESSAGE_INSERT);
    EXPECT_EQ(dup.message.find("client-secret-7f3a"), std::string::npos) << dup.message;
    EXPECT_EQ(dup.message.find("body-secret-91c2"), std::string::npos) << dup.message;
    EXPECT_EQ(count(CS_OP_MESSAGE_LIST, {text("c1")}), 1u);

    // The same client id in another account is another message; messages without one never collide.
    db().must({op::message("c2", 1, "a2", text("client-secret-7f3a")), op::message("c1", 2, "a1", null()),
               op::message("c1", 3, "a1", null())});
    EXPECT_EQ(count(CS_OP_MESSAGE_LIST, {text("c1")}), 3u);
    EXPECT_EQ(db().must(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {text("a2"), text("client-secret-7f3a")}),
              (Rows{{text("c2"), integer(1)}}));
    // A message needs its consultation.
    EXPECT_NE(db().exec({op::message("c-none", 1, "a1", null())}).status, CS_OK);
}

// ---------------------------------------------------------------------------------------------
// Events

TEST_P(StorageConformance, EventsListAfterSeqWithLimit) {
    seed("a1", "p1", "c1");
    seed("a1x", "p1x", "c2");
    std::vector<Op> batch;
    for (int seq = 1; seq <= 5; ++seq)
        batch.push_back(op::event("c1", seq, blob("b" + std::to_string(seq)), 10000 + seq, seq == 5 ? "end" : "chunk"));
    batch.push_back(op::event("c2", 1));
    db().must(batch);

    Rows all = db().must(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(100)});
    ASSERT_EQ(all.size(), 5u);
    EXPECT_EQ(all[0], (Row{integer(1), text("chunk"), blob("b1"), integer(10001)}));
    EXPECT_EQ(all[4], (Row{integer(5), text("end"), blob("b5"), integer(10005)}));
    Rows page = db().must(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(2), integer(2)});
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[0].at(0), integer(3));
    EXPECT_EQ(page[1].at(0), integer(4));
    EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(5), integer(100)}), 0u);
    EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(0)}), 0u);
}

TEST_P(StorageConformance, EventInsertRaisesLastSeqAndUpdatedMs) {
    seed("a1", "p1", "c1");  // created (and updated) at 1000
    db().must({op::event("c1", 7, blob("x"), 5000)});
    Row row = db().must(CS_OP_CONSULTATION_GET, {text("c1")}).at(0);
    EXPECT_EQ(row.at(5), integer(7));
    EXPECT_EQ(row.at(4), integer(5000));
    // A late, lower event never lowers them.
    db().must({op::event("c1", 3, blob("y"), 4000)});
    row = db().must(CS_OP_CONSULTATION_GET, {text("c1")}).at(0);
    EXPECT_EQ(row.at(5), integer(7));
    EXPECT_EQ(row.at(4), integer(5000));
    db().must({op::event("c1", 8, blob("z"), 6000)});
    row = db().must(CS_OP_CONSULTATION_GET, {text("c1")}).at(0);
    EXPECT_EQ(row.at(5), integer(8));
    EXPECT_EQ(row.at(4), integer(6000));
}

TEST_P(StorageConformance, EventSeqIsUniquePerConsultation) {
    seed("a1", "p1", "c1");
    seed("a2", "p2", "c2");
    db().must({op::event("c1", 1, blob("first"), 2000)});
    EXPECT_FAILS(db().exec({op::event("c1", 1, blob("second"), 9000)}), CS_E_CONFLICT, CS_OP_EVENT_INSERT);
    EXPECT_EQ(db().must(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(10)}),
              (Rows{{integer(1), text("chunk"), blob("first"), integer(2000)}}));
    // The failed insert raised nothing.
    EXPECT_EQ(db().must(CS_OP_CONSULTATION_GET, {text("c1")}).at(0).at(4), integer(2000));
    db().must({op::event("c2", 1)});
    // An event needs its consultation.
    EXPECT_NE(db().exec({op::event("c-none", 1)}).status, CS_OK);
}

// ---------------------------------------------------------------------------------------------
// Meta

TEST_P(StorageConformance, MetaSetOverwritesAndGetReadsBack) {
    EXPECT_EQ(db().must(CS_OP_META_GET, {text("schema.engine")}), Rows{});
    db().must(CS_OP_META_SET, {text("schema.engine"), text("1")});
    EXPECT_EQ(db().must(CS_OP_META_GET, {text("schema.engine")}), (Rows{{text("1")}}));
    db().must(CS_OP_META_SET, {text("schema.engine"), text("2")});
    EXPECT_EQ(db().must(CS_OP_META_GET, {text("schema.engine")}), (Rows{{text("2")}}));
}

// ---------------------------------------------------------------------------------------------
// Sealed bytes

TEST_P(StorageConformance, SealedBlobsRoundTripByteForByte) {
    const std::string bytes = all_bytes();
    ASSERT_EQ(bytes.size(), 512u);
    db().must({op::account("a1", "patient", text("idx"), blob(bytes)), op::profile("p1", "a1", 1000, blob(bytes)),
               op::consultation("c1", "a1", "p1"), op::message("c1", 1, "a1", null(), blob(bytes)),
               op::event("c1", 1, blob(bytes)),
               // Empty is not absent.
               op::message("c1", 2, "a1", null(), blob("")), op::event("c1", 2, blob(""))});
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("a1")}).at(0).at(4), blob(bytes));
    EXPECT_EQ(db().must(CS_OP_PROFILE_GET, {text("p1")}).at(0).at(3), blob(bytes));
    Rows messages = db().must(CS_OP_MESSAGE_LIST, {text("c1")});
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].at(5), blob(bytes));
    EXPECT_EQ(messages[1].at(5), blob(""));
    Rows events = db().must(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(10)});
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].at(2), blob(bytes));
    EXPECT_EQ(events[1].at(2), blob(""));
}

// ---------------------------------------------------------------------------------------------
// Batches and the exec() contract

TEST_P(StorageConformance, BatchIsOneTransaction) {
    db().must({op::account("a1")});
    // The second op conflicts: nothing of the first stays.
    Outcome out = db().exec({op::account("a-new"), op::account("a1")});
    EXPECT_FAILS(out, CS_E_CONFLICT, CS_OP_ACCOUNT_INSERT);
    EXPECT_EQ(count(CS_OP_ACCOUNT_GET, {text("a-new")}), 0u);

    seed("a2", "p2", "c2");
    db().must({op::message("c2", 1, "a2", text("dup"))});
    out = db().exec({op::profile("p-new", "a2"), op::event("c2", 5, blob("e"), 99999),
                     op::message("c2", 2, "a2", text("dup"))});
    EXPECT_FAILS(out, CS_E_CONFLICT, CS_OP_MESSAGE_INSERT);
    EXPECT_EQ(count(CS_OP_PROFILE_GET, {text("p-new")}), 0u);
    EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text("c2"), integer(0), integer(10)}), 0u);
    Row c2 = db().must(CS_OP_CONSULTATION_GET, {text("c2")}).at(0);
    EXPECT_EQ(c2.at(5), integer(0));
    EXPECT_EQ(c2.at(4), integer(1000));

    // A batch sees its own writes, and all of it is kept.
    out = db().exec({op::account("a3"), Op{CS_OP_META_SET, {text("k"), text("v")}},
                     Op{CS_OP_META_GET, {text("k")}}, Op{CS_OP_ACCOUNT_GET, {text("a3")}}});
    ASSERT_EQ(out.status, CS_OK) << out.message;
    EXPECT_EQ(out.rows.at(2), (Rows{{text("v")}}));
    EXPECT_EQ(out.rows.at(3).size(), 1u);
    EXPECT_EQ(out.rows.at(0), Rows{});
}

TEST_P(StorageConformance, ReadBatchReturnsRowsPerOp) {
    seed("a1", "p1", "c1");
    Outcome out = db().exec({Op{CS_OP_ACCOUNT_GET, {text("a1")}}, Op{CS_OP_PROFILE_LIST, {text("a1")}},
                             Op{CS_OP_CONSULTATION_GET, {text("none")}}, Op{CS_OP_CONSULTATION_GET, {text("c1")}}});
    ASSERT_EQ(out.status, CS_OK) << out.message;
    EXPECT_EQ(out.rows.at(0).size(), 1u);
    EXPECT_EQ(out.rows.at(1).size(), 1u);
    EXPECT_EQ(out.rows.at(2).size(), 0u);
    EXPECT_EQ(out.rows.at(3).size(), 1u);
}

TEST_P(StorageConformance, EmptyBatchAndNullSinkAreFine) {
    EXPECT_EQ(db().exec({}).status, CS_OK);
    seed("a1", "p1", "c1");
    Outcome out = db().exec({Op{CS_OP_ACCOUNT_GET, {text("a1")}, false}, Op{CS_OP_PROFILE_LIST, {text("a1")}}});
    ASSERT_EQ(out.status, CS_OK) << out.message;
    EXPECT_EQ(out.rows.at(0).size(), 0u);
    EXPECT_EQ(out.rows.at(1).size(), 1u);
}

TEST_P(StorageConformance, SinkCanStopTheScan) {
    seed("a1", "p1", "c1");
    db().must({op::event("c1", 1), op::event("c1", 2), op::event("c1", 3)});
    Outcome out = db().exec({Op{CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(10)}}}, 1);
    ASSERT_EQ(out.status, CS_OK) << out.message;
    EXPECT_EQ(out.rows.at(0).size(), 1u);
}

TEST_P(StorageConformance, UnknownOpIsUnsupportedAndKeepsNothing) {
    Outcome out = db().exec({Op{CS_OP_META_SET, {text("k"), text("v")}}, Op{9999, {text("x")}}});
    EXPECT_EQ(out.status, CS_E_UNSUPPORTED) << out.message;
    EXPECT_NE(out.message.find("9999"), std::string::npos) << out.message;
    EXPECT_EQ(count(CS_OP_META_GET, {text("k")}), 0u);
}

TEST_P(StorageConformance, BadParametersAreInvalidAndNamed) {
    // Too few, too many.
    EXPECT_FAILS(db().one(CS_OP_ACCOUNT_GET, {}), CS_E_INVALID, CS_OP_ACCOUNT_GET);
    EXPECT_FAILS(db().one(CS_OP_ACCOUNT_GET, {text("a"), text("b")}), CS_E_INVALID, CS_OP_ACCOUNT_GET);

    // A wrong type names the parameter (1-based, as the SDK's Params does) but never its value.
    seed("a1", "p1", "c1");
    Op bad = op::message("c1", 1, "a1", null());
    bad.params[1] = text("seq-secret-5d1e");  // parameter 2 (seq) must be an integer
    Outcome out = db().exec({Op{CS_OP_META_SET, {text("k"), text("v")}}, bad});
    EXPECT_FAILS(out, CS_E_INVALID, CS_OP_MESSAGE_INSERT);
    EXPECT_NE(out.message.find("parameter 2"), std::string::npos) << out.message;
    EXPECT_EQ(out.message.find("secret-5d1e"), std::string::npos) << out.message;
    EXPECT_EQ(count(CS_OP_META_GET, {text("k")}), 0u);

    // NULL where storage_ops.h does not allow it.
    Op no_kind = op::account("a9");
    no_kind.params[1] = null();
    out = db().exec({no_kind});
    EXPECT_FAILS(out, CS_E_INVALID, CS_OP_ACCOUNT_INSERT);
    EXPECT_NE(out.message.find("parameter 2"), std::string::npos) << out.message;
    EXPECT_EQ(count(CS_OP_ACCOUNT_GET, {text("a9")}), 0u);

    // A negative limit.
    EXPECT_FAILS(db().one(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(-1)}), CS_E_INVALID,
                 CS_OP_EVENT_LIST_AFTER);
}

// Many threads at once, as the engine's workers call: no error, no lost write, and every read
// batch sees one consistent snapshot (a message and its event are written together, so a read
// batch listing both always finds as many of one as of the other).
TEST_P(StorageConformance, ConcurrentWritersAndReadersLoseNothing) {
    constexpr int kThreads = 8;
    constexpr int kRounds = 25;
    db().must({op::account("a1"), op::profile("p1", "a1"), op::consultation("shared", "a1", "p1")});
    for (int t = 0; t < kThreads; ++t) db().must({op::consultation("c" + std::to_string(t), "a1", "p1")});

    std::mutex mu;
    std::vector<std::string> problems;
    auto problem = [&](std::string what) {
        std::lock_guard lock(mu);
        if (problems.size() < 20) problems.push_back(std::move(what));
    };
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go) std::this_thread::yield();
            std::string c = "c" + std::to_string(t);
            for (int k = 1; k <= kRounds; ++k) {
                Outcome w = db().exec({op::message(c, k, "a1", text(c + "-" + std::to_string(k))),
                                       op::event(c, k, blob("e"), 1000 + k),
                                       op::event("shared", t * 1000 + k, blob("s"), 1000 + k)});
                if (w.status != CS_OK) problem("write " + c + "/" + std::to_string(k) + ": " + w.message);

                Outcome r = db().exec({Op{CS_OP_MESSAGE_LIST, {text(c)}},
                                       Op{CS_OP_EVENT_LIST_AFTER, {text(c), integer(0), integer(1000)}},
                                       Op{CS_OP_CONSULTATION_GET, {text("shared")}},
                                       Op{CS_OP_EVENT_LIST_AFTER, {text("shared"), integer(0), integer(100000)}}});
                if (r.status != CS_OK) {
                    problem("read " + c + ": " + r.message);
                    continue;
                }
                if (r.rows[0].size() != static_cast<size_t>(k) || r.rows[1].size() != static_cast<size_t>(k))
                    problem("read " + c + " after write " + std::to_string(k) + ": " +
                            std::to_string(r.rows[0].size()) + " messages, " + std::to_string(r.rows[1].size()) +
                            " events");
                // Snapshot: the shared consultation's last_seq is the highest seq among its events.
                int64_t max_seq = 0;
                for (const Row &e : r.rows[3]) max_seq = std::max(max_seq, e.at(0).i);
                if (r.rows[2].size() != 1 || r.rows[2][0].at(5).i != max_seq)
                    problem("shared last_seq disagrees with its events in one read batch");
            }
        });
    }
    go = true;
    for (auto &th : threads) th.join();
    for (const std::string &p : problems) ADD_FAILURE() << p;

    for (int t = 0; t < kThreads; ++t) {
        std::string c = "c" + std::to_string(t);
        EXPECT_EQ(count(CS_OP_MESSAGE_LIST, {text(c)}), static_cast<size_t>(kRounds)) << c;
        EXPECT_EQ(db().must(CS_OP_CONSULTATION_GET, {text(c)}).at(0).at(5), integer(kRounds)) << c;
    }
    EXPECT_EQ(count(CS_OP_EVENT_LIST_AFTER, {text("shared"), integer(0), integer(1000000)}),
              static_cast<size_t>(kThreads * kRounds));
}

// ---------------------------------------------------------------------------------------------
// Sessions and refresh tokens (ABI 1.2)

TEST_P(StorageConformance, SessionInsertGetTouchAndRevoke) {
    db().must({op::account("a1"), op::account("a2"), op::session("s1", "a1", 1000, 90000),
               op::session("s2", "a1", 1100, 90000), op::session("s3", "a1", 1200, 90000),
               op::session("t1", "a2", 1300, 90000)});
    auto session = [&](const std::string &id) { return db().must(CS_OP_SESSION_GET, {text(id)}); };
    EXPECT_EQ(session("s1"), (Rows{{text("s1"), text("a1"), integer(1000), integer(1000), integer(90000), null(), null()}}));
    EXPECT_EQ(session("s-none"), Rows{});
    EXPECT_FAILS(db().exec({op::session("s1", "a2")}), CS_E_CONFLICT, CS_OP_SESSION_INSERT);
    EXPECT_FAILS(db().exec({op::session("s9", "nobody")}), CS_E_NOT_FOUND, CS_OP_SESSION_INSERT);
    EXPECT_EQ(session("s9"), Rows{});
    EXPECT_EQ(session("s1").at(0).at(1), text("a1"));  // the conflicting insert changed nothing

    db().must(CS_OP_SESSION_TOUCH, {text("s1"), integer(5000)});
    EXPECT_EQ(session("s1"), (Rows{{text("s1"), text("a1"), integer(1000), integer(5000), integer(90000), null(), null()}}));
    EXPECT_FAILS(db().one(CS_OP_SESSION_TOUCH, {text("s-none"), integer(5000)}), CS_E_NOT_FOUND, CS_OP_SESSION_TOUCH);

    db().must(CS_OP_SESSION_REVOKE, {text("s1"), integer(6000), text("logout")});
    EXPECT_EQ(session("s1"),
              (Rows{{text("s1"), text("a1"), integer(1000), integer(5000), integer(90000), integer(6000), text("logout")}}));
    // Revoking again keeps the first time and reason, and is no error.
    db().must(CS_OP_SESSION_REVOKE, {text("s1"), integer(7000), text("refresh_reuse")});
    EXPECT_EQ(session("s1").at(0).at(5), integer(6000));
    EXPECT_EQ(session("s1").at(0).at(6), text("logout"));
    EXPECT_FAILS(db().one(CS_OP_SESSION_REVOKE, {text("s-none"), integer(1), text("logout")}), CS_E_NOT_FOUND,
                 CS_OP_SESSION_REVOKE);

    // Every open session of a1 ends; s1 keeps its reason; a2's session is untouched.
    db().must(CS_OP_SESSION_REVOKE_ACCOUNT, {text("a1"), integer(8000), text("password_change")});
    EXPECT_EQ(session("s1").at(0).at(6), text("logout"));
    EXPECT_EQ(session("s1").at(0).at(5), integer(6000));
    for (std::string id : {"s2", "s3"}) {
        EXPECT_EQ(session(id).at(0).at(5), integer(8000)) << id;
        EXPECT_EQ(session(id).at(0).at(6), text("password_change")) << id;
    }
    EXPECT_EQ(session("t1").at(0).at(5), null());
    EXPECT_EQ(session("t1").at(0).at(6), null());
    // An account without open sessions (or without an account row) is no error.
    db().must(CS_OP_SESSION_REVOKE_ACCOUNT, {text("a1"), integer(9000), text("again")});
    db().must(CS_OP_SESSION_REVOKE_ACCOUNT, {text("nobody"), integer(9000), text("again")});
    EXPECT_EQ(session("s2").at(0).at(6), text("password_change"));
}

TEST_P(StorageConformance, RefreshTokenUseReportsAnEarlierUse) {
    db().must({op::account("a1"), op::session("s1", "a1"), op::refresh("h1", "s1"), op::refresh("h2", "s1"),
               op::refresh("h3", "s1")});
    EXPECT_FAILS(db().exec({op::refresh("h1", "s1")}), CS_E_CONFLICT, CS_OP_REFRESH_INSERT);
    EXPECT_FAILS(db().exec({op::refresh("h9", "s-none")}), CS_E_NOT_FOUND, CS_OP_REFRESH_INSERT);

    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h1"), integer(5000)}), (Rows{{text("s1"), null()}}));
    // A second use (a stolen token replayed) sees when it was first used, and does not move it.
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h1"), integer(6000)}), (Rows{{text("s1"), integer(5000)}}));
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h1"), integer(7000)}), (Rows{{text("s1"), integer(5000)}}));
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h-unknown"), integer(5000)}), Rows{});

    // In a batch: rows per op, and the batch sees its own writes.
    Outcome out = db().exec({op::refresh("h4", "s1"), Op{CS_OP_REFRESH_USE, {text("h4"), integer(10)}},
                             Op{CS_OP_REFRESH_USE, {text("h4"), integer(20)}}});
    ASSERT_EQ(out.status, CS_OK) << out.message;
    EXPECT_EQ(out.rows.at(0), Rows{});
    EXPECT_EQ(out.rows.at(1), (Rows{{text("s1"), null()}}));
    EXPECT_EQ(out.rows.at(2), (Rows{{text("s1"), integer(10)}}));

    // A use in a batch that fails is not kept.
    out = db().exec({Op{CS_OP_REFRESH_USE, {text("h2"), integer(30)}}, op::refresh("h1", "s1")});
    EXPECT_FAILS(out, CS_E_CONFLICT, CS_OP_REFRESH_INSERT);
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h2"), integer(40)}), (Rows{{text("s1"), null()}}));

    // Without a sink the token is still marked used.
    out = db().exec({Op{CS_OP_REFRESH_USE, {text("h3"), integer(50)}, false}});
    ASSERT_EQ(out.status, CS_OK) << out.message;
    EXPECT_EQ(out.rows.at(0), Rows{});
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h3"), integer(60)}), (Rows{{text("s1"), integer(50)}}));
}

// Two requests presenting the same refresh token at once: exactly one of them rotates it.
TEST_P(StorageConformance, ConcurrentRefreshUseHasExactlyOneWinner) {
    constexpr int kThreads = 8;
    constexpr int kTokens = 20;
    std::vector<Op> setup{op::account("a1"), op::session("s1", "a1")};
    for (int k = 0; k < kTokens; ++k) setup.push_back(op::refresh("tok-" + std::to_string(k), "s1"));
    db().must(setup);

    struct Seen {
        int winners = 0;
        int64_t winner_used_ms = -1;
        std::vector<int64_t> previous;  // what the others saw
    };
    std::mutex mu;
    std::vector<Seen> seen(kTokens);
    std::vector<std::string> problems;
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go) std::this_thread::yield();
            for (int k = 0; k < kTokens; ++k) {
                const int64_t used_ms = 100000 * (t + 1) + k;
                Outcome out = db().exec({Op{CS_OP_REFRESH_USE, {text("tok-" + std::to_string(k)), integer(used_ms)}}});
                std::lock_guard lock(mu);
                if (out.status != CS_OK || out.rows.at(0).size() != 1 || out.rows[0][0].size() != 2) {
                    problems.push_back("use of tok-" + std::to_string(k) + ": status " + std::to_string(out.status) +
                                       " " + out.message);
                    continue;
                }
                const Row &row = out.rows[0][0];
                if (row.at(0) != text("s1")) problems.push_back("wrong session for tok-" + std::to_string(k));
                if (row.at(1) == null()) {
                    ++seen[k].winners;
                    seen[k].winner_used_ms = used_ms;
                } else {
                    seen[k].previous.push_back(row.at(1).i);
                }
            }
        });
    }
    go = true;
    for (auto &th : threads) th.join();
    for (const std::string &p : problems) ADD_FAILURE() << p;
    for (int k = 0; k < kTokens; ++k) {
        EXPECT_EQ(seen[k].winners, 1) << "tok-" << k;
        EXPECT_EQ(seen[k].previous.size(), static_cast<size_t>(kThreads - 1)) << "tok-" << k;
        for (int64_t prev : seen[k].previous) EXPECT_EQ(prev, seen[k].winner_used_ms) << "tok-" << k;
    }
}

// ---------------------------------------------------------------------------------------------
// Audit log (ABI 1.2)

namespace {

// Five entries: two actors, two profiles, two actions, one entry by the system (no actor).
std::vector<op::AuditEntry> audit_entries() {
    std::vector<op::AuditEntry> e(5);
    e[0] = {1, 1000, text("a1"), "patient", text("p1"), "consultation.open", text("c1"), "ok", text("203.0.113.7"),
            R"({"via":"ws"})"};
    e[1] = {2, 2000, text("a2"), "patient", null(), "account.login", null(), "ok", text("198.51.100.1"), "{}"};
    e[2] = {3, 3000, text("a1"), "patient", text("p2"), "consultation.open", text("c2"), "denied", null(), "{}"};
    e[3] = {4, 4000, null(), "system", null(), "audit.purge", null(), "ok", null(), R"({"before_ms":0})"};
    e[4] = {5, 5000, text("a1"), "patient", text("p1"), "account.login", null(), "ok", text("203.0.113.7"), "{}"};
    return e;
}

std::vector<int64_t> seqs(const Rows &rows) {
    std::vector<int64_t> out;
    for (const Row &r : rows) out.push_back(r.at(0).i);
    return out;
}

}  // namespace

TEST_P(StorageConformance, AuditAppendLastAndListWithFilters) {
    EXPECT_EQ(db().must(CS_OP_AUDIT_LAST, {}), Rows{});
    const auto entries = audit_entries();
    db().must({op::audit(entries[0]), op::audit(entries[1])});
    EXPECT_EQ(db().must(CS_OP_AUDIT_LAST, {}), Rows{op::audit_row(entries[1])});
    db().must({op::audit(entries[2]), op::audit(entries[3]), op::audit(entries[4])});
    EXPECT_EQ(db().must(CS_OP_AUDIT_LAST, {}), Rows{op::audit_row(entries[4])});

    // after_seq, limit, from_ms, to_ms, actor_account, profile_id, action
    auto list = [&](int64_t after, int64_t limit, Val from, Val to, Val actor, Val profile, Val action) {
        return db().must(CS_OP_AUDIT_LIST, {integer(after), integer(limit), std::move(from), std::move(to),
                                            std::move(actor), std::move(profile), std::move(action)});
    };
    using S = std::vector<int64_t>;
    Rows all = list(0, 100, null(), null(), null(), null(), null());
    ASSERT_EQ(all.size(), 5u);
    for (size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(all[i], op::audit_row(entries[i]));

    // Paging by after_seq.
    EXPECT_EQ(seqs(list(0, 2, null(), null(), null(), null(), null())), (S{1, 2}));
    EXPECT_EQ(seqs(list(2, 2, null(), null(), null(), null(), null())), (S{3, 4}));
    EXPECT_EQ(seqs(list(4, 2, null(), null(), null(), null(), null())), (S{5}));
    EXPECT_EQ(seqs(list(5, 2, null(), null(), null(), null(), null())), (S{}));
    EXPECT_EQ(seqs(list(0, 0, null(), null(), null(), null(), null())), (S{}));

    // from_ms <= at_ms < to_ms.
    EXPECT_EQ(seqs(list(0, 100, integer(2000), null(), null(), null(), null())), (S{2, 3, 4, 5}));
    EXPECT_EQ(seqs(list(0, 100, null(), integer(4000), null(), null(), null())), (S{1, 2, 3}));
    EXPECT_EQ(seqs(list(0, 100, integer(2000), integer(4000), null(), null(), null())), (S{2, 3}));
    EXPECT_EQ(seqs(list(0, 100, integer(2001), integer(2999), null(), null(), null())), (S{}));

    // Each filter, then together; the system entry has no actor and matches no actor filter.
    EXPECT_EQ(seqs(list(0, 100, null(), null(), text("a1"), null(), null())), (S{1, 3, 5}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), text("a2"), null(), null())), (S{2}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), text("nobody"), null(), null())), (S{}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), null(), text("p1"), null())), (S{1, 5}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), null(), null(), text("consultation.open"))), (S{1, 3}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), null(), null(), text("audit.purge"))), (S{4}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), text("a1"), null(), text("account.login"))), (S{5}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), text("a1"), text("p2"), null())), (S{3}));
    EXPECT_EQ(seqs(list(0, 100, null(), null(), text("a2"), text("p1"), null())), (S{}));
    EXPECT_EQ(seqs(list(0, 100, integer(2000), integer(6000), text("a1"), text("p1"), text("account.login"))), (S{5}));
    // Paging through a filter.
    EXPECT_EQ(seqs(list(0, 2, null(), null(), text("a1"), null(), null())), (S{1, 3}));
    EXPECT_EQ(seqs(list(3, 2, null(), null(), text("a1"), null(), null())), (S{5}));
    EXPECT_EQ(seqs(list(1, 100, integer(1000), null(), null(), text("p1"), null())), (S{5}));

    // seq is unique: a second entry with it is refused and the first is kept.
    op::AuditEntry dup = entries[2];
    dup.outcome = "tampered";
    EXPECT_FAILS(db().exec({op::audit(dup)}), CS_E_CONFLICT, CS_OP_AUDIT_APPEND);
    EXPECT_EQ(list(2, 1, null(), null(), null(), null(), null()), Rows{op::audit_row(entries[2])});
}

TEST_P(StorageConformance, AuditPurgeDeletesOlderEntriesOnly) {
    const auto entries = audit_entries();
    std::vector<Op> batch;
    for (const auto &e : entries) batch.push_back(op::audit(e));
    db().must(batch);
    auto all = [&] {
        return seqs(db().must(CS_OP_AUDIT_LIST, {integer(0), integer(100), null(), null(), null(), null(), null()}));
    };
    using S = std::vector<int64_t>;
    db().must(CS_OP_AUDIT_PURGE, {integer(3000)});  // at_ms < 3000
    EXPECT_EQ(all(), (S{3, 4, 5}));
    db().must(CS_OP_AUDIT_PURGE, {integer(3000)});  // nothing left to purge is no error
    EXPECT_EQ(all(), (S{3, 4, 5}));
    EXPECT_EQ(db().must(CS_OP_AUDIT_LAST, {}), Rows{op::audit_row(entries[4])});
    db().must(CS_OP_AUDIT_PURGE, {integer(10000)});
    EXPECT_EQ(all(), (S{}));
    EXPECT_EQ(db().must(CS_OP_AUDIT_LAST, {}), Rows{});
}

TEST_P(StorageConformance, AccountDeleteTakesSessionsAndRefreshTokensButKeepsTheAudit) {
    seed("a1", "p1", "c1");
    seed("a2", "p2", "c2");
    const auto entries = audit_entries();  // a1 acts on p1 and p2 (ids only), a2 on nothing
    std::vector<Op> batch{op::session("s1", "a1"), op::session("s2", "a1"), op::session("t1", "a2"),
                          op::refresh("h1", "s1"), op::refresh("h2", "s2"), op::refresh("g1", "t1")};
    for (const auto &e : entries) batch.push_back(op::audit(e));
    db().must(batch);

    db().must(CS_OP_ACCOUNT_DELETE, {text("a1")});
    EXPECT_EQ(count(CS_OP_SESSION_GET, {text("s1")}), 0u);
    EXPECT_EQ(count(CS_OP_SESSION_GET, {text("s2")}), 0u);
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h1"), integer(9000)}), Rows{});
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h2"), integer(9000)}), Rows{});
    // The other account's are untouched.
    EXPECT_EQ(count(CS_OP_SESSION_GET, {text("t1")}), 1u);
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("g1"), integer(9000)}), (Rows{{text("t1"), null()}}));
    // Every audit entry stays, the erased account's included, as it was.
    Rows audit = db().must(CS_OP_AUDIT_LIST, {integer(0), integer(100), null(), null(), null(), null(), null()});
    ASSERT_EQ(audit.size(), entries.size());
    for (size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(audit[i], op::audit_row(entries[i]));
    EXPECT_EQ(count(CS_OP_AUDIT_LIST, {integer(0), integer(100), null(), null(), text("a1"), null(), null()}), 3u);

    // The ids are free again, and an old refresh token does not come back with them.
    db().must({op::account("a1"), op::session("s1", "a1")});
    EXPECT_EQ(db().must(CS_OP_REFRESH_USE, {text("h1"), integer(9500)}), Rows{});
    EXPECT_EQ(db().must(CS_OP_SESSION_GET, {text("s1")}).at(0).at(5), null());
}

// ---------------------------------------------------------------------------------------------
// Re-encryption: SEALED_SCAN and SEALED_REWRITE (ABI 1.2)

namespace {

struct Sealed {
    std::string id;
    Val seq;
    Val sealed;
    bool operator<(const Sealed &o) const {
        return std::tie(id, seq.i, sealed.s) < std::tie(o.id, o.seq.i, o.sealed.s);
    }
    bool operator==(const Sealed &) const = default;
};

void PrintTo(const Sealed &s, std::ostream *os) {
    *os << "{" << s.id << ", ";
    consilium::test::storage::PrintTo(s.seq, os);
    *os << ", ";
    consilium::test::storage::PrintTo(s.sealed, os);
    *os << "}";
}

}  // namespace

class SealedFixture {
public:
    // Accounts (one without an e-mail), profiles, messages and events of two consultations,
    // each with its own sealed bytes, some with NULs or empty.
    static std::vector<Op> setup() {
        return {op::account("a1", "patient", text("i1"), blob(std::string("ea\0a1", 5))),
                op::account("a2", "guest"),
                op::account("a3", "patient", text("i3"), blob("")),
                op::profile("p1", "a1", 1000, blob("dp1")),
                op::profile("p2", "a3", 1000, blob(std::string("d\0p2", 4))),
                op::profile("p3", "a1", 1000, blob("dp3")),
                op::consultation("c1", "a1", "p1"),
                op::consultation("c2", "a3", "p2"),
                op::message("c1", 1, "a1", null(), blob("m11")),
                op::message("c2", 1, "a3", null(), blob("m21")),
                op::message("c1", 2, "a1", null(), blob(std::string("m\0" "12", 4))),
                op::event("c2", 2, blob("e22")),
                op::event("c1", 1, blob("e11")),
                op::event("c2", 1, blob("")),
                op::event("c1", 2, blob(std::string("e1\0002", 4)))};
    }
    static std::vector<Sealed> expected(const std::string &kind) {
        std::vector<Sealed> out;
        if (kind == "account")
            out = {{"a1", null(), blob(std::string("ea\0a1", 5))}, {"a3", null(), blob("")}};
        else if (kind == "profile")
            out = {{"p1", null(), blob("dp1")}, {"p2", null(), blob(std::string("d\0p2", 4))}, {"p3", null(), blob("dp3")}};
        else if (kind == "message")
            out = {{"c1", integer(1), blob("m11")}, {"c1", integer(2), blob(std::string("m\0" "12", 4))},
                   {"c2", integer(1), blob("m21")}};
        else
            out = {{"c1", integer(1), blob("e11")}, {"c1", integer(2), blob(std::string("e1\0002", 4))},
                   {"c2", integer(1), blob("")}, {"c2", integer(2), blob("e22")}};
        std::sort(out.begin(), out.end());
        return out;
    }
};

TEST_P(StorageConformance, SealedScanPagesThroughEveryKind) {
    db().must(SealedFixture::setup());
    for (std::string kind : {"account", "profile", "message", "event"}) {
        for (int64_t page : {1, 2, 3, 100}) {
            std::vector<Sealed> found;
            int64_t cursor = 0;
            for (int round = 0; round < 20; ++round) {
                Rows rows = db().must(CS_OP_SEALED_SCAN, {text(kind), integer(cursor), integer(page)});
                ASSERT_LE(rows.size(), static_cast<size_t>(page)) << kind;
                if (rows.empty()) break;
                for (const Row &r : rows) {
                    ASSERT_EQ(r.size(), 4u) << kind;
                    ASSERT_EQ(r.at(0).type, static_cast<uint32_t>(CS_VAL_INT)) << kind;
                    EXPECT_GT(r.at(0).i, cursor) << kind << ": the cursor only goes up";
                    cursor = r.at(0).i;
                    EXPECT_EQ(r.at(1).type, static_cast<uint32_t>(CS_VAL_TEXT)) << kind;
                    EXPECT_EQ(r.at(3).type, static_cast<uint32_t>(CS_VAL_BLOB)) << kind;
                    found.push_back({r.at(1).s, r.at(2), r.at(3)});
                }
            }
            std::sort(found.begin(), found.end());
            EXPECT_EQ(found, SealedFixture::expected(kind)) << kind << ", pages of " << page;
            EXPECT_EQ(count(CS_OP_SEALED_SCAN, {text(kind), integer(cursor), integer(100)}), 0u) << kind;
        }
        EXPECT_EQ(count(CS_OP_SEALED_SCAN, {text(kind), integer(0), integer(0)}), 0u) << kind;
    }
}

TEST_P(StorageConformance, SealedRewriteIsCompareAndSwap) {
    db().must(SealedFixture::setup());
    auto rewrite = [&](const std::string &kind, const std::string &id, Val seq, Val old_sealed, Val new_sealed) {
        db().must(CS_OP_SEALED_REWRITE, {text(kind), text(id), std::move(seq), std::move(old_sealed), std::move(new_sealed)});
    };
    auto scan = [&](const std::string &kind) {
        return db().must(CS_OP_SEALED_SCAN, {text(kind), integer(0), integer(100)});
    };
    const Rows accounts_before = scan("account");

    // Matching old bytes: replaced. Stale old bytes (someone rewrote it first): unchanged.
    const std::string ea1("ea\0a1", 5);
    rewrite("account", "a1", null(), blob(ea1), blob(std::string("new\0a1", 6)));
    rewrite("account", "a1", null(), blob(ea1), blob("stale-write"));
    Row a1 = db().must(CS_OP_ACCOUNT_GET, {text("a1")}).at(0);
    EXPECT_EQ(a1.at(4), blob(std::string("new\0a1", 6)));
    EXPECT_EQ(a1.at(3), text("i1"));  // nothing else changes
    // The empty value is a value; old_sealed may come as TEXT.
    rewrite("account", "a3", null(), text(""), blob("new-a3"));
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("a3")}).at(0).at(4), blob("new-a3"));
    // a2 has no e-mail: nothing to replace.
    rewrite("account", "a2", null(), blob(""), blob("x"));
    EXPECT_EQ(db().must(CS_OP_ACCOUNT_GET, {text("a2")}).at(0).at(4), null());
    // The cursor of a rewritten value does not move.
    Rows accounts_after = scan("account");
    ASSERT_EQ(accounts_after.size(), accounts_before.size());
    for (size_t i = 0; i < accounts_after.size(); ++i) EXPECT_EQ(accounts_after[i].at(0), accounts_before[i].at(0));

    rewrite("profile", "p2", null(), blob(std::string("d\0p2", 4)), blob("new-p2"));
    rewrite("profile", "p3", null(), blob("not-what-is-stored"), blob("new-p3"));
    EXPECT_EQ(db().must(CS_OP_PROFILE_GET, {text("p2")}).at(0).at(3), blob("new-p2"));
    EXPECT_EQ(db().must(CS_OP_PROFILE_GET, {text("p3")}).at(0).at(3), blob("dp3"));
    EXPECT_EQ(db().must(CS_OP_PROFILE_GET, {text("p1")}).at(0).at(3), blob("dp1"));

    rewrite("message", "c1", integer(2), blob(std::string("m\0" "12", 4)), blob("new-m12"));
    rewrite("message", "c1", integer(1), blob("m21"), blob("wrong-row"));  // another message's bytes
    rewrite("message", "c1", integer(9), blob("m11"), blob("no-such-seq"));
    Rows messages = db().must(CS_OP_MESSAGE_LIST, {text("c1")});
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].at(5), blob("m11"));
    EXPECT_EQ(messages[1].at(5), blob("new-m12"));
    EXPECT_EQ(db().must(CS_OP_MESSAGE_LIST, {text("c2")}).at(0).at(5), blob("m21"));

    const Row c2_before = db().must(CS_OP_CONSULTATION_GET, {text("c2")}).at(0);
    rewrite("event", "c2", integer(1), blob(""), blob("new-e21"));
    rewrite("event", "c2", integer(2), blob("e11"), blob("wrong-row"));
    rewrite("event", "c-none", integer(1), blob("e11"), blob("no-such-consultation"));
    Rows events = db().must(CS_OP_EVENT_LIST_AFTER, {text("c2"), integer(0), integer(10)});
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].at(2), blob("new-e21"));
    EXPECT_EQ(events[1].at(2), blob("e22"));
    // A rewrite is not a new event: the consultation does not move.
    EXPECT_EQ(db().must(CS_OP_CONSULTATION_GET, {text("c2")}).at(0), c2_before);
    EXPECT_EQ(db().must(CS_OP_EVENT_LIST_AFTER, {text("c1"), integer(0), integer(10)}).at(0).at(2), blob("e11"));
}

// Every ABI 1.2 op checks its parameters: count, types, NULLs, negative limits and SEALED_*
// kinds; the message names the op and the position and never repeats a value.
TEST_P(StorageConformance, NewOpsCheckTheirParameters) {
    struct Case {
        uint32_t op;
        std::vector<Val> params;
        int position;  // the parameter named in the message; 0: the count is wrong
    };
    const Val s = text("secret-3f9a");
    const Val n = integer(1);
    const std::vector<Case> cases{
        {CS_OP_SESSION_INSERT, {}, 0},
        {CS_OP_SESSION_INSERT, {s, s, s, n, n}, 3},
        {CS_OP_SESSION_GET, {n}, 1},
        {CS_OP_SESSION_GET, {s, s}, 0},
        {CS_OP_SESSION_TOUCH, {s, null()}, 2},
        {CS_OP_SESSION_REVOKE, {s, n, null()}, 3},
        {CS_OP_SESSION_REVOKE_ACCOUNT, {s, n}, 0},
        {CS_OP_SESSION_REVOKE_ACCOUNT, {null(), n, s}, 1},
        {CS_OP_REFRESH_INSERT, {s, s, s}, 3},
        {CS_OP_REFRESH_USE, {s}, 0},
        {CS_OP_REFRESH_USE, {s, s}, 2},
        {CS_OP_AUDIT_APPEND, {n, n, s, s, s, s, s, s, s, s, s}, 0},
        {CS_OP_AUDIT_APPEND, {n, n, s, null(), s, s, s, s, s, s, s, s}, 4},
        {CS_OP_AUDIT_APPEND, {n, n, s, s, s, s, s, s, s, s, null(), s}, 11},
        {CS_OP_AUDIT_APPEND, {s, n, s, s, s, s, s, s, s, s, s, s}, 1},
        {CS_OP_AUDIT_LAST, {n}, 0},
        {CS_OP_AUDIT_LIST, {n, integer(-1), null(), null(), null(), null(), null()}, 2},
        {CS_OP_AUDIT_LIST, {n, n, s, null(), null(), null(), null()}, 3},
        {CS_OP_AUDIT_LIST, {n, n, null(), null(), n, null(), null()}, 5},
        {CS_OP_AUDIT_LIST, {n, n, null(), null(), null(), null()}, 0},
        {CS_OP_AUDIT_PURGE, {s}, 1},
        {CS_OP_SEALED_SCAN, {text("event"), n, integer(-1)}, 3},
        {CS_OP_SEALED_SCAN, {n, n, n}, 1},
        {CS_OP_SEALED_SCAN, {s, n, n}, 1},  // no such kind
        {CS_OP_SEALED_SCAN, {text("event"), s, n}, 2},
        {CS_OP_SEALED_REWRITE, {text("message"), s, null(), s, s}, 3},  // messages need their seq
        {CS_OP_SEALED_REWRITE, {text("account"), s, n, s, s}, 3},       // accounts have none
        {CS_OP_SEALED_REWRITE, {text("profile"), s, null(), s, null()}, 5},
        {CS_OP_SEALED_REWRITE, {s, s, null(), s, s}, 1},
        {CS_OP_SEALED_REWRITE, {text("event"), s, n, s}, 0},
    };
    for (const Case &c : cases) {
        // After a write in the same batch: nothing of the batch stays.
        Outcome out = db().exec({Op{CS_OP_META_SET, {text("k"), text("v")}}, Op{c.op, c.params}});
        SCOPED_TRACE(op_name(c.op) + " with " + std::to_string(c.params.size()) + " parameters");
        EXPECT_FAILS(out, CS_E_INVALID, c.op);
        if (c.position > 0) {
            EXPECT_NE(out.message.find("parameter " + std::to_string(c.position)), std::string::npos) << out.message;
        }
        EXPECT_EQ(out.message.find("secret"), std::string::npos) << out.message;
        EXPECT_EQ(count(CS_OP_META_GET, {text("k")}), 0u);
    }
}

// A test binary may link the suite without instantiating it.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StorageConformance);

}  // namespace consilium::test::storage
