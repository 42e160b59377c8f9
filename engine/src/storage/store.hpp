// Typed access to the storage plugin (consilium/storage_ops.h). Reads run on the caller's
// thread; writes either run now (write) or go through one writer thread that commits many
// batches in one transaction (write_async, group commit), so that durably storing a patient
// message costs one fsync shared by everyone writing at that moment.
#pragma once

#include <consilium/abi.h>
#include <consilium/storage_ops.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace consilium {

class StorageError : public std::runtime_error {
public:
    StorageError(cs_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    cs_status status() const { return status_; }
    bool conflict() const { return status_ == CS_E_CONFLICT; }

private:
    cs_status status_;
};

struct Value {
    cs_value_type type = CS_VAL_NULL;
    int64_t i = 0;
    std::string s;

    static Value null() { return {}; }
    static Value integer(int64_t v) { return {CS_VAL_INT, v, {}}; }
    static Value text(std::string v) { return {CS_VAL_TEXT, 0, std::move(v)}; }
    static Value blob(std::string v) { return {CS_VAL_BLOB, 0, std::move(v)}; }
    static Value text_or_null(const std::optional<std::string> &v) { return v ? text(*v) : null(); }
    static Value int_or_null(const std::optional<int64_t> &v) { return v ? integer(*v) : null(); }

    bool is_null() const { return type == CS_VAL_NULL; }
    std::optional<std::string> opt_text() const { return is_null() ? std::nullopt : std::optional(s); }
    std::optional<int64_t> opt_int() const { return is_null() ? std::nullopt : std::optional(i); }
};
using Row = std::vector<Value>;

// A list of write ops executed as one transaction.
class Batch {
public:
    Batch &add(uint32_t op, std::vector<Value> params) {
        ops_.push_back({op, std::move(params)});
        return *this;
    }
    bool empty() const { return ops_.empty(); }
    size_t size() const { return ops_.size(); }
    void append(const Batch &other) { ops_.insert(ops_.end(), other.ops_.begin(), other.ops_.end()); }

private:
    friend class Store;
    struct Op {
        uint32_t op;
        std::vector<Value> params;
    };
    std::vector<Op> ops_;
};

struct AccountRecord {
    std::string id;
    std::string kind;  // guest | patient
    std::string role;  // guest | patient | author | operator
    std::optional<std::string> email_index;
    std::optional<std::string> email_sealed;
    std::optional<std::string> password_hash;
    int64_t created_ms = 0;
    std::optional<int64_t> expires_ms;
};

struct ProfileRecord {
    std::string id;
    std::string account_id;
    std::string relation;
    std::string details_sealed;
    int64_t created_ms = 0;
};

struct ConsultationRecord {
    std::string id;
    std::string account_id;
    std::string profile_id;
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
    int64_t last_seq = 0;
    std::optional<std::string> specialist;
    int64_t seq_reserved = 0;
};

struct MessageRecord {
    std::string consultation_id;
    int64_t seq = 0;
    std::optional<std::string> client_id;
    std::string role;  // patient | specialist
    std::optional<std::string> specialist;
    std::string body_sealed;
    std::string meta;  // JSON, no health data
    int64_t created_ms = 0;
};

struct EventRecord {
    int64_t seq = 0;
    std::string type;
    std::string body_sealed;
    int64_t created_ms = 0;
};

struct SessionRecord {
    std::string id;
    std::string account_id;
    int64_t created_ms = 0;
    int64_t last_used_ms = 0;
    int64_t expires_ms = 0;
    std::optional<int64_t> revoked_ms;
    std::optional<std::string> revoke_reason;
};

struct AuditRecord {
    int64_t seq = 0;
    int64_t at_ms = 0;
    std::optional<std::string> actor_account;
    std::string actor_role;
    std::optional<std::string> profile_id;
    std::string action;
    std::optional<std::string> target;
    std::string outcome;
    std::optional<std::string> peer;
    std::string detail = "{}";  // JSON, no health data
    std::string prev_hash;
    std::string hash;
};

struct AuditFilter {
    int64_t after_seq = 0;
    int64_t limit = 100;
    std::optional<int64_t> from_ms, to_ms;
    std::optional<std::string> actor_account, profile_id, action;
};

// One sealed value found by CS_OP_SEALED_SCAN.
struct SealedItem {
    int64_t cursor = 0;
    std::string id;
    std::optional<int64_t> seq;
    std::string sealed;
};

class Store {
public:
    using Done = std::function<void(std::optional<StorageError>)>;

    Store(const cs_storage_vtable *vtable, void *instance);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    // Runs one read op and returns its rows. Throws StorageError.
    std::vector<Row> query(uint32_t op, std::vector<Value> params) const;
    // Runs a write batch now, on this thread. Throws StorageError.
    void write(const Batch &batch) const;
    // Queues a write batch for the group-commit writer; done runs on the writer thread.
    void write_async(Batch batch, Done done);
    // Waits until every queued batch has been committed (or failed).
    void flush();

    // Typed reads.
    std::optional<AccountRecord> account(const std::string &id) const;
    std::optional<AccountRecord> account_by_email(const std::string &email_index) const;
    std::optional<ProfileRecord> profile(const std::string &id) const;
    std::vector<ProfileRecord> profiles(const std::string &account_id) const;
    std::optional<ConsultationRecord> consultation(const std::string &id) const;
    std::vector<ConsultationRecord> consultations(const std::string &account_id,
                                                  const std::optional<std::string> &profile_id,
                                                  int64_t limit) const;
    std::vector<MessageRecord> messages(const std::string &consultation_id) const;
    // (consultation_id, seq) of the message the client sent with this idempotency key.
    std::optional<std::pair<std::string, int64_t>> message_by_client_id(const std::string &account_id,
                                                                       const std::string &client_id) const;
    std::vector<EventRecord> events_after(const std::string &consultation_id, int64_t after_seq,
                                          int64_t limit) const;
    std::optional<std::string> meta(const std::string &key) const;
    std::vector<std::string> expired_guests(int64_t now_ms, int64_t limit) const;
    std::optional<SessionRecord> session(const std::string &id) const;
    // Marks a refresh token used (atomically): the session it belongs to and when it had been
    // used before (nullopt: this call used it). nullopt overall: unknown token.
    std::optional<std::pair<std::string, std::optional<int64_t>>> refresh_use(const std::string &token_hash,
                                                                              int64_t used_ms) const;
    std::optional<AuditRecord> audit_last() const;
    std::vector<AuditRecord> audit_list(const AuditFilter &f) const;
    // kind: account | profile | message | event (storage_ops.h).
    std::vector<SealedItem> sealed_scan(const std::string &kind, int64_t after_cursor, int64_t limit) const;

    // Typed write ops, to put in a Batch.
    static void account_insert(Batch &b, const AccountRecord &a);
    static void profile_insert(Batch &b, const ProfileRecord &p);
    static void consultation_insert(Batch &b, const ConsultationRecord &c);
    static void consultation_set_specialist(Batch &b, const std::string &id, const std::string &specialist,
                                            int64_t updated_ms);
    static void consultation_reserve_seq(Batch &b, const std::string &id, int64_t reserved);
    static void message_insert(Batch &b, const MessageRecord &m, const std::string &account_id);
    static void event_insert(Batch &b, const std::string &consultation_id, const EventRecord &e);
    static void meta_set(Batch &b, const std::string &key, const std::string &value);
    static void account_update(Batch &b, const AccountRecord &a);
    static void account_delete(Batch &b, const std::string &id);
    static void profile_update(Batch &b, const ProfileRecord &p);
    static void profile_delete(Batch &b, const std::string &id);
    static void session_insert(Batch &b, const SessionRecord &s);
    static void session_touch(Batch &b, const std::string &id, int64_t last_used_ms);
    static void session_revoke(Batch &b, const std::string &id, int64_t revoked_ms, const std::string &reason);
    static void session_revoke_account(Batch &b, const std::string &account_id, int64_t revoked_ms,
                                       const std::string &reason);
    static void refresh_insert(Batch &b, const std::string &token_hash, const std::string &session_id, int64_t created_ms);
    static void audit_append(Batch &b, const AuditRecord &a);
    static void audit_purge(Batch &b, int64_t before_ms);
    static void sealed_rewrite(Batch &b, const std::string &kind, const SealedItem &item, const std::string &new_sealed);

private:
    struct Pending {
        Batch batch;
        Done done;
    };
    void exec(const std::vector<const Batch *> &batches) const;
    void writer_loop();

    const cs_storage_vtable *vtable_;
    void *instance_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::condition_variable idle_cv_;
    std::deque<Pending> queue_;
    bool busy_ = false;
    bool stopping_ = false;
    std::thread writer_;
};

}  // namespace consilium
