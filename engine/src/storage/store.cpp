#include "storage/store.hpp"

#include "util/log.hpp"

namespace consilium {

namespace {

cs_value to_cs(const Value &v) {
    cs_value out{};
    out.type = v.type;
    out.i = v.i;
    out.s = cs_str{v.s.data(), v.s.size()};
    return out;
}

Value from_cs(const cs_value &v) {
    Value out;
    out.type = static_cast<cs_value_type>(v.type);
    out.i = v.i;
    if (v.type == CS_VAL_TEXT || v.type == CS_VAL_BLOB) out.s.assign(v.s.data ? v.s.data : "", v.s.size);
    return out;
}

int collect_row(void *ctx, const cs_value *cols, size_t n) {
    auto *rows = static_cast<std::vector<Row> *>(ctx);
    Row r;
    r.reserve(n);
    for (size_t i = 0; i < n; ++i) r.push_back(from_cs(cols[i]));
    rows->push_back(std::move(r));
    return 0;
}

void need_columns(const Row &r, size_t n, const char *what) {
    if (r.size() < n)
        throw StorageError(CS_E_INTERNAL, std::string("storage returned ") + std::to_string(r.size()) +
                                              " columns for " + what + ", expected " + std::to_string(n));
}

AccountRecord account_from(const Row &r) {
    need_columns(r, 8, "an account");
    return {r[0].s, r[1].s, r[2].s, r[3].opt_text(), r[4].opt_text(), r[5].opt_text(), r[6].i, r[7].opt_int()};
}
ProfileRecord profile_from(const Row &r) {
    need_columns(r, 5, "a profile");
    return {r[0].s, r[1].s, r[2].s, r[3].s, r[4].i};
}
ConsultationRecord consultation_from(const Row &r) {
    need_columns(r, 8, "a consultation");
    return {r[0].s, r[1].s, r[2].s, r[3].i, r[4].i, r[5].i, r[6].opt_text(), r[7].i};
}
MessageRecord message_from(const Row &r) {
    need_columns(r, 8, "a message");
    return {r[0].s, r[1].i, r[2].opt_text(), r[3].s, r[4].opt_text(), r[5].s, r[6].s, r[7].i};
}
EventRecord event_from(const Row &r) {
    need_columns(r, 4, "an event");
    return {r[0].i, r[1].s, r[2].s, r[3].i};
}

SessionRecord session_from(const Row &r) {
    need_columns(r, 7, "a session");
    return {r[0].s, r[1].s, r[2].i, r[3].i, r[4].i, r[5].opt_int(), r[6].opt_text()};
}
AuditRecord audit_from(const Row &r) {
    need_columns(r, 12, "an audit entry");
    return {r[0].i, r[1].i, r[2].opt_text(), r[3].s, r[4].opt_text(), r[5].s,
            r[6].opt_text(), r[7].s, r[8].opt_text(), r[9].s, r[10].s, r[11].s};
}

}  // namespace

Store::Store(const cs_storage_vtable *vtable, void *instance) : vtable_(vtable), instance_(instance) {
    writer_ = std::thread([this] { writer_loop(); });
}

Store::~Store() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
}

std::vector<Row> Store::query(uint32_t op, std::vector<Value> params) const {
    std::vector<cs_value> cs;
    cs.reserve(params.size());
    for (const auto &p : params) cs.push_back(to_cs(p));
    std::vector<Row> rows;
    cs_row_sink sink{&rows, &collect_row};
    cs_storage_op o{op, cs.data(), cs.size(), &sink};
    cs_error err{};
    cs_status st = vtable_->exec(instance_, &o, 1, &err);
    if (st != CS_OK) throw StorageError(st, err.message[0] ? err.message : "storage read failed");
    return rows;
}

void Store::exec(const std::vector<const Batch *> &batches) const {
    std::vector<std::vector<cs_value>> params;
    std::vector<cs_storage_op> ops;
    size_t total = 0;
    for (const Batch *b : batches) total += b->ops_.size();
    params.reserve(total);
    ops.reserve(total);
    for (const Batch *b : batches) {
        for (const auto &op : b->ops_) {
            std::vector<cs_value> cs;
            cs.reserve(op.params.size());
            for (const auto &p : op.params) cs.push_back(to_cs(p));
            params.push_back(std::move(cs));
            ops.push_back(cs_storage_op{op.op, params.back().data(), params.back().size(), nullptr});
        }
    }
    if (ops.empty()) return;
    cs_error err{};
    cs_status st = vtable_->exec(instance_, ops.data(), ops.size(), &err);
    if (st != CS_OK) throw StorageError(st, err.message[0] ? err.message : "storage write failed");
}

void Store::write(const Batch &batch) const { exec({&batch}); }

void Store::write_async(Batch batch, Done done) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back({std::move(batch), std::move(done)});
    }
    cv_.notify_one();
}

void Store::flush() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void Store::writer_loop() {
    for (;;) {
        std::vector<Pending> work;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, nothing left
            // Everything queued while the previous commit ran goes into this one transaction.
            while (!queue_.empty() && work.size() < 512) {
                work.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
            busy_ = true;
        }
        std::vector<const Batch *> all;
        for (const auto &p : work) all.push_back(&p.batch);
        bool together = true;
        try {
            exec(all);
        } catch (const StorageError &) {
            together = false;
        }
        if (together) {
            for (auto &p : work)
                if (p.done) p.done(std::nullopt);
        } else {
            // One batch failed (a conflict, say): run each alone so the others still land.
            for (auto &p : work) {
                std::optional<StorageError> result;
                try {
                    exec({&p.batch});
                } catch (const StorageError &e) {
                    result = e;
                }
                if (p.done) p.done(result);
            }
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            busy_ = false;
        }
        idle_cv_.notify_all();
    }
}

std::optional<AccountRecord> Store::account(const std::string &id) const {
    auto rows = query(CS_OP_ACCOUNT_GET, {Value::text(id)});
    if (rows.empty()) return std::nullopt;
    return account_from(rows[0]);
}

std::optional<AccountRecord> Store::account_by_email(const std::string &email_index) const {
    auto rows = query(CS_OP_ACCOUNT_GET_BY_EMAIL, {Value::text(email_index)});
    if (rows.empty()) return std::nullopt;
    return account_from(rows[0]);
}

std::optional<ProfileRecord> Store::profile(const std::string &id) const {
    auto rows = query(CS_OP_PROFILE_GET, {Value::text(id)});
    if (rows.empty()) return std::nullopt;
    return profile_from(rows[0]);
}

std::vector<ProfileRecord> Store::profiles(const std::string &account_id) const {
    std::vector<ProfileRecord> out;
    for (const auto &r : query(CS_OP_PROFILE_LIST, {Value::text(account_id)})) out.push_back(profile_from(r));
    return out;
}

std::optional<ConsultationRecord> Store::consultation(const std::string &id) const {
    auto rows = query(CS_OP_CONSULTATION_GET, {Value::text(id)});
    if (rows.empty()) return std::nullopt;
    return consultation_from(rows[0]);
}

std::vector<ConsultationRecord> Store::consultations(const std::string &account_id,
                                                     const std::optional<std::string> &profile_id,
                                                     int64_t limit) const {
    std::vector<ConsultationRecord> out;
    for (const auto &r : query(CS_OP_CONSULTATION_LIST,
                               {Value::text(account_id), Value::text_or_null(profile_id), Value::integer(limit)}))
        out.push_back(consultation_from(r));
    return out;
}

std::vector<MessageRecord> Store::messages(const std::string &consultation_id) const {
    std::vector<MessageRecord> out;
    for (const auto &r : query(CS_OP_MESSAGE_LIST, {Value::text(consultation_id)})) out.push_back(message_from(r));
    return out;
}

std::optional<std::pair<std::string, int64_t>> Store::message_by_client_id(const std::string &account_id,
                                                                          const std::string &client_id) const {
    auto rows = query(CS_OP_MESSAGE_FIND_BY_CLIENT_ID, {Value::text(account_id), Value::text(client_id)});
    if (rows.empty()) return std::nullopt;
    need_columns(rows[0], 2, "a message lookup");
    return std::make_pair(rows[0][0].s, rows[0][1].i);
}

std::vector<EventRecord> Store::events_after(const std::string &consultation_id, int64_t after_seq,
                                             int64_t limit) const {
    std::vector<EventRecord> out;
    for (const auto &r : query(CS_OP_EVENT_LIST_AFTER,
                               {Value::text(consultation_id), Value::integer(after_seq), Value::integer(limit)}))
        out.push_back(event_from(r));
    return out;
}

std::optional<std::string> Store::meta(const std::string &key) const {
    auto rows = query(CS_OP_META_GET, {Value::text(key)});
    if (rows.empty() || rows[0].empty()) return std::nullopt;
    return rows[0][0].s;
}

std::vector<std::string> Store::expired_guests(int64_t now_ms, int64_t limit) const {
    std::vector<std::string> out;
    for (const auto &r : query(CS_OP_ACCOUNT_LIST_EXPIRED, {Value::integer(now_ms), Value::integer(limit)}))
        if (!r.empty()) out.push_back(r[0].s);
    return out;
}

std::optional<SessionRecord> Store::session(const std::string &id) const {
    auto rows = query(CS_OP_SESSION_GET, {Value::text(id)});
    if (rows.empty()) return std::nullopt;
    return session_from(rows[0]);
}

std::optional<std::pair<std::string, std::optional<int64_t>>> Store::refresh_use(const std::string &token_hash,
                                                                                 int64_t used_ms) const {
    auto rows = query(CS_OP_REFRESH_USE, {Value::text(token_hash), Value::integer(used_ms)});
    if (rows.empty()) return std::nullopt;
    need_columns(rows[0], 2, "a refresh token");
    return std::make_pair(rows[0][0].s, rows[0][1].opt_int());
}

std::optional<AuditRecord> Store::audit_last() const {
    auto rows = query(CS_OP_AUDIT_LAST, {});
    if (rows.empty()) return std::nullopt;
    return audit_from(rows[0]);
}

std::vector<AuditRecord> Store::audit_list(const AuditFilter &f) const {
    std::vector<AuditRecord> out;
    for (const auto &r : query(CS_OP_AUDIT_LIST, {Value::integer(f.after_seq), Value::integer(f.limit),
                                                  Value::int_or_null(f.from_ms), Value::int_or_null(f.to_ms),
                                                  Value::text_or_null(f.actor_account), Value::text_or_null(f.profile_id),
                                                  Value::text_or_null(f.action)}))
        out.push_back(audit_from(r));
    return out;
}

std::vector<SealedItem> Store::sealed_scan(const std::string &kind, int64_t after_cursor, int64_t limit) const {
    std::vector<SealedItem> out;
    for (const auto &r : query(CS_OP_SEALED_SCAN, {Value::text(kind), Value::integer(after_cursor), Value::integer(limit)})) {
        need_columns(r, 4, "a sealed value");
        out.push_back({r[0].i, r[1].s, r[2].opt_int(), r[3].s});
    }
    return out;
}

void Store::account_update(Batch &b, const AccountRecord &a) {
    b.add(CS_OP_ACCOUNT_UPDATE,
          {Value::text(a.id), Value::text(a.kind), Value::text(a.role), Value::text_or_null(a.email_index),
           a.email_sealed ? Value::blob(*a.email_sealed) : Value::null(), Value::text_or_null(a.password_hash),
           Value::int_or_null(a.expires_ms)});
}

void Store::account_delete(Batch &b, const std::string &id) { b.add(CS_OP_ACCOUNT_DELETE, {Value::text(id)}); }

void Store::profile_update(Batch &b, const ProfileRecord &p) {
    b.add(CS_OP_PROFILE_UPDATE, {Value::text(p.id), Value::text(p.relation), Value::blob(p.details_sealed)});
}

void Store::profile_delete(Batch &b, const std::string &id) { b.add(CS_OP_PROFILE_DELETE, {Value::text(id)}); }

void Store::session_insert(Batch &b, const SessionRecord &s) {
    b.add(CS_OP_SESSION_INSERT, {Value::text(s.id), Value::text(s.account_id), Value::integer(s.created_ms),
                                 Value::integer(s.last_used_ms), Value::integer(s.expires_ms)});
}

void Store::session_touch(Batch &b, const std::string &id, int64_t last_used_ms) {
    b.add(CS_OP_SESSION_TOUCH, {Value::text(id), Value::integer(last_used_ms)});
}

void Store::session_revoke(Batch &b, const std::string &id, int64_t revoked_ms, const std::string &reason) {
    b.add(CS_OP_SESSION_REVOKE, {Value::text(id), Value::integer(revoked_ms), Value::text(reason)});
}

void Store::session_revoke_account(Batch &b, const std::string &account_id, int64_t revoked_ms,
                                   const std::string &reason) {
    b.add(CS_OP_SESSION_REVOKE_ACCOUNT, {Value::text(account_id), Value::integer(revoked_ms), Value::text(reason)});
}

void Store::refresh_insert(Batch &b, const std::string &token_hash, const std::string &session_id, int64_t created_ms) {
    b.add(CS_OP_REFRESH_INSERT, {Value::text(token_hash), Value::text(session_id), Value::integer(created_ms)});
}

void Store::audit_append(Batch &b, const AuditRecord &a) {
    b.add(CS_OP_AUDIT_APPEND,
          {Value::integer(a.seq), Value::integer(a.at_ms), Value::text_or_null(a.actor_account), Value::text(a.actor_role),
           Value::text_or_null(a.profile_id), Value::text(a.action), Value::text_or_null(a.target), Value::text(a.outcome),
           Value::text_or_null(a.peer), Value::text(a.detail), Value::text(a.prev_hash), Value::text(a.hash)});
}

void Store::audit_purge(Batch &b, int64_t before_ms) { b.add(CS_OP_AUDIT_PURGE, {Value::integer(before_ms)}); }

void Store::sealed_rewrite(Batch &b, const std::string &kind, const SealedItem &item, const std::string &new_sealed) {
    b.add(CS_OP_SEALED_REWRITE, {Value::text(kind), Value::text(item.id), Value::int_or_null(item.seq),
                                 Value::blob(item.sealed), Value::blob(new_sealed)});
}

void Store::account_insert(Batch &b, const AccountRecord &a) {
    b.add(CS_OP_ACCOUNT_INSERT,
          {Value::text(a.id), Value::text(a.kind), Value::text(a.role), Value::text_or_null(a.email_index),
           a.email_sealed ? Value::blob(*a.email_sealed) : Value::null(), Value::text_or_null(a.password_hash),
           Value::integer(a.created_ms), Value::int_or_null(a.expires_ms)});
}

void Store::profile_insert(Batch &b, const ProfileRecord &p) {
    b.add(CS_OP_PROFILE_INSERT, {Value::text(p.id), Value::text(p.account_id), Value::text(p.relation),
                                 Value::blob(p.details_sealed), Value::integer(p.created_ms)});
}

void Store::consultation_insert(Batch &b, const ConsultationRecord &c) {
    b.add(CS_OP_CONSULTATION_INSERT, {Value::text(c.id), Value::text(c.account_id), Value::text(c.profile_id),
                                      Value::integer(c.created_ms)});
}

void Store::consultation_set_specialist(Batch &b, const std::string &id, const std::string &specialist,
                                        int64_t updated_ms) {
    b.add(CS_OP_CONSULTATION_SET_SPECIALIST, {Value::text(id), Value::text(specialist), Value::integer(updated_ms)});
}

void Store::consultation_reserve_seq(Batch &b, const std::string &id, int64_t reserved) {
    b.add(CS_OP_CONSULTATION_RESERVE_SEQ, {Value::text(id), Value::integer(reserved)});
}

void Store::message_insert(Batch &b, const MessageRecord &m, const std::string &account_id) {
    b.add(CS_OP_MESSAGE_INSERT,
          {Value::text(m.consultation_id), Value::integer(m.seq), Value::text(account_id),
           Value::text_or_null(m.client_id), Value::text(m.role), Value::text_or_null(m.specialist),
           Value::blob(m.body_sealed), Value::text(m.meta), Value::integer(m.created_ms)});
}

void Store::event_insert(Batch &b, const std::string &consultation_id, const EventRecord &e) {
    b.add(CS_OP_EVENT_INSERT, {Value::text(consultation_id), Value::integer(e.seq), Value::text(e.type),
                               Value::blob(e.body_sealed), Value::integer(e.created_ms)});
}

void Store::meta_set(Batch &b, const std::string &key, const std::string &value) {
    b.add(CS_OP_META_SET, {Value::text(key), Value::text(value)});
}

}  // namespace consilium
