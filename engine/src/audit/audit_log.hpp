// The audit log (docs/security.md, "Audit log"): one append-only entry for every read and write of
// health data and every administrative action: who (account, role), whose data (profile), what,
// when, from where, and the outcome. Entries never hold health data, only ids and codes.
//
// Each entry carries the hash of the one before it (SHA-256 over the previous hash and the
// entry's canonical JSON), so `consilium audit verify` finds the first entry that was changed,
// removed or reordered. Appends are ordered by one mutex and committed through the store's
// group-commit writer, which keeps their order. The head (last seq and hash) is also kept in the
// store's meta table and written to the operator log every hour, so a truncated tail is found too.
#pragma once

#include "storage/store.hpp"
#include "util/metrics.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace consilium {

// Who acted. A request without a valid token has no account (role "anonymous").
struct AuditActor {
    std::optional<std::string> account;
    std::string role = "anonymous";
    std::optional<std::string> peer;  // "ip" (the port is dropped)
};

struct AuditEvent {
    std::string action;                     // e.g. "consultation.read", "auth.login"
    std::string outcome = "ok";             // ok | denied | not_found | invalid | error
    std::optional<std::string> profile_id;  // whose health data, when it is someone's
    std::optional<std::string> target;      // e.g. "consultation:c_..."
    nlohmann::json detail = nlohmann::json::object();  // codes and counts only, never text
};

struct AuditVerifyResult {
    bool ok = true;
    int64_t checked = 0;        // entries verified
    int64_t first_bad_seq = 0;  // the first entry changed, removed or out of order
    std::string problem;        // one sentence naming it
};

class AuditLog {
public:
    static constexpr const char *kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

    AuditLog(Store &store, metrics::Registry &metrics);

    // Appends one entry (asynchronously; in order). Never throws: a failed write is logged and
    // counted, and the next append re-reads the head from storage.
    void record(const AuditActor &who, const AuditEvent &what);
    // Waits until every recorded entry is stored.
    void flush();
    // Deletes entries older than before_ms, keeping the chain verifiable from the first kept one
    // (its predecessor's hash becomes the anchor in meta). Returns how many were older.
    int64_t purge_before(int64_t before_ms);
    // Writes the head to the operator log (seq and hash: no health data).
    void log_head();

    // The hash an entry must carry, from its fields and prev_hash.
    static std::string hash_of(const AuditRecord &r);
    // Reads the whole log in order and checks every link.
    static AuditVerifyResult verify(const Store &store);
    static nlohmann::json to_json(const AuditRecord &r);

private:
    void load_head_locked();

    Store &store_;
    metrics::Registry &metrics_;
    std::mutex mu_;
    bool head_loaded_ = false;
    int64_t head_seq_ = 0;
    std::string head_hash_ = kGenesis;
    std::shared_ptr<std::atomic<bool>> broken_ = std::make_shared<std::atomic<bool>>(false);
};

// The peer address of "ip:port" or "[v6]:port", without the port.
std::string peer_address(const std::string &peer);

}  // namespace consilium
