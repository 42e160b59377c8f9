#include "consult/service.hpp"
#include "util/clock.hpp"

#include "util/ids.hpp"
#include "util/log.hpp"

#include <thread>

namespace consilium {

using json = nlohmann::json;
using namespace std::chrono;

namespace {
}  // namespace

ConsultationService::ConsultationService(Deps deps, ServiceSettings settings)
    : deps_(std::move(deps)), settings_(std::move(settings)) {}

ConsultationService::~ConsultationService() = default;

json ConsultationService::error_frame(const std::string &code, const std::string &message, const std::string &reply_to) {
    json j = {{"type", "error"}, {"code", code}, {"message", message}};
    if (!reply_to.empty()) j["reply_to"] = reply_to;
    return j;
}

void ConsultationService::turn_started() {
    ++active_turns_;
    deps_.metrics.gauge("active_streams", "Answers being streamed now").add(1);
}

void ConsultationService::turn_ended() {
    --active_turns_;
    deps_.metrics.gauge("active_streams", "Answers being streamed now").add(-1);
}

bool ConsultationService::acquire_turn(const Principal &who) {
    std::lock_guard<std::mutex> lock(mu_);
    int &n = turns_by_account_[who.account_id];
    if (n >= (who.guest ? settings_.guest_concurrent_turns : settings_.concurrent_turns)) {
        if (n == 0) turns_by_account_.erase(who.account_id);
        return false;
    }
    ++n;
    return true;
}

void ConsultationService::release_turn(const std::string &account_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = turns_by_account_.find(account_id);
    if (it == turns_by_account_.end()) return;
    if (--it->second <= 0) turns_by_account_.erase(it);
}

void ConsultationService::register_stream(const std::string &stream_id, const std::string &consultation_id) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_[stream_id] = consultation_id;
}

void ConsultationService::unregister_stream(const std::string &stream_id) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.erase(stream_id);
}

std::shared_ptr<Consultation> ConsultationService::get(const std::string &id) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = live_.find(id);
        if (it != live_.end()) return it->second;
    }
    auto rec = deps_.store.consultation(id);  // throws StorageError
    if (!rec) return nullptr;
    auto c = std::make_shared<Consultation>(*this, *rec, true, Strand::make(deps_.executor));
    // A stream the previous process left open (it crashed) gets its end now.
    int64_t from = std::max<int64_t>(0, rec->last_seq - 2000);
    std::vector<std::string> open;
    for (const auto &ev : deps_.store.events_after(id, from, 2100)) {
        if (ev.type != "stream_start" && ev.type != "stream_end") continue;
        auto plain = deps_.sealer.open(ev.body_sealed, "event:" + id + ":" + std::to_string(ev.seq));
        if (!plain) continue;
        json e = json::parse(*plain, nullptr, false);
        if (!e.is_object()) continue;
        std::string sid = e.value("stream_id", "");
        if (ev.type == "stream_start") open.push_back(sid);
        else open.erase(std::remove(open.begin(), open.end(), sid), open.end());
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = live_.emplace(id, c);
    if (inserted && !open.empty()) {
        auto self = it->second;
        self->strand()->post([self, open] {
            for (const auto &sid : open) self->close_interrupted_stream(sid);
        });
    }
    return it->second;
}

std::shared_ptr<Consultation> ConsultationService::create(const Principal &who, const std::string &profile_id) {
    ConsultationRecord rec;
    rec.id = new_id("c");
    rec.account_id = who.account_id;
    rec.profile_id = profile_id;
    rec.created_ms = rec.updated_ms = unix_ms();
    auto c = std::make_shared<Consultation>(*this, rec, false, Strand::make(deps_.executor));
    std::lock_guard<std::mutex> lock(mu_);
    live_.emplace(rec.id, c);
    return c;
}

void ConsultationService::audit(const Principal &who, const char *action, const char *outcome,
                                const std::optional<std::string> &profile_id, const std::string &consultation_id) {
    if (!deps_.audit) return;
    AuditActor a;
    a.account = who.account_id;
    a.role = who.role;
    if (!who.peer.empty()) a.peer = who.peer;
    AuditEvent e;
    e.action = action;
    e.outcome = outcome;
    e.profile_id = profile_id;
    if (!consultation_id.empty()) e.target = "consultation:" + consultation_id;
    e.detail = {{"channel", "chat"}};
    deps_.audit->record(a, e);
}

void ConsultationService::submit(const Principal &who, Incoming msg, std::shared_ptr<Subscriber> sub) {
    // Storage reads may block: leave the transport's thread at once.
    deps_.executor.post([this, who, msg = std::move(msg), sub]() mutable { do_submit(who, std::move(msg), sub); });
}

void ConsultationService::do_submit(const Principal &who, Incoming msg, std::shared_ptr<Subscriber> sub) {
    if (!accepting_) {
        sub->reply(error_frame("shutting_down", "the server is restarting; reconnect and send again", msg.client_id));
        return;
    }
    try {
        std::shared_ptr<Consultation> c;
        if (!msg.consultation_id.empty()) {
            c = get(msg.consultation_id);
            if (!c || c->record().account_id != who.account_id) {
                // Someone else's consultation answers exactly like a missing one.
                audit(who, "consultation.message", "not_found", std::nullopt, msg.consultation_id);
                sub->reply(error_frame("not_found", "no such consultation", msg.client_id));
                return;
            }
            if (!msg.profile_id.empty() && msg.profile_id != c->record().profile_id) {
                sub->reply(error_frame("invalid_field", "profile_id does not match the consultation's profile", msg.client_id));
                return;
            }
        } else {
            // The same idempotency key already started a consultation: continue there.
            if (auto found = deps_.store.message_by_client_id(who.account_id, msg.client_id)) {
                c = get(found->first);
            } else {
                std::string profile_id = msg.profile_id;
                if (profile_id.empty()) {
                    for (const auto &p : deps_.store.profiles(who.account_id))
                        if (p.relation == "self") profile_id = p.id;
                } else {
                    auto p = deps_.store.profile(profile_id);
                    if (!p || p->account_id != who.account_id) {
                        audit(who, "consultation.message", "not_found", profile_id, "");
                        sub->reply(error_frame("not_found", "no such profile", msg.client_id));
                        return;
                    }
                }
                if (profile_id.empty()) {
                    sub->reply(error_frame("not_found", "this account has no profile", msg.client_id));
                    return;
                }
                c = create(who, profile_id);
            }
        }
        if (!msg.specialist.empty() && !deps_.panel()->find(msg.specialist)) {
            sub->reply(error_frame("invalid_field", "unknown specialist", msg.client_id));
            return;
        }
        audit(who, "consultation.message", "ok", c->record().profile_id, c->record().id);
        c->strand()->post([c, who, msg = std::move(msg), sub]() mutable { c->submit(who, std::move(msg), sub); });
    } catch (const StorageError &e) {
        log::error("consultations", "storage failed on submit", {{"why", e.what()}});
        sub->reply(error_frame("storage_unavailable", "the message could not be stored; send it again", msg.client_id));
    }
}

void ConsultationService::resume(const Principal &who, const std::string &consultation_id, int64_t after_seq,
                                 std::shared_ptr<Subscriber> sub) {
    deps_.executor.post([this, who, consultation_id, after_seq, sub] {
        try {
            auto c = get(consultation_id);
            if (!c || c->record().account_id != who.account_id) {
                audit(who, "consultation.resume", "not_found", std::nullopt, consultation_id);
                sub->reply(error_frame("not_found", "no such consultation"));
                return;
            }
            audit(who, "consultation.resume", "ok", c->record().profile_id, consultation_id);
            c->strand()->post([c, after_seq, sub] { c->resume(after_seq, sub); });
        } catch (const StorageError &e) {
            log::error("consultations", "storage failed on resume", {{"why", e.what()}});
            sub->reply(error_frame("storage_unavailable", "the consultation could not be read; try again"));
        }
    });
}

void ConsultationService::cancel(const Principal &who, const std::string &stream_id, std::shared_ptr<Subscriber> sub) {
    std::shared_ptr<Consultation> c;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto s = streams_.find(stream_id);
        if (s != streams_.end()) {
            auto it = live_.find(s->second);
            if (it != live_.end()) c = it->second;
        }
    }
    if (!c || c->record().account_id != who.account_id) {
        sub->reply(error_frame("not_found", "no such stream (it may have ended already)"));
        return;
    }
    c->strand()->post([c, stream_id, sub] {
        if (!c->cancel(stream_id)) sub->reply(error_frame("not_found", "no such stream (it may have ended already)"));
    });
}

std::shared_ptr<Consultation> ConsultationService::open_for_voice(const Principal &who, const std::string &consultation_id,
                                                                  const std::string &profile_id, std::string &error) {
    std::shared_ptr<Consultation> c;
    if (!consultation_id.empty()) {
        c = get(consultation_id);
        if (!c || c->record().account_id != who.account_id) {
            error = "not_found";
            return nullptr;
        }
        return c;
    }
    std::string pid = profile_id;
    if (pid.empty()) {
        for (const auto &p : deps_.store.profiles(who.account_id))
            if (p.relation == "self") pid = p.id;
    } else {
        auto p = deps_.store.profile(pid);
        if (!p || p->account_id != who.account_id) pid.clear();
    }
    if (pid.empty()) {
        error = "not_found";
        return nullptr;
    }
    // Stored now, on this thread, before anyone can see it (nothing waits on a strand here).
    ConsultationRecord rec;
    rec.id = new_id("c");
    rec.account_id = who.account_id;
    rec.profile_id = pid;
    rec.created_ms = rec.updated_ms = unix_ms();
    try {
        Batch b;
        Store::consultation_insert(b, rec);
        deps_.store.write(b);
    } catch (const StorageError &) {
        error = "storage_unavailable";
        return nullptr;
    }
    c = std::make_shared<Consultation>(*this, rec, true, Strand::make(deps_.executor));
    std::lock_guard<std::mutex> lock(mu_);
    live_.emplace(rec.id, c);
    return c;
}

void ConsultationService::voice_item(const Principal &who, const std::shared_ptr<Consultation> &c, const std::string &role,
                                     const std::string &item_id, const std::string &text, const Persona *persona,
                                     std::shared_ptr<const Panel> panel, std::function<void(bool)> done) {
    // `panel` keeps `persona` alive until the strand has used it.
    c->strand()->post([c, who, role, item_id, text, persona, panel, done] {
        c->add_voice_item(who, role, item_id, text, persona, done);
    });
}

void ConsultationService::forget(const std::string &account_id, const std::optional<std::string> &profile_id) {
    std::vector<std::shared_ptr<Consultation>> matching;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = live_.begin(); it != live_.end();) {
            const auto &rec = it->second->record();
            if (rec.account_id == account_id && (!profile_id || rec.profile_id == *profile_id)) {
                matching.push_back(it->second);
                it = live_.erase(it);
            } else {
                ++it;
            }
        }
    }
    auto pending = std::make_shared<std::atomic<size_t>>(matching.size());
    for (auto &c : matching) c->strand()->post([c, pending] {
        c->erase();
        --*pending;
    });
    auto until = steady_clock::now() + seconds(10);
    while (*pending > 0 && steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(2));
    deps_.store.flush();  // what they queued before is written, so the delete comes last
}

void ConsultationService::sweep(seconds idle) {
    std::vector<std::shared_ptr<Consultation>> all;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto &[id, c] : live_) all.push_back(c);
    }
    for (auto &c : all) {
        c->strand()->post([this, c, idle] {
            if (!c->idle_for(idle)) return;
            std::lock_guard<std::mutex> lock(mu_);
            live_.erase(c->id());
        });
    }
}

void ConsultationService::drain(milliseconds deadline) {
    accepting_ = false;
    auto until = steady_clock::now() + deadline;
    while (active_turns_ > 0 && steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
    std::vector<std::shared_ptr<Consultation>> all;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto &[id, c] : live_) all.push_back(c);
    }
    std::atomic<size_t> pending{all.size()};
    for (auto &c : all) {
        c->strand()->post([c, &pending] {
            c->interrupt("shutting_down");
            c->release_reservation();
            --pending;
        });
    }
    auto hard = steady_clock::now() + seconds(5);
    while (pending > 0 && steady_clock::now() < hard) std::this_thread::sleep_for(milliseconds(5));
    // Let the strands deliver what they emitted (the stream_end frames) before storage flushes.
    std::this_thread::sleep_for(milliseconds(50));
    deps_.store.flush();
}

}  // namespace consilium
