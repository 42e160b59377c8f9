// The mock provider plugin (CONTRACT.md "The mock provider"): deterministic for a seed, paced
// like a real model (first-token delay, tokens per second), answering in the persona's voice
// with citations and follow-ups, and able to misbehave on purpose (faults) so that every path of
// the connector can be exercised without a network.
#include "reply.hpp"

#include <consilium/sdk/provider.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace {

using consilium::sdk::Error;
using consilium::sdk::Host;
using consilium::sdk::json;
using consilium::sdk::StreamSink;
using namespace consilium::mock;

// What a stream does, chosen per request from the fault rates.
enum class Behaviour { normal, rate_limit, overloaded, server_error, timeout, refusal, disconnect, stall, context_too_long };

struct Options {
    double tokens_per_second;
    int64_t first_token_ms;
    int64_t reply_tokens;
    uint64_t seed;
    int64_t retry_after_ms;
    std::vector<std::pair<Behaviour, double>> faults;
    std::vector<std::string> faults_for;  // upstream model ids the faults apply to; empty = all
};

class MockStream : public consilium::sdk::Stream, public std::enable_shared_from_this<MockStream> {
public:
    MockStream(Host host, StreamSink sink, std::vector<std::string> tokens, Behaviour b, const Options &o,
               int64_t input_tokens)
        : host_(host), sink_(std::move(sink)), tokens_(std::move(tokens)), behaviour_(b), opts_(o),
          input_tokens_(input_tokens) {}

    void begin(const std::string &model) {
        sink_.model(model);
        auto self = shared_from_this();
        int64_t delay = opts_.first_token_ms;
        switch (behaviour_) {
        case Behaviour::rate_limit:
            schedule(10, [self] { self->fail(CS_ERR_RATE_LIMITED, "mock: rate limited", 429, self->opts_.retry_after_ms); });
            return;
        case Behaviour::overloaded:
            schedule(10, [self] { self->fail(CS_ERR_OVERLOADED, "mock: overloaded", 529); });
            return;
        case Behaviour::server_error:
            schedule(10, [self] { self->fail(CS_ERR_SERVER, "mock: internal server error", 500); });
            return;
        case Behaviour::context_too_long:
            schedule(10, [self] { self->fail(CS_ERR_CONTEXT_TOO_LONG, "mock: prompt is too long", 400); });
            return;
        case Behaviour::timeout:
            return;  // accepts and never answers; only cancel() ends it
        default: break;
        }
        schedule(delay, [self] { self->tick(); });
    }

    void cancel() override {
        std::lock_guard<std::mutex> lock(mu_);
        if (done_) return;
        done_ = true;
        if (timer_) host_.cancel(timer_);
        timer_ = nullptr;
        sink_.end(CS_STOP_CANCELLED);
    }

private:
    void fail(cs_error_kind kind, const char *message, int status, int64_t retry_after_ms = -1) {
        std::lock_guard<std::mutex> lock(mu_);
        if (done_) return;
        done_ = true;
        sink_.error(kind, message, status, retry_after_ms);
    }

    void schedule(int64_t ms, std::function<void()> fn) {
        std::lock_guard<std::mutex> lock(mu_);
        if (done_) return;
        auto self = shared_from_this();
        timer_ = host_.after(static_cast<uint64_t>(std::max<int64_t>(ms, 0)), [self, fn](bool cancelled) {
            if (cancelled) return;
            {
                std::lock_guard<std::mutex> l(self->mu_);
                self->timer_ = nullptr;
                if (self->done_) return;
            }
            fn();
        });
    }

    // Emits the next token(s); at full speed, everything in one go.
    void tick() {
        size_t burst = opts_.tokens_per_second <= 0 ? tokens_.size() : 1;
        for (size_t i = 0; i < burst; ++i) {
            std::lock_guard<std::mutex> lock(mu_);
            if (done_) return;
            size_t half = tokens_.size() / 2;
            if ((behaviour_ == Behaviour::disconnect || behaviour_ == Behaviour::stall) && next_ >= half) {
                if (behaviour_ == Behaviour::stall) return;  // goes silent, never ends by itself
                done_ = true;
                sink_.error(CS_ERR_CONNECTION, "mock: connection closed mid-stream", 0);
                return;
            }
            if (behaviour_ == Behaviour::refusal && next_ >= std::min<size_t>(3, tokens_.size())) {
                done_ = true;
                sink_.usage(input_tokens_, static_cast<int64_t>(next_));
                sink_.end(CS_STOP_REFUSAL);
                return;
            }
            if (next_ >= tokens_.size()) {
                done_ = true;
                sink_.usage(input_tokens_, static_cast<int64_t>(tokens_.size()));
                sink_.end(CS_STOP_END_TURN);
                return;
            }
            sink_.text(tokens_[next_++]);
        }
        if (opts_.tokens_per_second <= 0) {
            auto self = shared_from_this();
            host_.post([self] { self->tick(); });
            return;
        }
        auto self = shared_from_this();
        schedule(static_cast<int64_t>(1000.0 / opts_.tokens_per_second), [self] { self->tick(); });
    }

    Host host_;
    StreamSink sink_;
    std::vector<std::string> tokens_;
    Behaviour behaviour_;
    Options opts_;
    int64_t input_tokens_;
    std::mutex mu_;
    bool done_ = false;
    size_t next_ = 0;
    cs_timer *timer_ = nullptr;
};

// The handle the host holds; the stream itself lives as long as its timers need it.
class StreamHandle : public consilium::sdk::Stream {
public:
    explicit StreamHandle(std::shared_ptr<MockStream> s) : s_(std::move(s)) {}
    void cancel() override { s_->cancel(); }

private:
    std::shared_ptr<MockStream> s_;
};

// A voice relay that behaves like the realtime service enough to exercise the engine: it answers
// session.update, and each committed input (text or audio) with a transcript of the patient's
// turn and a spoken answer's transcript, in the GA event shapes.
class MockRelay : public consilium::sdk::Relay, public std::enable_shared_from_this<MockRelay> {
public:
    MockRelay(Host host, consilium::sdk::RelaySink sink, json request)
        : host_(host), sink_(std::move(sink)), request_(std::move(request)) {}

    void begin() {
        emit({{"type", "session.created"},
              {"session", {{"type", "realtime"}, {"model", request_.value("model", "mock-realtime")},
                           {"instructions", ""}}}});
    }
    void send(std::string_view frame) override {
        json f = json::parse(frame, nullptr, false);
        if (!f.is_object()) {
            emit({{"type", "error"}, {"error", {{"type", "invalid_request_error"}, {"message", "not JSON"}}}});
            return;
        }
        std::string type = f.value("type", "");
        if (type == "session.update") {
            emit({{"type", "session.updated"}, {"session", f.value("session", json::object())}});
        } else if ((type == "conversation.item.create" && f.contains("item") && f["item"].value("role", "") == "user") ||
                   type == "input_audio_buffer.commit") {
            // Only the patient's input is transcribed and answered (system items are context).
            std::string text = "(spoken words)";
            if (f.contains("item") && f["item"].contains("content"))
                for (const auto &c : f["item"]["content"])
                    if (c.value("type", "") == "input_text") text = c.value("text", text);
            std::string item = "item_" + std::to_string(++items_);
            emit({{"type", "conversation.item.input_audio_transcription.completed"}, {"item_id", item},
                  {"content_index", 0}, {"transcript", text}});
            std::string answer = "Thank you. I understand. Could you tell me when this started?";
            std::string out = "item_" + std::to_string(++items_);
            emit({{"type", "response.created"}, {"response", {{"id", "resp_" + out}}}});
            emit({{"type", "response.output_audio_transcript.delta"}, {"item_id", out}, {"delta", answer}});
            emit({{"type", "response.output_audio_transcript.done"}, {"item_id", out}, {"transcript", answer}});
            emit({{"type", "response.done"}, {"response", {{"id", "resp_" + out}, {"status", "completed"}}}});
        }
    }
    void close() override {
        auto self = shared_from_this();
        host_.post([self] { self->sink_.close(1000, "closed"); });
    }

private:
    void emit(json event) {
        auto self = shared_from_this();
        std::string text = event.dump();
        host_.post([self, text] { self->sink_.frame(text); });
    }

    Host host_;
    consilium::sdk::RelaySink sink_;
    json request_;
    int items_ = 0;
};

class RelayHandle : public consilium::sdk::Relay {
public:
    explicit RelayHandle(std::shared_ptr<MockRelay> r) : r_(std::move(r)) {}
    void send(std::string_view frame) override { r_->send(frame); }
    void close() override { r_->close(); }

private:
    std::shared_ptr<MockRelay> r_;
};

class MockProvider : public consilium::sdk::Provider {
public:
    static json defaults() {
        return {{"tokens_per_second", 20.0},
                {"first_token_ms", 200},
                {"reply_tokens", 120},
                {"seed", 1},
                {"retry_after_ms", 1000},
                {"faults_for", json::array()},
                {"faults",
                 {{"rate_limit", 0.0},
                  {"overloaded", 0.0},
                  {"server_error", 0.0},
                  {"timeout", 0.0},
                  {"refusal", 0.0},
                  {"disconnect_mid_stream", 0.0},
                  {"stall", 0.0},
                  {"context_too_long", 0.0}}}};
    }

    MockProvider(Host host, const std::string &path, const json &o) : host_(host) {
        using consilium::sdk::option_int;
        using consilium::sdk::option_number;
        opts_.tokens_per_second = option_number(o, path, "tokens_per_second", 0, 100000);
        opts_.first_token_ms = option_int(o, path, "first_token_ms", 0, 600000);
        opts_.reply_tokens = option_int(o, path, "reply_tokens", 1, 100000);
        opts_.seed = static_cast<uint64_t>(option_int(o, path, "seed", 0, INT64_MAX));
        opts_.retry_after_ms = option_int(o, path, "retry_after_ms", 0, 600000);
        for (const auto &m : o.at("faults_for")) {
            if (!m.is_string()) throw Error(CS_E_INVALID, path + ".faults_for: a list of model ids");
            opts_.faults_for.push_back(m);
        }
        const json &f = o.at("faults");
        std::string fp = path + ".faults";
        static const std::pair<const char *, Behaviour> kinds[] = {
            {"rate_limit", Behaviour::rate_limit},   {"overloaded", Behaviour::overloaded},
            {"server_error", Behaviour::server_error}, {"timeout", Behaviour::timeout},
            {"refusal", Behaviour::refusal},         {"disconnect_mid_stream", Behaviour::disconnect},
            {"stall", Behaviour::stall},             {"context_too_long", Behaviour::context_too_long}};
        double total = 0;
        for (const auto &[name, b] : kinds) {
            double rate = option_number(f, fp, name, 0, 1);
            total += rate;
            opts_.faults.emplace_back(b, rate);
        }
        if (total > 1.0 + 1e-9) throw Error(CS_E_INVALID, fp + ": the rates add up to more than 1");
    }

    std::unique_ptr<consilium::sdk::Stream> start(const json &request, StreamSink sink) override {
        if (!request.contains("messages") || !request["messages"].is_array() || request["messages"].empty())
            throw Error(CS_E_INVALID, "mock: the request has no messages");
        std::string model = request.value("model", "mock");
        uint64_t n = counter_.fetch_add(1);
        Rng rng(opts_.seed * 1000003u + n);
        Behaviour b = Behaviour::normal;
        bool faults_apply = opts_.faults_for.empty() ||
                            std::find(opts_.faults_for.begin(), opts_.faults_for.end(), model) != opts_.faults_for.end();
        if (faults_apply) {
            double r = rng.unit(), acc = 0;
            for (const auto &[kind, rate] : opts_.faults) {
                acc += rate;
                if (r < acc) {
                    b = kind;
                    break;
                }
            }
        }
        int64_t max_tokens = request.value("max_tokens", opts_.reply_tokens);
        size_t target = static_cast<size_t>(std::min<int64_t>(opts_.reply_tokens, std::max<int64_t>(max_tokens, 1)));
        auto tokens = tokens_of(compose_reply(request, opts_.seed, target));
        int64_t input_tokens = static_cast<int64_t>(request.dump().size() / 4);
        auto s = std::make_shared<MockStream>(host_, std::move(sink), std::move(tokens), b, opts_, input_tokens);
        s->begin(model);
        return std::make_unique<StreamHandle>(s);
    }

    json voice_session(const json &request) override {
        uint64_t n = counter_.fetch_add(1);
        return {{"client_secret", "mock_ek_" + std::to_string(fnv1a(request.dump()) ^ n)},
                {"expires_at", host_.now_unix_ms() / 1000 + request.value("expires_after_s", 600)},
                {"model", request.value("model", "mock-realtime")},
                {"voice", request.value("voice", "alloy")},
                {"webrtc_url", "mock://realtime/calls"}};
    }

    std::unique_ptr<consilium::sdk::Relay> open_relay(const json &request, consilium::sdk::RelaySink sink) override {
        auto r = std::make_shared<MockRelay>(host_, std::move(sink), request);
        r->begin();
        return std::make_unique<RelayHandle>(r);
    }

private:
    Host host_;
    Options opts_;
    std::atomic<uint64_t> counter_{0};
};

}  // namespace

CONSILIUM_PROVIDER_PLUGIN(MockProvider, "mock", "1.0.0",
                          "Deterministic mock model: paced replies in the persona's voice, with fault injection")
