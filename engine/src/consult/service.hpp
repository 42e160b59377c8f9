// The consultation service: finds or loads live consultations, checks that the caller owns
// them, and hands patient messages, resumes and cancels to the right consultation strand.
#pragma once

#include "connector/connector.hpp"
#include "consult/consultation.hpp"
#include "audit/audit_log.hpp"
#include "crypto/sealer.hpp"
#include "locale/catalog.hpp"
#include "persona/persona.hpp"
#include "storage/store.hpp"
#include "util/metrics.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace consilium {

struct ServiceSettings {
    size_t history_turns = 12;
    std::vector<std::string> default_models;
    std::vector<std::string> force_models;
    int64_t seq_reserve = 2048;  // seqs reserved durably ahead of use (crash-safe numbering)
    size_t recent_events = 512;  // events kept in memory per live consultation for resume
    int concurrent_turns = 4;    // answers in progress or queued per account (limits.concurrent_turns)
    int guest_concurrent_turns = 2;
};

class ConsultationService {
public:
    struct Deps {
        Executor &executor;
        Store &store;
        Sealer &sealer;
        Connector &connector;
        metrics::Registry &metrics;
        AuditLog *audit;  // null in tools and tests that audit nothing
        std::function<std::shared_ptr<const Panel>()> panel;
        std::function<std::shared_ptr<const LocaleCatalog>()> locales;
    };

    ConsultationService(Deps deps, ServiceSettings settings);
    ~ConsultationService();

    // Entry points for chat sessions; callable from any thread. Errors go to sub->reply().
    void submit(const Principal &who, Incoming msg, std::shared_ptr<Subscriber> sub);
    void resume(const Principal &who, const std::string &consultation_id, int64_t after_seq,
                std::shared_ptr<Subscriber> sub);
    void cancel(const Principal &who, const std::string &stream_id, std::shared_ptr<Subscriber> sub);

    // A consultation for a voice session: the given one (the caller's own) or a new one for the
    // profile (default: self), stored at once. Null with `error` ("not_found", ...) otherwise.
    std::shared_ptr<Consultation> open_for_voice(const Principal &who, const std::string &consultation_id,
                                                 const std::string &profile_id, std::string &error);
    // Stores one transcript item of a voice conversation (idempotent per item id); done(stored)
    // runs on the consultation's strand.
    void voice_item(const Principal &who, const std::shared_ptr<Consultation> &c, const std::string &role,
                    const std::string &item_id, const std::string &text, const Persona *persona,
                    std::shared_ptr<const Panel> panel, std::function<void(bool)> done);

    // Stops taking new turns, waits up to `deadline` for active turns, then ends the rest with
    // stop_reason error (code shutting_down), flushes storage and releases seq reservations.
    void drain(std::chrono::milliseconds deadline);
    bool accepting() const { return accepting_; }
    size_t active_turns() const { return active_turns_; }
    // Erasure: ends and forgets every live consultation of the account (or of one profile), and
    // waits until none of them stores anything more. The caller then deletes the rows.
    void forget(const std::string &account_id, const std::optional<std::string> &profile_id);
    // Forgets live consultations idle for `idle` (they reload from storage on demand).
    void sweep(std::chrono::seconds idle);

    // Used by Consultation.
    const Deps &deps() const { return deps_; }
    const ServiceSettings &settings() const { return settings_; }
    void turn_started();
    void turn_ended();
    // Per-account turn slots (answers in progress or queued): false when the account is at its
    // limit. Every successful acquire is released exactly once, when the turn ends or is dropped.
    bool acquire_turn(const Principal &who);
    void release_turn(const std::string &account_id);
    void register_stream(const std::string &stream_id, const std::string &consultation_id);
    void unregister_stream(const std::string &stream_id);

    static nlohmann::json error_frame(const std::string &code, const std::string &message,
                                      const std::string &reply_to = "");

private:
    // Loads or returns the live consultation; null when it does not exist.
    std::shared_ptr<Consultation> get(const std::string &id);
    std::shared_ptr<Consultation> create(const Principal &who, const std::string &profile_id);
    void do_submit(const Principal &who, Incoming msg, std::shared_ptr<Subscriber> sub);
    void audit(const Principal &who, const char *action, const char *outcome, const std::optional<std::string> &profile_id,
               const std::string &consultation_id);

    Deps deps_;
    ServiceSettings settings_;
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<Consultation>> live_;
    std::map<std::string, std::string> streams_;  // stream_id -> consultation_id
    std::map<std::string, int> turns_by_account_;
    std::atomic<bool> accepting_{true};
    std::atomic<size_t> active_turns_{0};
};

}  // namespace consilium
