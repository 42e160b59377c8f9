// The connector: every model call goes through here. It walks a turn's routes (the persona's
// preferred model aliases, then fallbacks), enforces per-attempt timeouts (connect, first token,
// stall) and a turn budget, and takes a typed decision on every failure (docs/connector.md):
// retry the same route, fall back, or give up with a clear error. Text that reached the client
// from a failed attempt is voided with a restart before a fallback answers from the start, so a
// cut-off answer is never presented as complete.
#pragma once

#include "connector/breaker.hpp"
#include "connector/provider_client.hpp"
#include "exec/executor.hpp"
#include "util/metrics.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace consilium {

struct ModelInfo {
    std::string alias;
    std::string provider;  // provider instance name
    std::string model;     // upstream model id
    int64_t context_window = 0;
    bool vision = false;
    bool pdf = false;
    int64_t max_output_tokens = 0;
};

struct ConnectorSettings {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds first_token_timeout{20000};
    std::chrono::milliseconds idle_timeout{15000};
    std::chrono::milliseconds turn_budget{120000};
    int max_retries = 2;
    int max_tokens = 1024;
    std::chrono::milliseconds retry_after_cap{2000};
    int breaker_failures = 5;                           // failures in a row that open a route's breaker
    std::chrono::milliseconds breaker_cooldown{10000};  // before the first probe
    int max_concurrent_per_provider = 64;               // streams at once per provider instance
};

// What the consultation sees of a turn's stream, on its strand, in order.
struct TurnEvent {
    enum class Kind { text, citation, restart, end } kind = Kind::text;
    std::string text;            // text: delta; restart: reason
    nlohmann::json citation;     // citation
    // end:
    std::string stop_reason;     // end_turn | max_tokens | cancelled | refusal | error
    std::string error_code;      // for error/refusal: rate_limited, timeout, content_filter, ...
    std::string model;           // upstream model that answered
    std::string alias;
    std::string provider;
    int64_t input_tokens = 0;
    int64_t output_tokens = 0;
    int attempts = 0;
};

struct TurnRequest {
    std::vector<std::string> aliases;  // in preference order
    bool needs_vision = false;
    bool needs_pdf = false;
    // Builds the model request (docs/plugins.md) for one route.
    std::function<nlohmann::json(const ModelInfo &)> build;
};

class Connector;

class Turn : public std::enable_shared_from_this<Turn> {
public:
    // Cancels the turn: the current attempt is aborted and the turn ends with `cancelled`.
    void cancel();

private:
    friend class Connector;
    Turn(Connector &c, std::shared_ptr<Strand> strand, TurnRequest req, std::function<void(const TurnEvent &)> sink);
    void begin();
    void next_attempt(std::chrono::milliseconds delay);
    void start_attempt();
    void on_provider_event(uint64_t attempt, const StreamEvent &e);
    void on_timeout(uint64_t attempt, const char *which);
    void fail_attempt(cs_error_kind kind, int http_status, int64_t retry_after_ms);
    void finish(TurnEvent end);
    void arm_timer(std::chrono::milliseconds d, const char *which);
    void disarm_timer();
    void abandon();
    // Picks the route for the next attempt (breakers), or returns false when none is eligible.
    bool pick_route();
    void record(bool ok, bool neutral = false);

    Connector &connector_;
    std::shared_ptr<Strand> strand_;
    TurnRequest req_;
    std::function<void(const TurnEvent &)> sink_;
    std::vector<ModelInfo> routes_;
    size_t route_ = 0;
    int attempts_ = 0;
    int same_route_retries_ = 0;
    uint64_t attempt_id_ = 0;
    std::shared_ptr<ProviderStream> stream_;
    std::map<uint64_t, std::shared_ptr<ProviderStream>> draining_;  // cancelled, awaiting their end
    bool emitted_text_ = false;   // text of the current attempt reached the consultation
    bool got_first_token_ = false;
    bool cancelled_ = false;
    bool done_ = false;
    TimerId timer_ = 0;
    std::chrono::steady_clock::time_point deadline_;
    int64_t context_floor_ = 0;   // after context_too_long: only larger windows
    std::string last_error_ = "no_route";
    std::string model_;
    int64_t input_tokens_ = 0, output_tokens_ = 0;
    std::chrono::steady_clock::time_point attempt_started_;
};

class Connector {
public:
    Connector(Executor &executor, metrics::Registry &metrics, ConnectorSettings settings,
              std::map<std::string, ModelInfo> models, std::map<std::string, std::shared_ptr<ProviderClient>> providers);

    // Starts a turn; events go to sink on `strand`.
    std::shared_ptr<Turn> start(std::shared_ptr<Strand> strand, TurnRequest req,
                                std::function<void(const TurnEvent &)> sink);

    const ConnectorSettings &settings() const { return settings_; }
    const std::map<std::string, ModelInfo> &models() const { return models_; }
    const ModelInfo *model(const std::string &alias) const;
    CircuitBreaker &breaker(const ModelInfo &route);

private:
    friend class Turn;
    std::mutex breakers_mu_;
    std::map<std::string, std::unique_ptr<CircuitBreaker>> breakers_;
    Executor &executor_;
    metrics::Registry &metrics_;
    ConnectorSettings settings_;
    std::map<std::string, ModelInfo> models_;
    std::map<std::string, std::shared_ptr<ProviderClient>> providers_;
};

}  // namespace consilium
