#include "consult/consultation.hpp"
#include "util/clock.hpp"

#include "consult/service.hpp"
#include "persona/hooks.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

namespace consilium {

using json = nlohmann::json;
using namespace std::chrono;

namespace {


std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Age in years from "YYYY-MM-DD".
std::optional<double> age_from_birth_date(const std::string &d) {
    int y = 0, m = 0, day = 0;
    if (std::sscanf(d.c_str(), "%d-%d-%d", &y, &m, &day) != 3 || y < 1850 || m < 1 || m > 12 || day < 1 || day > 31)
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = day;
    tm.tm_hour = 12;
    time_t born = timegm(&tm);
    double years = std::difftime(std::time(nullptr), born) / (365.2425 * 86400.0);
    if (years < 0) return std::nullopt;
    return years;
}

}  // namespace

Consultation::Consultation(ConsultationService &svc, ConsultationRecord record, bool stored,
                           std::shared_ptr<Strand> strand)
    : svc_(svc), record_(std::move(record)), stored_(stored), strand_(std::move(strand)),
      last_activity_(steady_clock::now()) {
    next_seq_ = std::max(record_.last_seq, record_.seq_reserved) + 1;
    reserved_ = record_.seq_reserved;
}

std::string Consultation::seal(const std::string &what, int64_t seq, const std::string &plaintext) const {
    return svc_.deps().sealer.seal(plaintext, what + ":" + record_.id + ":" + std::to_string(seq));
}

bool Consultation::idle_for(seconds s) const {
    return !busy() && steady_clock::now() - last_activity_ > s;
}

void Consultation::subscribe(const std::shared_ptr<Subscriber> &sub) {
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
        auto p = it->lock();
        if (!p) {
            it = subscribers_.erase(it);
            continue;
        }
        if (p == sub) return;
        ++it;
    }
    subscribers_.push_back(sub);
}

int64_t Consultation::emit(json event, bool durable, Batch extra, std::function<void(std::optional<StorageError>)> on_commit) {
    if (erased_) return next_seq_;  // nothing more is stored or sent for erased data
    last_activity_ = steady_clock::now();
    int64_t seq = next_seq_++;
    if (seq > reserved_) {
        // Reserve numbers durably ahead of use: after a crash numbering resumes above them, so no
        // client ever sees one seq twice. This event waits for that commit.
        reserved_ = seq + svc_.settings().seq_reserve;
        Store::consultation_reserve_seq(extra, record_.id, reserved_);
        durable = true;
    }
    std::string type = event.value("type", "");
    event["consultation_id"] = record_.id;
    event["seq"] = seq;
    auto frame = std::make_shared<const std::string>(dump(event));
    EventRecord rec{seq, type, seal("event", seq, *frame), unix_ms()};
    Store::event_insert(extra, record_.id, rec);
    outbox_.push_back({seq, frame, durable});
    if (!durable && !on_commit) {
        // Nothing waits for this commit (the outbox holds back only behind durable events): a
        // failure is logged from the writer's thread, with no task for the strand per chunk.
        svc_.deps().store.write_async(std::move(extra), [id = record_.id, seq](std::optional<StorageError> err) {
            if (err) log::error("consultation", "event not stored", {{"consultation", id}, {"seq", seq}, {"why", err->what()}});
        });
        deliver();
        return seq;
    }
    std::weak_ptr<Consultation> weak = weak_from_this();
    auto strand = strand_;
    svc_.deps().store.write_async(std::move(extra), [weak, strand, seq, on_commit](std::optional<StorageError> err) {
        strand->post([weak, seq, on_commit, err] {
            auto self = weak.lock();
            if (!self) return;
            for (auto &e : self->outbox_) {
                if (e.seq != seq) continue;
                e.committed = true;
                e.failed = err.has_value();
            }
            if (err) log::error("consultation", "event not stored", {{"consultation", self->record_.id}, {"seq", seq},
                                                                      {"why", err->what()}});
            if (on_commit) on_commit(err);
            self->deliver();
        });
    });
    deliver();
    return seq;
}

void Consultation::deliver() {
    while (!outbox_.empty()) {
        OutEvent &e = outbox_.front();
        if (e.durable && !e.committed) return;  // later events wait for this one
        if (e.durable && e.failed) {
            // Not stored: never announced. (The submitter got an error instead.)
            outbox_.pop_front();
            continue;
        }
        recent_.emplace_back(e.seq, e.frame);
        while (recent_.size() > svc_.settings().recent_events) recent_.pop_front();
        for (auto it = subscribers_.begin(); it != subscribers_.end();) {
            if (auto s = it->lock()) {
                s->deliver(e.frame);
                ++it;
            } else {
                it = subscribers_.erase(it);
            }
        }
        outbox_.pop_front();
    }
}

void Consultation::replay_from(int64_t after_seq, const std::shared_ptr<Subscriber> &sub) {
    // Everything delivered so far with seq > after_seq: from storage for what the in-memory
    // window no longer holds, then from the window. Events still in the outbox reach this
    // subscriber when they are delivered, since it is subscribed now.
    int64_t window_start = recent_.empty() ? (outbox_.empty() ? next_seq_ : outbox_.front().seq) : recent_.front().first;
    if (after_seq + 1 < window_start) {
        auto &store = svc_.deps().store;
        store.flush();
        int64_t from = after_seq;
        while (from + 1 < window_start) {
            std::vector<EventRecord> batch;
            try {
                batch = store.events_after(record_.id, from, 500);
            } catch (const StorageError &e) {
                sub->reply(ConsultationService::error_frame("storage_unavailable", "could not read the consultation's events"));
                return;
            }
            if (batch.empty()) break;
            for (const auto &ev : batch) {
                if (ev.seq >= window_start) {
                    from = window_start;
                    break;
                }
                auto plain = svc_.deps().sealer.open(ev.body_sealed, "event:" + record_.id + ":" + std::to_string(ev.seq));
                if (!plain) {
                    log::error("consultation", "stored event does not open", {{"consultation", record_.id}, {"seq", ev.seq}});
                    from = ev.seq;
                    continue;
                }
                sub->deliver(std::make_shared<const std::string>(std::move(*plain)));
                from = ev.seq;
            }
            if (batch.size() < 500) break;
        }
    }
    for (const auto &[seq, frame] : recent_)
        if (seq > after_seq) sub->deliver(frame);
}

void Consultation::resume(int64_t after_seq, const std::shared_ptr<Subscriber> &sub) {
    last_activity_ = steady_clock::now();
    subscribe(sub);
    replay_from(after_seq, sub);
}

void Consultation::load_history() {
    if (history_loaded_) return;
    history_loaded_ = true;
    if (!stored_) return;
    try {
        for (const auto &m : svc_.deps().store.messages(record_.id)) {
            auto plain = svc_.deps().sealer.open(m.body_sealed, "message:" + record_.id + ":" + std::to_string(m.seq));
            if (!plain) continue;
            json body = json::parse(*plain, nullptr, false);
            if (!body.is_object()) continue;
            history_.push_back({m.role, body.value("text", "")});
            if (m.client_id) client_ids_.insert(*m.client_id);
            if (m.role == "patient") ++turn_index_;
        }
    } catch (const StorageError &e) {
        log::error("consultation", "history not loaded", {{"consultation", record_.id}, {"why", e.what()}});
    }
}

PatientProfile Consultation::load_profile() {
    PatientProfile p;
    try {
        auto rec = svc_.deps().store.profile(record_.profile_id);
        if (!rec) return p;
        auto plain = svc_.deps().sealer.open(rec->details_sealed, "profile:" + rec->id);
        if (!plain) return p;
        json d = json::parse(*plain, nullptr, false);
        if (!d.is_object()) return p;
        if (d.contains("birth_date") && d["birth_date"].is_string()) p.age_years = age_from_birth_date(d["birth_date"]);
        if (d.contains("sex") && d["sex"].is_string()) p.sex = d["sex"];
        if (d.contains("pregnant") && d["pregnant"].is_boolean()) p.pregnant = d["pregnant"];
    } catch (const StorageError &) {
    }
    return p;
}

void Consultation::submit(const Principal &who, Incoming msg, std::shared_ptr<Subscriber> sub) {
    subscribe(sub);
    load_history();
    if (client_ids_.count(msg.client_id)) {
        // The same idempotency key again: never a second turn; the client gets the events of
        // the existing one.
        try {
            auto found = svc_.deps().store.message_by_client_id(who.account_id, msg.client_id);
            replay_from(found ? found->second - 1 : 0, sub);
        } catch (const StorageError &) {
            replay_from(0, sub);
        }
        return;
    }
    if (!svc_.acquire_turn(who)) {
        svc_.deps().metrics.counter("chat_rate_limited_total", "Frames refused by rate limits").add(1);
        sub->reply(ConsultationService::error_frame(
            "too_many_streams", "wait for an answer in progress to finish, then send again", msg.client_id));
        return;
    }
    client_ids_.insert(msg.client_id);

    Batch batch;
    bool was_new = !stored_;
    if (was_new) {
        Store::consultation_insert(batch, record_);
        stored_ = true;
    }
    int64_t seq = next_seq_;  // the ack's seq is the message's
    json body = {{"text", msg.text}, {"attachments", msg.attachments}};
    json meta = {{"locale", msg.locale}};
    MessageRecord m{record_.id, seq, msg.client_id, "patient", std::nullopt,
                    seal("message", seq, dump(body)), dump(meta), unix_ms()};
    Store::message_insert(batch, m, who.account_id);
    std::weak_ptr<Consultation> weak = weak_from_this();
    Queued q{who, msg, seq};
    std::string reply_to = msg.client_id;
    std::weak_ptr<Subscriber> weak_sub = sub;
    int64_t got = emit({{"type", "ack"}, {"id", msg.client_id}}, true, std::move(batch),
                       [weak, q, weak_sub, reply_to, was_new](std::optional<StorageError> err) {
                           auto self = weak.lock();
                           if (!self) return;
                           if (err) {
                               self->svc_.release_turn(q.who.account_id);
                               self->client_ids_.erase(reply_to);
                               if (was_new) self->stored_ = false;
                               if (auto s = weak_sub.lock()) {
                                   if (err->conflict())
                                       s->reply(ConsultationService::error_frame(
                                           "duplicate", "this message id was already used in another consultation", reply_to));
                                   else
                                       s->reply(ConsultationService::error_frame(
                                           "storage_unavailable", "the message could not be stored; send it again", reply_to));
                               }
                               return;
                           }
                           self->history_.push_back({"patient", q.msg.text});
                           self->queue_.push_back(q);
                           if (!self->active_) self->start_next_turn();
                       });
    (void)got;
}

void Consultation::add_voice_item(const Principal &who, const std::string &role, const std::string &item_id,
                                  const std::string &text, const Persona *persona, std::function<void(bool stored)> done) {
    load_history();
    std::string key = "voice:" + item_id;
    if (client_ids_.count(key) || text.empty()) {
        done(true);  // already stored (or nothing to store)
        return;
    }
    client_ids_.insert(key);
    Batch batch;
    if (!stored_) {
        Store::consultation_insert(batch, record_);
        stored_ = true;
    }
    auto on_commit = [done](std::optional<StorageError> err) { done(!err); };
    int64_t seq = next_seq_;
    if (role == "patient") {
        json body = {{"text", text}, {"voice", true}};
        MessageRecord m{record_.id, seq, key, "patient", std::nullopt, seal("message", seq, dump(body)),
                        dump(json{{"voice", true}}), unix_ms()};
        Store::message_insert(batch, m, who.account_id);
        emit({{"type", "ack"}, {"id", key}, {"voice", true}}, true, std::move(batch), on_commit);
        history_.push_back({"patient", text});
        ++turn_index_;
        return;
    }
    // The specialist's spoken answer.
    std::string stream_id = new_id("s");
    if (persona && record_.specialist.value_or("") != persona->id) {
        record_.specialist = persona->id;
        Store::consultation_set_specialist(batch, record_.id, persona->id, unix_ms());
    }
    json who_spoke = persona ? json{{"id", persona->id}, {"name", persona->name}, {"title", persona->title}} : json::object();
    emit({{"type", "stream_start"}, {"stream_id", stream_id}, {"reply_to", key}, {"specialist", who_spoke}, {"voice", true}},
         false, std::move(batch));
    emit({{"type", "stream_chunk"}, {"stream_id", stream_id}, {"text", text}}, false);
    seq = next_seq_;
    json body = {{"text", text}, {"voice", true}, {"citations", json::array()}, {"follow_ups", json::array()}};
    json meta = {{"stream_id", stream_id}, {"stop_reason", "end_turn"}, {"voice", true}};
    Batch end_batch;
    MessageRecord m{record_.id, seq, key, "specialist", persona ? std::optional(persona->id) : std::nullopt,
                    seal("message", seq, dump(body)), dump(meta), unix_ms()};
    Store::message_insert(end_batch, m, record_.account_id);
    emit({{"type", "stream_end"}, {"stream_id", stream_id}, {"stop_reason", "end_turn"}, {"citations", json::array()},
          {"follow_ups", json::array()}, {"voice", true}},
         true, std::move(end_batch), on_commit);
    history_.push_back({"specialist", text});
}

void Consultation::emit_emergency(const RouteDecision &d, const std::string &locale, const std::string &reply_to) {
    auto locales = svc_.deps().locales();
    const Locale *loc = locales ? locales->find(locale.empty() ? "en" : locale) : nullptr;
    json numbers = json::array();
    std::string message = "This may be an emergency. Call your local emergency number now.";
    if (loc) {
        for (const auto &n : loc->emergency_numbers) numbers.push_back({{"number", n.number}, {"label", n.label}});
        if (!loc->emergency_message.empty()) message = loc->emergency_message;
    }
    svc_.deps().metrics.counter("emergencies_total", "Turns where red flags raised an emergency").add(1);
    emit({{"type", "emergency"}, {"message", message}, {"numbers", numbers}, {"flags", d.flags}, {"reply_to", reply_to}},
         false);
}

void Consultation::start_next_turn() {
    while (!active_ && !queue_.empty()) {
        Queued q = std::move(queue_.front());
        queue_.pop_front();
        if (!svc_.accepting()) {
            // Draining: the message is stored; its answer comes after a reconnect elsewhere.
            emit({{"type", "error"}, {"code", "shutting_down"},
                  {"message", "the server is restarting; your message is saved, reconnect to get the answer"},
                  {"reply_to", q.msg.client_id}},
                 false);
            svc_.release_turn(q.who.account_id);
            continue;
        }
        start_turn(q);
    }
}

void Consultation::start_turn(const Queued &q) {
    auto panel = svc_.deps().panel();
    auto locales = svc_.deps().locales();
    RouteRequest req;
    req.text = q.msg.text;
    req.profile = load_profile();
    req.current = record_.specialist.value_or("");
    req.pinned = q.msg.specialist;
    req.locale = q.msg.locale;
    req.turn_index = turn_index_++;
    // The patient's message before this one (history_ ends with this one).
    for (size_t i = history_.size(); i-- > 1;) {
        if (history_[i - 1].role == "patient") {
            req.previous = history_[i - 1].text;
            break;
        }
    }
    RouteDecision d = Coordinator::route(*panel, req);
    const Persona *persona = panel->find(d.specialist);
    if (!persona) persona = panel->entry();

    Active a;
    a.stream_id = new_id("s");
    a.reply_to = q.msg.client_id;
    a.account_id = q.who.account_id;
    a.persona = persona;
    a.panel = panel;
    a.decision = d;
    a.locale = q.msg.locale;
    svc_.turn_started();
    svc_.register_stream(a.stream_id, record_.id);

    if (d.emergency) emit_emergency(d, q.msg.locale, q.msg.client_id);
    if (record_.specialist.value_or("") != persona->id) {
        record_.specialist = persona->id;
        Batch b;
        Store::consultation_set_specialist(b, record_.id, persona->id, unix_ms());
        svc_.deps().store.write_async(std::move(b), {});
    }
    emit({{"type", "stream_start"},
          {"stream_id", a.stream_id},
          {"reply_to", q.msg.client_id},
          {"specialist", {{"id", persona->id}, {"name", persona->name}, {"title", persona->title}}}},
         false);

    PromptInput in;
    in.persona = persona;
    in.profile = req.profile;
    in.locale = q.msg.locale;
    in.history.assign(history_.begin(), history_.end() - (history_.empty() ? 0 : 1));
    in.text = q.msg.text;
    in.attachments = q.msg.attachments;
    in.history_turns = svc_.settings().history_turns;
    in.emergency = d.emergency;
    in.emergency_message = d.emergency_message;
    in.system = hooks::shape_prompt(*panel, *persona, Coordinator::turn_json(req), build_system_prompt(in));
    a.turn_json = Coordinator::turn_json(req);

    TurnRequest tr;
    const auto &st = svc_.settings();
    if (!st.force_models.empty()) {
        tr.aliases = st.force_models;
    } else if (!persona->model_primary.empty()) {
        tr.aliases.push_back(persona->model_primary);
        for (const auto &f : persona->model_fallbacks) tr.aliases.push_back(f);
        for (const auto &f : st.default_models) tr.aliases.push_back(f);
    } else {
        tr.aliases = st.default_models;
    }
    for (const auto &att : q.msg.attachments) {
        if (att.value("type", "") == "image") tr.needs_vision = true;
        if (att.value("type", "") == "document") tr.needs_pdf = true;
    }
    tr.build = [in](const ModelInfo &m) { return build_model_request(in, m); };

    std::weak_ptr<Consultation> weak = weak_from_this();
    std::string stream_id = a.stream_id;
    active_ = std::move(a);
    active_->turn = svc_.deps().connector.start(strand_, std::move(tr), [weak, stream_id](const TurnEvent &e) {
        if (auto self = weak.lock()) self->on_turn_event(stream_id, e);
    });
}

void Consultation::on_turn_event(const std::string &stream_id, const TurnEvent &e) {
    if (!active_ || active_->stream_id != stream_id) return;
    last_activity_ = steady_clock::now();
    switch (e.kind) {
    case TurnEvent::Kind::text: {
        std::string shown = active_->filter.feed(e.text);
        if (!shown.empty()) {
            active_->shown_any = true;
            emit({{"type", "stream_chunk"}, {"stream_id", stream_id}, {"text", shown}}, false);
        }
        return;
    }
    case TurnEvent::Kind::citation:
        active_->provider_citations.push_back(e.citation);
        return;
    case TurnEvent::Kind::restart:
        active_->filter.reset();
        active_->provider_citations = json::array();
        if (active_->shown_any) {
            emit({{"type", "stream_restart"}, {"stream_id", stream_id}, {"reason", e.text}}, false);
            active_->shown_any = false;
        }
        return;
    case TurnEvent::Kind::end:
        end_turn(e);
        return;
    }
}

void Consultation::end_turn(const TurnEvent &e) {
    Active &a = *active_;
    std::string rest = a.filter.flush();
    if (!rest.empty()) {
        a.shown_any = true;
        emit({{"type", "stream_chunk"}, {"stream_id", a.stream_id}, {"text", rest}}, false);
    }
    std::string answer = a.filter.answer();
    json follow_ups = json::array();
    json citations = json::array();
    if (e.stop_reason == "refusal") {
        // No retry, no pretending: a safe message in place of whatever was shown.
        auto locales = svc_.deps().locales();
        const Locale *loc = locales ? locales->find(a.locale.empty() ? "en" : a.locale) : nullptr;
        std::string safe = loc && !loc->refusal_message.empty()
                               ? loc->refusal_message
                               : "I can't help with that request here. If you are worried about your health, please contact a doctor.";
        if (a.shown_any) emit({{"type", "stream_restart"}, {"stream_id", a.stream_id}, {"reason", "refusal"}}, false);
        emit({{"type", "stream_chunk"}, {"stream_id", a.stream_id}, {"text", safe}}, false);
        answer = safe;
    } else if (e.stop_reason == "end_turn" || e.stop_reason == "max_tokens") {
        std::vector<std::string> suggested = a.filter.follow_ups();
        if (suggested.empty())
            for (const auto &f : a.persona->follow_ups) {
                if (suggested.size() >= 3) break;
                suggested.push_back(f);
            }
        for (const auto &f : hooks::follow_ups(*a.panel, *a.persona, a.turn_json, answer, suggested))
            follow_ups.push_back(f);
        citations = a.filter.citations(a.persona->sources, a.provider_citations);
    }
    json end = {{"type", "stream_end"}, {"stream_id", a.stream_id}, {"stop_reason", e.stop_reason},
                {"citations", citations}, {"follow_ups", follow_ups}};
    if (e.stop_reason == "error") {
        std::string code = e.error_code.empty() ? "provider_error" : e.error_code;
        end["error"] = {{"code", code}, {"message", "the answer could not be completed; please ask again"}};
    }

    // The specialist's answer and the end event land in one transaction.
    int64_t seq = next_seq_;
    json body = {{"text", answer}, {"citations", citations}, {"follow_ups", follow_ups}, {"routing", a.decision.to_json()},
                 {"stream_id", a.stream_id}};
    json meta = {{"stream_id", a.stream_id}, {"stop_reason", e.stop_reason}, {"model", e.model}, {"alias", e.alias},
                 {"provider", e.provider}, {"attempts", e.attempts},
                 {"usage", {{"input_tokens", e.input_tokens}, {"output_tokens", e.output_tokens}}},
                 {"reply_to", a.reply_to}, {"rule", a.decision.rule}};
    if (!e.error_code.empty()) meta["error"] = e.error_code;
    Batch batch;
    MessageRecord m{record_.id, seq, std::nullopt, "specialist", a.persona->id, seal("message", seq, dump(body)), dump(meta), unix_ms()};
    Store::message_insert(batch, m, record_.account_id);
    // Durable: once a client sees stream_end, the answer is in the consultation's history.
    emit(end, true, std::move(batch));
    if (!answer.empty()) history_.push_back({"specialist", answer});

    svc_.unregister_stream(a.stream_id);
    svc_.turn_ended();
    svc_.release_turn(a.account_id);
    active_.reset();
    start_next_turn();
}

bool Consultation::cancel(const std::string &stream_id) {
    if (!active_ || active_->stream_id != stream_id) return false;
    if (active_->turn) active_->turn->cancel();
    return true;
}

void Consultation::interrupt(const std::string &code) {
    if (!active_) return;
    TurnEvent e;
    e.kind = TurnEvent::Kind::end;
    e.stop_reason = "error";
    e.error_code = code;
    auto turn = active_->turn;
    end_turn(e);
    if (turn) turn->cancel();
}

void Consultation::erase() {
    erased_ = true;
    subscribers_.clear();
    for (const auto &q : queue_) svc_.release_turn(q.who.account_id);
    queue_.clear();
    interrupt("erased");
}

void Consultation::close_interrupted_stream(const std::string &stream_id) {
    emit({{"type", "stream_end"},
          {"stream_id", stream_id},
          {"stop_reason", "error"},
          {"citations", json::array()},
          {"follow_ups", json::array()},
          {"error", {{"code", "interrupted"}, {"message", "the server stopped while answering; please ask again"}}}},
         false);
}

void Consultation::release_reservation() {
    if (reserved_ <= last_seq()) return;
    reserved_ = last_seq();
    Batch b;
    Store::consultation_reserve_seq(b, record_.id, reserved_);
    svc_.deps().store.write_async(std::move(b), {});
}

}  // namespace consilium
