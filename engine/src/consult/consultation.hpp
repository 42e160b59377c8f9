// One live consultation: its event numbering (seq), its subscribers, the turn being answered
// and the messages waiting behind it. Everything here runs on the consultation's strand.
//
// Events go through an outbox: each gets the next seq, is sealed and queued for storage, and is
// delivered to subscribers in seq order. A durable event (the ack of a patient message) holds
// back itself and everything after it until its transaction has committed, so an ack always
// means "stored", and no subscriber ever sees seq out of order.
#pragma once

#include "connector/connector.hpp"
#include "consult/answer_filter.hpp"
#include "consult/prompt.hpp"
#include "exec/executor.hpp"
#include "routing/coordinator.hpp"
#include "storage/store.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace consilium {

class ConsultationService;

struct Principal {
    std::string account_id;
    std::string role;  // guest | patient | author | operator
    bool guest = false;
    std::string session;  // the sign-in (refresh token family) the access token belongs to
    std::string peer;     // where the request came from ("ip:port"), for the audit log
};

// A client connection that receives a consultation's events (a chat session).
class Subscriber {
public:
    virtual ~Subscriber() = default;
    // One event frame (JSON text with consultation_id and seq), in seq order per consultation.
    virtual void deliver(const std::shared_ptr<const std::string> &frame) = 0;
    // A frame that is not a consultation event (errors answering a client frame).
    virtual void reply(const nlohmann::json &frame) = 0;
};

struct Incoming {
    std::string client_id;
    std::string text;
    std::string consultation_id;
    std::string profile_id;
    std::string specialist;  // pinned by the client
    std::string locale;
    nlohmann::json attachments = nlohmann::json::array();
};

class Consultation : public std::enable_shared_from_this<Consultation> {
public:
    Consultation(ConsultationService &svc, ConsultationRecord record, bool stored, std::shared_ptr<Strand> strand);

    const std::string &id() const { return record_.id; }
    const ConsultationRecord &record() const { return record_; }
    const std::shared_ptr<Strand> &strand() const { return strand_; }

    // All of the below run on strand().
    void subscribe(const std::shared_ptr<Subscriber> &sub);
    void submit(const Principal &who, Incoming msg, std::shared_ptr<Subscriber> sub);
    void resume(int64_t after_seq, const std::shared_ptr<Subscriber> &sub);
    bool cancel(const std::string &stream_id);
    // A turn of a voice conversation, from its transcript (idempotent per item id): the
    // patient's words as a message with its ack; the specialist's as a message with its
    // stream_start, one stream_chunk and stream_end events, so every client replays them alike.
    void add_voice_item(const Principal &who, const std::string &role, const std::string &item_id,
                        const std::string &text, const Persona *persona, std::function<void(bool stored)> done);
    // The patient's profile facts (age, sex, pregnancy) for routing and prompts; reads storage
    // and immutable fields only, so any thread may call it.
    PatientProfile load_profile();
    // Emits an emergency event (voice transcripts checked for red flags).
    void emit_emergency(const RouteDecision &d, const std::string &locale, const std::string &reply_to);
    // Ends the active turn (drain): the stream ends with stop_reason error, code shutting_down.
    void interrupt(const std::string &code);
    // The patient's data is being erased: ends the active turn and drops queued ones without
    // storing or sending anything more. On the strand.
    void erase();
    bool busy() const { return active_.has_value() || !queue_.empty() || !outbox_.empty(); }
    bool idle_for(std::chrono::seconds s) const;
    // Ends a stream left open by a crash (stream_start without stream_end).
    void close_interrupted_stream(const std::string &stream_id);
    void set_next_seq(int64_t next) { next_seq_ = next; }
    int64_t last_seq() const { return next_seq_ - 1; }
    // On clean shutdown: the reservation shrinks back to the last seq so numbering continues.
    void release_reservation();

private:
    struct OutEvent {
        int64_t seq;
        std::shared_ptr<const std::string> frame;
        bool durable;
        bool committed = false;
        bool failed = false;
    };
    struct Active {
        std::string stream_id;
        std::string reply_to;
        std::string account_id;  // whose turn slot this holds (ConsultationService::acquire_turn)
        const Persona *persona = nullptr;
        std::shared_ptr<const Panel> panel;
        std::shared_ptr<Turn> turn;
        AnswerFilter filter;
        nlohmann::json provider_citations = nlohmann::json::array();
        RouteDecision decision;
        bool shown_any = false;
        std::string locale;
        nlohmann::json turn_json;  // what the persona's hooks see
    };
    struct Queued {
        Principal who;
        Incoming msg;
        int64_t seq;
    };

    // Assigns a seq, stores the event (with `extra` ops in the same transaction) and queues it
    // for delivery. Returns the seq.
    int64_t emit(nlohmann::json event, bool durable, Batch extra = {},
                 std::function<void(std::optional<StorageError>)> on_commit = {});
    void deliver();
    void start_next_turn();
    void start_turn(const Queued &q);
    void on_turn_event(const std::string &stream_id, const TurnEvent &e);
    void end_turn(const TurnEvent &e);
    void replay_from(int64_t seq, const std::shared_ptr<Subscriber> &sub);
    void load_history();
    std::string seal(const std::string &what, int64_t seq, const std::string &plaintext) const;

    ConsultationService &svc_;
    ConsultationRecord record_;
    bool stored_;
    bool erased_ = false;
    std::shared_ptr<Strand> strand_;
    int64_t next_seq_ = 1;
    int64_t reserved_ = 0;
    std::vector<std::weak_ptr<Subscriber>> subscribers_;
    std::deque<OutEvent> outbox_;
    std::deque<std::pair<int64_t, std::shared_ptr<const std::string>>> recent_;
    std::optional<Active> active_;
    std::deque<Queued> queue_;
    std::vector<HistoryItem> history_;
    bool history_loaded_ = false;
    std::set<std::string> client_ids_;  // idempotency keys seen in this consultation
    std::chrono::steady_clock::time_point last_activity_;
    int turn_index_ = 0;
};

}  // namespace consilium
