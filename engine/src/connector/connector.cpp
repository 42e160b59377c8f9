#include "connector/connector.hpp"

#include "util/log.hpp"

#include <algorithm>
#include <random>

namespace consilium {

using json = nlohmann::json;
using namespace std::chrono;

namespace {

milliseconds jitter(milliseconds base) {
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<long long> d(0, base.count());
    return base + milliseconds(d(rng));
}

// How long after cancel() a provider may take to confirm before the turn ends anyway.
constexpr milliseconds kCancelGrace{1500};
// While every eligible provider is at its concurrency limit, look again this often.
constexpr milliseconds kCapacityPoll{25};

// Failures that say a route is unhealthy (they open its breaker); the others say something about
// the request (too long, filtered, rejected).
bool counts_against_route(cs_error_kind k) {
    switch (k) {
    case CS_ERR_CONTENT_FILTER:
    case CS_ERR_CONTEXT_TOO_LONG:
    case CS_ERR_BAD_REQUEST: return false;
    default: return true;
    }
}

}  // namespace

Connector::Connector(Executor &executor, metrics::Registry &metrics, ConnectorSettings settings,
                     std::map<std::string, ModelInfo> models,
                     std::map<std::string, std::shared_ptr<ProviderClient>> providers)
    : executor_(executor), metrics_(metrics), settings_(settings), models_(std::move(models)),
      providers_(std::move(providers)) {}

CircuitBreaker &Connector::breaker(const ModelInfo &route) {
    std::lock_guard<std::mutex> lock(breakers_mu_);
    auto &b = breakers_[route.provider + "/" + route.model];
    if (!b) b = std::make_unique<CircuitBreaker>(settings_.breaker_failures, settings_.breaker_cooldown);
    return *b;
}

const ModelInfo *Connector::model(const std::string &alias) const {
    auto it = models_.find(alias);
    return it == models_.end() ? nullptr : &it->second;
}

std::shared_ptr<Turn> Connector::start(std::shared_ptr<Strand> strand, TurnRequest req,
                                       std::function<void(const TurnEvent &)> sink) {
    auto t = std::shared_ptr<Turn>(new Turn(*this, strand, std::move(req), std::move(sink)));
    strand->post([t] { t->begin(); });
    return t;
}

Turn::Turn(Connector &c, std::shared_ptr<Strand> strand, TurnRequest req, std::function<void(const TurnEvent &)> sink)
    : connector_(c), strand_(std::move(strand)), req_(std::move(req)), sink_(std::move(sink)) {}

void Turn::begin() {
    deadline_ = steady_clock::now() + connector_.settings_.turn_budget;
    std::vector<std::string> seen;
    for (const auto &alias : req_.aliases) {
        if (std::find(seen.begin(), seen.end(), alias) != seen.end()) continue;
        seen.push_back(alias);
        const ModelInfo *m = connector_.model(alias);
        if (!m) {
            log::warn("connector", "persona names an unknown model alias; skipped", {{"alias", alias}});
            continue;
        }
        if (!connector_.providers_.count(m->provider)) continue;
        if (req_.needs_vision && !m->vision) continue;
        if (req_.needs_pdf && !m->pdf) continue;
        routes_.push_back(*m);
    }
    if (routes_.empty()) {
        last_error_ = req_.needs_vision || req_.needs_pdf ? "no_capable_model" : "no_route";
        TurnEvent end;
        end.kind = TurnEvent::Kind::end;
        end.stop_reason = "error";
        end.error_code = last_error_;
        finish(end);
        return;
    }
    start_attempt();
}

void Turn::cancel() {
    auto self = shared_from_this();
    strand_->post([self] {
        if (self->done_ || self->cancelled_) return;
        self->cancelled_ = true;
        if (self->stream_) {
            self->stream_->cancel();
            // The provider confirms with END(cancelled); if it does not in time, end anyway.
            uint64_t id = self->attempt_id_;
            self->disarm_timer();
            self->timer_ = self->strand_->after(kCancelGrace, [self, id](bool cancelled) {
                if (cancelled || self->done_ || id != self->attempt_id_) return;
                TurnEvent end;
                end.kind = TurnEvent::Kind::end;
                end.stop_reason = "cancelled";
                self->finish(end);
            });
        } else {
            TurnEvent end;
            end.kind = TurnEvent::Kind::end;
            end.stop_reason = "cancelled";
            self->finish(end);
        }
    });
}

void Turn::arm_timer(milliseconds d, const char *which) {
    disarm_timer();
    auto left = duration_cast<milliseconds>(deadline_ - steady_clock::now());
    const char *kind = which;
    if (left < d) {
        d = std::max(left, milliseconds(1));
        kind = "turn_budget";
    }
    auto self = shared_from_this();
    uint64_t id = attempt_id_;
    timer_ = strand_->after(d, [self, id, kind](bool cancelled) {
        if (cancelled) return;
        self->timer_ = 0;
        self->on_timeout(id, kind);
    });
}

void Turn::disarm_timer() {
    if (timer_) strand_->cancel(timer_);
    timer_ = 0;
}

void Turn::next_attempt(milliseconds delay) {
    if (delay.count() <= 0) {
        start_attempt();
        return;
    }
    auto self = shared_from_this();
    disarm_timer();
    timer_ = strand_->after(delay, [self](bool cancelled) {
        if (cancelled) return;
        self->timer_ = 0;
        if (!self->done_) self->start_attempt();
    });
}

void Turn::start_attempt() {
    if (done_) return;
    TurnEvent end;
    end.kind = TurnEvent::Kind::end;
    if (cancelled_) {
        end.stop_reason = "cancelled";
        finish(end);
        return;
    }
    if (!pick_route() || attempts_ > connector_.settings_.max_retries || steady_clock::now() >= deadline_) {
        if (steady_clock::now() >= deadline_) last_error_ = "timeout";
        end.stop_reason = "error";
        end.error_code = last_error_;
        finish(end);
        return;
    }
    const ModelInfo &route = routes_[route_];
    auto provider = connector_.providers_.at(route.provider);
    if (!provider->has_capacity()) {
        // Every stream slot of this provider is taken: wait for one (within the turn budget).
        connector_.metrics_.counter("provider_queue_waits_total", "Attempts that waited for a free stream slot",
                                    {{"provider", route.provider}}).add(1);
        next_attempt(kCapacityPoll);
        return;
    }
    ++attempts_;
    ++attempt_id_;
    got_first_token_ = false;
    if (emitted_text_) {
        // The text the client has of the failed attempt is void: the next answer starts over.
        TurnEvent r;
        r.kind = TurnEvent::Kind::restart;
        r.text = last_error_;
        sink_(r);
        emitted_text_ = false;
    }
    json request = req_.build(route);
    request["model"] = route.model;
    if (!request.contains("max_tokens")) {
        int64_t max_tokens = connector_.settings_.max_tokens;
        if (route.max_output_tokens > 0) max_tokens = std::min(max_tokens, route.max_output_tokens);
        request["max_tokens"] = max_tokens;
    }
    request["timeouts"] = {{"connect_ms", connector_.settings_.connect_timeout.count()}};
    auto self = shared_from_this();
    uint64_t id = attempt_id_;
    std::string error;
    attempt_started_ = steady_clock::now();
    connector_.metrics_.counter("provider_attempts_total", "Model attempts started", {{"provider", route.provider}}).add(1);
    stream_ = provider->start(request.dump(-1, ' ', false, json::error_handler_t::replace),
                              [self, id](const StreamEvent &e) {
                                  self->strand_->post([self, id, e] { self->on_provider_event(id, e); });
                              },
                              error);
    if (!stream_) {
        log::warn("connector", "provider refused the request", {{"provider", route.provider}, {"alias", route.alias}});
        record(false, true);
        fail_attempt(CS_ERR_BAD_REQUEST, 0, -1);
        return;
    }
    arm_timer(std::min(connector_.settings_.first_token_timeout,
                       connector_.settings_.connect_timeout + connector_.settings_.first_token_timeout),
              "first_token");
}

bool Turn::pick_route() {
    auto eligible = [&](size_t r) { return context_floor_ == 0 || routes_[r].context_window > context_floor_; };
    while (route_ < routes_.size() && !eligible(route_)) ++route_;
    if (route_ >= routes_.size()) return false;
    if (same_route_retries_ > 0) return true;  // a retry of the same route was decided already
    // The first route whose breaker lets traffic through; when all are open, the first anyway
    // (someone has to probe, and the turn's attempts are bounded).
    for (size_t r = route_; r < routes_.size(); ++r) {
        if (!eligible(r)) continue;
        if (connector_.breaker(routes_[r]).allow()) {
            if (r != route_) {
                connector_.metrics_.counter("circuit_skips_total", "Attempts sent past an open circuit",
                                            {{"provider", routes_[route_].provider}}).add(1);
                route_ = r;
            }
            return true;
        }
    }
    return true;
}

void Turn::record(bool ok, bool neutral) {
    if (route_ >= routes_.size()) return;
    CircuitBreaker &b = connector_.breaker(routes_[route_]);
    if (neutral) b.neutral();
    else if (ok) b.success();
    else if (b.failure()) {
        log::warn("connector", "circuit opened", {{"provider", routes_[route_].provider}, {"model", routes_[route_].model}});
        connector_.metrics_.counter("circuit_opened_total", "Times a route's circuit opened",
                                    {{"provider", routes_[route_].provider}}).add(1);
    }
}

void Turn::abandon() {
    if (!stream_) return;
    // Cancelled upstream; kept until its terminal event arrives, then released.
    stream_->cancel();
    draining_[attempt_id_] = std::move(stream_);
    stream_.reset();
}

void Turn::on_provider_event(uint64_t attempt, const StreamEvent &e) {
    if (e.type == CS_EV_END || e.type == CS_EV_ERROR) draining_.erase(attempt);
    if (attempt != attempt_id_ || done_) return;  // a late event of an abandoned attempt
    switch (e.type) {
    case CS_EV_TEXT:
        if (cancelled_) return;
        if (!got_first_token_) {
            got_first_token_ = true;
            connector_.metrics_.histogram("provider_first_token_seconds", "Time from request to first text",
                                          {{"provider", routes_[route_].provider}})
                .observe(duration<double>(steady_clock::now() - attempt_started_).count());
        }
        arm_timer(connector_.settings_.idle_timeout, "stall");
        emitted_text_ = true;
        {
            TurnEvent t;
            t.kind = TurnEvent::Kind::text;
            t.text = e.text;
            sink_(t);
        }
        return;
    case CS_EV_CITATION: {
        json c = json::parse(e.text, nullptr, false);
        if (c.is_object()) {
            TurnEvent t;
            t.kind = TurnEvent::Kind::citation;
            t.citation = c;
            sink_(t);
        }
        return;
    }
    case CS_EV_USAGE:
        input_tokens_ = e.input_tokens;
        output_tokens_ = e.output_tokens;
        return;
    case CS_EV_MODEL:
        model_ = e.text;
        return;
    case CS_EV_END: {
        disarm_timer();
        stream_.reset();
        TurnEvent end;
        end.kind = TurnEvent::Kind::end;
        record(true, cancelled_ || e.stop_reason == CS_STOP_CANCELLED);
        if (cancelled_ || e.stop_reason == CS_STOP_CANCELLED) {
            end.stop_reason = "cancelled";
        } else if (e.stop_reason == CS_STOP_REFUSAL) {
            end.stop_reason = "refusal";
            end.error_code = "content_filter";
        } else {
            end.stop_reason = stop_reason_name(e.stop_reason);
        }
        if (e.input_tokens) input_tokens_ = e.input_tokens;
        if (e.output_tokens) output_tokens_ = e.output_tokens;
        finish(end);
        return;
    }
    case CS_EV_ERROR:
        disarm_timer();
        stream_.reset();
        if (cancelled_) {
            record(false, true);
            TurnEvent end;
            end.kind = TurnEvent::Kind::end;
            end.stop_reason = "cancelled";
            finish(end);
            return;
        }
        record(false, !counts_against_route(e.error_kind));
        fail_attempt(e.error_kind, e.http_status, e.retry_after_ms);
        return;
    }
}

void Turn::on_timeout(uint64_t attempt, const char *which) {
    if (attempt != attempt_id_ || done_ || !stream_) return;
    // Abandon the attempt: its late events are ignored by attempt id.
    abandon();
    if (std::string(which) != "turn_budget") record(false);
    else record(false, true);
    std::string what = which;
    log::warn("connector", "attempt timed out", {{"provider", routes_[route_].provider}, {"which", what}});
    if (what == "turn_budget") {
        last_error_ = "timeout";
        TurnEvent end;
        end.kind = TurnEvent::Kind::end;
        end.stop_reason = "error";
        end.error_code = "timeout";
        finish(end);
        return;
    }
    last_error_ = what == "stall" ? "stall" : "timeout";
    // A silent or stalled provider: fall back without retrying the same route.
    ++route_;
    same_route_retries_ = 0;
    next_attempt(milliseconds(0));
}

void Turn::fail_attempt(cs_error_kind kind, int http_status, int64_t retry_after_ms) {
    const ModelInfo &route = routes_[route_];
    last_error_ = error_kind_name(kind);
    connector_.metrics_.counter("provider_errors_total", "Model attempts that failed",
                                {{"provider", route.provider}, {"kind", last_error_}}).add(1);
    log::warn("connector", "attempt failed",
              {{"provider", route.provider}, {"alias", route.alias}, {"kind", last_error_}, {"status", http_status}});
    const auto &s = connector_.settings_;
    auto fall_back = [&] {
        ++route_;
        same_route_retries_ = 0;
        next_attempt(milliseconds(0));
    };
    switch (kind) {
    case CS_ERR_CONTENT_FILTER: {
        TurnEvent end;
        end.kind = TurnEvent::Kind::end;
        end.stop_reason = "refusal";
        end.error_code = "content_filter";
        finish(end);
        return;
    }
    case CS_ERR_RATE_LIMITED: {
        milliseconds wait = retry_after_ms >= 0 ? milliseconds(retry_after_ms) : jitter(milliseconds(250));
        if (same_route_retries_ < 1 && wait <= s.retry_after_cap) {
            ++same_route_retries_;
            next_attempt(wait);
        } else {
            fall_back();
        }
        return;
    }
    case CS_ERR_OVERLOADED:
    case CS_ERR_SERVER:
        if (same_route_retries_ < 1) {
            ++same_route_retries_;
            next_attempt(jitter(milliseconds(200)));
        } else {
            fall_back();
        }
        return;
    case CS_ERR_CONTEXT_TOO_LONG:
        context_floor_ = std::max(context_floor_, route.context_window);
        fall_back();
        return;
    case CS_ERR_AUTH: {
        log::error("connector", "provider rejected our credentials: operator action needed",
                   {{"provider", route.provider}, {"status", http_status}});
        connector_.metrics_.counter("provider_auth_failures_total", "Credential failures: operator action needed",
                                    {{"provider", route.provider}}).add(1);
        // Every route on this provider would fail the same way.
        std::string bad = route.provider;
        size_t next = route_ + 1;
        while (next < routes_.size() && routes_[next].provider == bad) ++next;
        route_ = next;
        same_route_retries_ = 0;
        next_attempt(milliseconds(0));
        return;
    }
    default:
        fall_back();
        return;
    }
}

void Turn::finish(TurnEvent end) {
    if (done_) return;
    done_ = true;
    disarm_timer();
    abandon();
    end.kind = TurnEvent::Kind::end;
    if (route_ < routes_.size()) {
        end.alias = routes_[route_].alias;
        end.provider = routes_[route_].provider;
        end.model = model_.empty() ? routes_[route_].model : model_;
    }
    end.input_tokens = input_tokens_;
    end.output_tokens = output_tokens_;
    end.attempts = attempts_;
    connector_.metrics_.counter("turns_total", "Turns ended, by stop reason", {{"stop_reason", end.stop_reason}}).add(1);
    sink_(end);
}

}  // namespace consilium
