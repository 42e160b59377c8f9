// tests/providers/common/provider_test_support.hpp: what the HTTP provider plugin tests share:
// an event collector for one stream (checks "exactly one terminal event, nothing after it"), a
// fixture that loads a plugin through PluginHarness against a fake server, and host-log capture
// to prove that keys and content never reach the logs.
#pragma once

#include "fake_provider_server.hpp"
#include "test_support.hpp"
#include "util/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace consilium::test {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline std::string protocols_dir() { return std::string(CONSILIUM_TEST_SHARED_DIR) + "/protocols"; }

// Everything one stream delivered. LIFETIME: the sink context; must outlive the stream's
// terminal event (the fixture keeps it until after the plugin is destroyed).
struct Collected {
    std::mutex mu;
    std::condition_variable cv;
    std::string text;
    std::string model;
    std::vector<json> citations;
    int64_t input_tokens = -1, output_tokens = -1;
    int usage_events = 0;
    int terminal = 0;
    int after_terminal = 0;  // events delivered after the terminal one (must stay 0)
    cs_stream_event last{};
    std::string message;  // the terminal error's text
    Clock::time_point terminal_at{};

    static void on(void *ctx, const cs_stream_event *e) {
        auto *self = static_cast<Collected *>(ctx);
        std::lock_guard<std::mutex> lock(self->mu);
        if (self->terminal > 0) {
            ++self->after_terminal;
            return;
        }
        std::string t = e->text.data ? std::string(e->text.data, e->text.size) : std::string();
        switch (e->type) {
        case CS_EV_TEXT: self->text += t; break;
        case CS_EV_MODEL: self->model = t; break;
        case CS_EV_CITATION: self->citations.push_back(json::parse(t, nullptr, false)); break;
        case CS_EV_USAGE:
            ++self->usage_events;
            self->input_tokens = e->input_tokens;
            self->output_tokens = e->output_tokens;
            break;
        case CS_EV_END:
        case CS_EV_ERROR:
            ++self->terminal;
            self->last = *e;
            self->last.text = {};
            self->message = t;
            self->terminal_at = Clock::now();
            self->cv.notify_all();
            break;
        default: break;
        }
    }
    bool wait(std::chrono::milliseconds d = 10s) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, d, [this] { return terminal > 0; });
    }
    bool ended_with(cs_stop_reason r) {
        std::lock_guard<std::mutex> lock(mu);
        return terminal == 1 && last.type == CS_EV_END && last.stop_reason == static_cast<uint32_t>(r);
    }
    bool failed_with(cs_error_kind k) {
        std::lock_guard<std::mutex> lock(mu);
        return terminal == 1 && last.type == CS_EV_ERROR && last.error_kind == static_cast<uint32_t>(k);
    }
    std::string describe() {
        std::lock_guard<std::mutex> lock(mu);
        if (terminal == 0) return "no terminal event";
        if (last.type == CS_EV_END) return "END stop_reason=" + std::to_string(last.stop_reason);
        return "ERROR kind=" + std::to_string(last.error_kind) + " status=" + std::to_string(last.http_status) +
               " retry_after_ms=" + std::to_string(last.retry_after_ms) + " message=" + message;
    }
};

struct StreamRun {
    Collected ev;
    cs_stream *stream = nullptr;
    cs_status status = CS_OK;
    cs_error err{};
    bool released = false;
};

// Captures the host's log lines (all levels) while alive.
class LogCapture {
public:
    LogCapture() {
        std::lock_guard<std::mutex> lock(mu());
        text().clear();
        log::set_level(log::Level::debug);
        log::set_sink(&LogCapture::sink);
    }
    ~LogCapture() {
        log::set_sink(nullptr);
        log::set_level(log::Level::info);
    }
    static std::string captured() {
        std::lock_guard<std::mutex> lock(mu());
        return text();
    }

private:
    static std::mutex &mu() {
        static std::mutex m;
        return m;
    }
    static std::string &text() {
        static std::string t;
        return t;
    }
    static void sink(std::string_view line) {
        std::lock_guard<std::mutex> lock(mu());
        text().append(line);
    }
};

// A provider plugin instance talking to a fake server. Streams started through it are collected
// in `runs`, which outlive the plugin (the plugin's destructor may still end streams).
class ProviderFixture : public ::testing::Test {
protected:
    std::deque<StreamRun> runs;  // declared first: destroyed last
    TempDir dir;
    std::unique_ptr<fakes::FakeProviderServer> fake;
    std::unique_ptr<PluginHarness> harness;

    void TearDown() override {
        for (auto &r : runs) {
            if (r.stream && !r.released) {
                if (!r.ev.wait(0ms)) cancel(r);
                r.ev.wait(5s);
                release(r);
            }
        }
        harness.reset();
        fake.reset();
    }

    void start_fake(fakes::FakeKind kind, const std::string &script = "") {
        fake = std::make_unique<fakes::FakeProviderServer>(kind, protocols_dir());
        if (!script.empty()) fake->set_script(script);
    }

    void load(const std::string &plugin_id, const json &options) {
        harness = std::make_unique<PluginHarness>("provider", plugin_id, options.dump(), dir.str());
    }

    const cs_provider_vtable *vt() const { return harness->instance->vtable<cs_provider_vtable>(); }

    StreamRun &start(const json &request) {
        StreamRun &r = runs.emplace_back();
        cs_stream_sink sink{sizeof(cs_stream_sink), &r.ev, &Collected::on};
        std::string body = request.dump();
        r.status = vt()->stream_start(harness->instance->instance(), {body.data(), body.size()}, &sink, &r.stream, &r.err);
        return r;
    }
    void cancel(StreamRun &r) { vt()->stream_cancel(harness->instance->instance(), r.stream); }
    void release(StreamRun &r) {
        if (r.stream && !r.released) vt()->stream_release(harness->instance->instance(), r.stream);
        r.released = true;
    }
    // Starts, waits for the terminal event, releases.
    StreamRun &run(const json &request, std::chrono::milliseconds timeout = 10s) {
        StreamRun &r = start(request);
        EXPECT_EQ(r.status, CS_OK) << r.err.message;
        if (r.status == CS_OK) {
            EXPECT_TRUE(r.ev.wait(timeout)) << "no terminal event in time";
            release(r);
        }
        return r;
    }

    // Refusal message of create() for these options, or "" when it succeeded.
    std::string create_error(const std::string &plugin_id, const json &options) {
        try {
            PluginHarness h("provider", plugin_id, options.dump(), dir.str());
        } catch (const std::exception &e) {
            return e.what();
        }
        return "";
    }
};

// A model request as the engine sends it (docs/plugins.md).
inline json text_request(const std::string &model, const std::string &text = "I have had a headache for three days") {
    return {{"model", model},
            {"system", "You are a careful clinician."},
            {"max_tokens", 512},
            {"temperature", 0.3},
            {"locale", "en"},
            {"timeouts", {{"connect_ms", 2000}}},
            {"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", text}}})}}})}};
}

}  // namespace consilium::test
