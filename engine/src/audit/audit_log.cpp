#include "audit/audit_log.hpp"
#include "util/clock.hpp"

#include "util/ids.hpp"
#include "util/log.hpp"

#include <chrono>

namespace consilium {

using json = nlohmann::json;

namespace {


json opt(const std::optional<std::string> &v) { return v ? json(*v) : json(nullptr); }

constexpr const char *kHeadKey = "audit.head";
constexpr const char *kAnchorKey = "audit.anchor";

}  // namespace

std::string peer_address(const std::string &peer) {
    if (!peer.empty() && peer.front() == '[') {
        auto close = peer.find(']');
        return close == std::string::npos ? peer : peer.substr(1, close - 1);
    }
    auto colon = peer.rfind(':');
    if (colon == std::string::npos || peer.find(':') != colon) return peer;  // no port, or bare IPv6
    return peer.substr(0, colon);
}

AuditLog::AuditLog(Store &store, metrics::Registry &metrics) : store_(store), metrics_(metrics) {}

std::string AuditLog::hash_of(const AuditRecord &r) {
    // The canonical form: a JSON array in column order (no key order to disagree about).
    json fields = json::array({r.seq, r.at_ms, opt(r.actor_account), r.actor_role, opt(r.profile_id), r.action,
                               opt(r.target), r.outcome, opt(r.peer), r.detail});
    std::string text = r.prev_hash + "\n" + fields.dump(-1, ' ', false, json::error_handler_t::replace);
    return hex_encode(sha256(text));
}

json AuditLog::to_json(const AuditRecord &r) {
    json detail = json::parse(r.detail, nullptr, false);
    return {{"seq", r.seq},         {"at", r.at_ms},         {"actor", {{"account", opt(r.actor_account)}, {"role", r.actor_role}}},
            {"profile_id", opt(r.profile_id)}, {"action", r.action}, {"target", opt(r.target)},
            {"outcome", r.outcome}, {"peer", opt(r.peer)},   {"detail", detail.is_discarded() ? json(r.detail) : detail},
            {"prev_hash", r.prev_hash}, {"hash", r.hash}};
}

void AuditLog::load_head_locked() {
    auto last = store_.audit_last();
    if (last) {
        head_seq_ = last->seq;
        head_hash_ = last->hash;
    } else {
        // Empty table: either a new log, or every entry was purged (the anchor continues it).
        head_seq_ = 0;
        head_hash_ = kGenesis;
        if (auto anchor = store_.meta(kAnchorKey)) {
            json a = json::parse(*anchor, nullptr, false);
            if (a.is_object()) {
                head_seq_ = a.value("seq", int64_t{0});
                head_hash_ = a.value("hash", std::string(kGenesis));
            }
        }
    }
    head_loaded_ = true;
    broken_->store(false);
}

void AuditLog::record(const AuditActor &who, const AuditEvent &what) {
    try {
        std::lock_guard<std::mutex> lock(mu_);
        if (!head_loaded_ || broken_->load()) {
            store_.flush();  // a failed batch may still be in the queue ahead of us
            load_head_locked();
        }
        AuditRecord r;
        r.seq = head_seq_ + 1;
        r.at_ms = unix_ms();
        r.actor_account = who.account;
        r.actor_role = who.role;
        r.profile_id = what.profile_id;
        r.action = what.action;
        r.target = what.target;
        r.outcome = what.outcome;
        if (who.peer) r.peer = peer_address(*who.peer);
        r.detail = what.detail.dump(-1, ' ', false, json::error_handler_t::replace);
        r.prev_hash = head_hash_;
        r.hash = hash_of(r);
        Batch b;
        Store::audit_append(b, r);
        Store::meta_set(b, kHeadKey, json{{"seq", r.seq}, {"hash", r.hash}}.dump());
        head_seq_ = r.seq;
        head_hash_ = r.hash;
        auto broken = broken_;
        metrics::Metric &failures = metrics_.counter("audit_write_failures_total", "Audit entries that could not be stored");
        store_.write_async(std::move(b), [broken, &failures, seq = r.seq](std::optional<StorageError> err) {
            if (!err) return;
            failures.add(1);
            broken->store(true);
            log::error("audit", "an audit entry could not be stored", {{"seq", seq}, {"why", err->what()}});
        });
        metrics_.counter("audit_entries_total", "Audit entries recorded").add(1);
    } catch (const StorageError &e) {
        metrics_.counter("audit_write_failures_total", "Audit entries that could not be stored").add(1);
        log::error("audit", "the audit log is unavailable", {{"why", e.what()}});
    }
}

void AuditLog::flush() { store_.flush(); }

int64_t AuditLog::purge_before(int64_t before_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    store_.flush();
    // The last entry that goes: its hash anchors the first one that stays.
    AuditFilter f;
    f.to_ms = before_ms;
    f.limit = 1000;
    int64_t count = 0;
    std::optional<AuditRecord> last_old;
    for (;;) {
        auto page = store_.audit_list(f);
        if (page.empty()) break;
        count += static_cast<int64_t>(page.size());
        last_old = page.back();
        f.after_seq = page.back().seq;
    }
    if (!last_old) return 0;
    Batch b;
    Store::meta_set(b, kAnchorKey, json{{"seq", last_old->seq}, {"hash", last_old->hash}}.dump());
    Store::audit_purge(b, before_ms);
    store_.write(b);
    log::info("audit", "entries past retention deleted", {{"count", count}, {"anchor_seq", last_old->seq}});
    return count;
}

void AuditLog::log_head() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!head_loaded_) {
        try {
            load_head_locked();
        } catch (const StorageError &) {
            return;
        }
    }
    log::info("audit", "audit log head", {{"seq", head_seq_}, {"hash", head_hash_}});
}

AuditVerifyResult AuditLog::verify(const Store &store) {
    AuditVerifyResult res;
    int64_t expected_seq = 1;
    std::string expected_prev = kGenesis;
    if (auto anchor = store.meta(kAnchorKey)) {
        json a = json::parse(*anchor, nullptr, false);
        if (a.is_object()) {
            expected_seq = a.value("seq", int64_t{0}) + 1;
            expected_prev = a.value("hash", std::string(kGenesis));
        }
    }
    auto fail = [&res](int64_t seq, std::string problem) {
        res.ok = false;
        res.first_bad_seq = seq;
        res.problem = std::move(problem);
        return res;
    };
    AuditFilter f;
    f.after_seq = expected_seq - 1;
    f.limit = 1000;
    // Entries below the anchor should have been purged; any left are checked only for order.
    for (;;) {
        auto page = store.audit_list(f);
        if (page.empty()) break;
        for (const auto &r : page) {
            if (r.seq != expected_seq) {
                if (r.seq > expected_seq)
                    return fail(expected_seq, "entry " + std::to_string(expected_seq) + " was removed (the next entry is " +
                                                  std::to_string(r.seq) + ")");
                return fail(r.seq, "entry " + std::to_string(r.seq) + " is out of order");
            }
            if (r.hash != hash_of(r)) {
                // Was this entry changed, or did it come from elsewhere (moved, reordered)?
                return fail(r.seq, "entry " + std::to_string(r.seq) + " was changed: its hash does not match its content");
            }
            if (r.prev_hash != expected_prev) {
                // The entry is consistent in itself but does not follow the one before: that one
                // was changed (and re-hashed), or entries were reordered.
                int64_t prev = r.seq - 1;
                return fail(prev >= 1 ? prev : r.seq, "entry " + std::to_string(r.seq) + " does not follow entry " +
                                                          std::to_string(prev) + ": entry " + std::to_string(prev) +
                                                          " was changed or entries were reordered");
            }
            expected_prev = r.hash;
            ++expected_seq;
            ++res.checked;
        }
        f.after_seq = page.back().seq;
    }
    if (auto head = store.meta(kHeadKey)) {
        json h = json::parse(*head, nullptr, false);
        int64_t head_seq = h.is_object() ? h.value("seq", int64_t{0}) : 0;
        if (head_seq >= expected_seq)
            return fail(expected_seq, "entries " + std::to_string(expected_seq) + " to " + std::to_string(head_seq) +
                                          " were removed (the log ends early)");
        if (head_seq == expected_seq - 1 && head_seq > 0 && h.value("hash", "") != expected_prev)
            return fail(head_seq, "entry " + std::to_string(head_seq) + " does not match the recorded head");
    }
    return res;
}

}  // namespace consilium
