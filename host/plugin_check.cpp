// `consilium plugin check LIBRARY`: the conformance kit. It loads any plugin and runs the
// contract of docs/plugins.md against it, one check at a time, each in a child process so that a
// crash or an exception escaping the plugin fails that check instead of the kit. One line per
// check; non-zero exit when any failed.
#include "args.hpp"
#include "commands.hpp"
#include "plugin_loader.hpp"

#include "exec/executor.hpp"
#include "plugin/instance.hpp"
#include "util/log.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace consilium::host {

using json = nlohmann::json;
using namespace std::chrono;

namespace {

struct CheckEnv {
    std::filesystem::path file;
    std::string options;  // JSON
    std::string model;
    std::string data_dir;
};

// One stream's events, as a conforming plugin must deliver them.
struct Recorder {
    std::mutex mu;
    std::condition_variable cv;
    int terminals = 0;
    int after_terminal = 0;
    int texts = 0;
    uint32_t last_type = 0;
    uint32_t stop_reason = 0;
    uint32_t error_kind = 0;
    bool bad_struct = false;
    static void on(void *ctx, const cs_stream_event *e) {
        auto *r = static_cast<Recorder *>(ctx);
        std::lock_guard<std::mutex> lock(r->mu);
        if (!e || e->struct_size < sizeof(cs_stream_event)) r->bad_struct = true;
        if (r->terminals > 0) {
            ++r->after_terminal;
            return;
        }
        if (e->type == CS_EV_TEXT) ++r->texts;
        if (e->type == CS_EV_END || e->type == CS_EV_ERROR) {
            ++r->terminals;
            r->last_type = e->type;
            r->stop_reason = e->stop_reason;
            r->error_kind = e->error_kind;
            r->cv.notify_all();
        }
    }
    bool wait(milliseconds d) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, d, [this] { return terminals > 0; });
    }
};

// A created instance with its own host services.
struct Harness {
    LoadedPlugin plugin;
    std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(2);
    metrics::Registry metrics;
    std::unique_ptr<PluginInstance> instance;
    explicit Harness(const CheckEnv &env, const std::string &options) {
        plugin = load_plugin(env.file);
        auto services = std::make_unique<HostServices>("check", *pool, metrics, env.data_dir);
        instance = std::make_unique<PluginInstance>(plugin.descriptor, plugin.library, std::move(services),
                                                    "providers.check", options);
    }
    ~Harness() {
        instance.reset();
        pool->stop();
    }
    const cs_provider_vtable *vt() const { return instance->vtable<cs_provider_vtable>(); }
};

std::string request_for(const CheckEnv &env, const std::string &text = "Hello, this is a conformance check.") {
    json r = {{"model", env.model},
              {"system", "You are a test assistant. Answer in one short sentence."},
              {"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", text}}})}}})},
              {"max_tokens", 64},
              {"timeouts", {{"connect_ms", 5000}}},
              {"persona", {{"id", "check"}, {"name", "Check"}, {"title", "Tester"}, {"sources", json::array()},
                           {"follow_ups", json::array()}}}};
    return r.dump();
}

// Starts a stream; returns its handle (or null and the status).
cs_stream *start(Harness &h, Recorder &rec, const std::string &body, cs_status &st, std::string &err) {
    cs_stream_sink sink{sizeof(cs_stream_sink), &rec, &Recorder::on};
    cs_error e{};
    cs_stream *s = nullptr;
    st = h.vt()->stream_start(h.instance->instance(), {body.data(), body.size()}, &sink, &s, &e);
    err = e.message;
    return s;
}

void release_after_terminal(Harness &h, cs_stream *s) {
    if (s) h.vt()->stream_release(h.instance->instance(), s);
}

using Check = std::function<std::string(const CheckEnv &)>;  // "" = pass, else the reason

std::string check_descriptor(const CheckEnv &env) {
    LoadedPlugin p = load_plugin(env.file);  // throws with the reason
    const cs_plugin_descriptor *d = p.descriptor;
    if (d->kind != CS_PLUGIN_PROVIDER) return std::string("this kit checks provider plugins; this one is a ") + kind_name(d->kind);
    if (!d->version || !*d->version) return "the descriptor has no version";
    if (!d->build_signature || !*d->build_signature) return "the descriptor has no build signature";
    if (!d->description || !*d->description) return "the descriptor has no description";
    auto *vt = static_cast<const cs_provider_vtable *>(d->vtable);
    if (!vt->stream_start || !vt->stream_cancel || !vt->stream_release) return "the function table has null entries";
    return "";
}

std::string check_create_destroy(const CheckEnv &env) {
    for (int i = 0; i < 3; ++i) Harness h(env, env.options);
    return "";
}

std::string check_unknown_option(const CheckEnv &env) {
    json opts = json::parse(env.options);
    opts["surely_not_an_option_of_yours"] = 1;
    try {
        Harness h(env, opts.dump());
    } catch (const PluginError &e) {
        if (std::string(e.what()).find("surely_not_an_option_of_yours") == std::string::npos)
            return std::string("refused, but the message does not name the key: ") + e.what();
        return "";
    }
    return "an unknown option was accepted; refuse it naming its path";
}

std::string check_bad_request(const CheckEnv &env) {
    Harness h(env, env.options);
    for (const char *body : {"this is not JSON", "[1, 2, 3]", "{\"model\": 7}"}) {
        Recorder rec;
        cs_status st;
        std::string err;
        cs_stream *s = start(h, rec, body, st, err);
        if (st == CS_OK) {
            // Accepted: then it must end the stream (with an error) by itself.
            if (!rec.wait(seconds(10))) return std::string("accepted '") + body + "' and never ended the stream";
            release_after_terminal(h, s);
            continue;
        }
        if (err.empty()) return std::string("refused '") + body + "' without an error message";
        std::this_thread::sleep_for(milliseconds(100));
        if (rec.terminals || rec.texts) return "sent events for a stream it refused to start";
    }
    return "";
}

std::string check_stream(const CheckEnv &env) {
    Harness h(env, env.options);
    Recorder rec;
    cs_status st;
    std::string err;
    cs_stream *s = start(h, rec, request_for(env), st, err);
    if (st != CS_OK) return "could not start a stream: " + err;
    if (!rec.wait(seconds(60))) return "no terminal event within 60 s";
    std::this_thread::sleep_for(milliseconds(300));
    std::lock_guard<std::mutex> lock(rec.mu);
    if (rec.bad_struct) return "an event had a struct_size smaller than cs_stream_event";
    if (rec.terminals != 1) return "expected exactly one terminal event, got " + std::to_string(rec.terminals);
    if (rec.after_terminal) return std::to_string(rec.after_terminal) + " event(s) after the terminal one";
    if (rec.last_type == CS_EV_END && rec.stop_reason == CS_STOP_END_TURN && rec.texts == 0)
        return "ended with end_turn but sent no text";
    if (rec.last_type == CS_EV_ERROR && (rec.error_kind < CS_ERR_RATE_LIMITED || rec.error_kind > CS_ERR_INTERNAL))
        return "an error event with an unknown error kind " + std::to_string(rec.error_kind);
    if (rec.last_type == CS_EV_END && (rec.stop_reason < CS_STOP_END_TURN || rec.stop_reason > CS_STOP_CONTEXT_EXCEEDED))
        return "an end event with an unknown stop reason " + std::to_string(rec.stop_reason);
    h.vt()->stream_cancel(h.instance->instance(), s);  // after the end: must be harmless
    release_after_terminal(h, s);
    return "";
}

std::string check_cancel(const CheckEnv &env) {
    Harness h(env, env.options);
    Recorder rec;
    cs_status st;
    std::string err;
    cs_stream *s = start(h, rec, request_for(env), st, err);
    if (st != CS_OK) return "could not start a stream: " + err;
    auto t0 = steady_clock::now();
    h.vt()->stream_cancel(h.instance->instance(), s);
    h.vt()->stream_cancel(h.instance->instance(), s);  // idempotent
    if (!rec.wait(seconds(2))) return "cancel did not end the stream within 2 s";
    auto took = duration_cast<milliseconds>(steady_clock::now() - t0).count();
    std::this_thread::sleep_for(milliseconds(200));
    std::lock_guard<std::mutex> lock(rec.mu);
    if (rec.terminals != 1 || rec.after_terminal) return "cancel: expected exactly one terminal event and nothing after";
    release_after_terminal(h, s);
    if (took > 1000) return "cancel took " + std::to_string(took) + " ms (aim for under 100 ms)";
    return "";
}

std::string check_threads(const CheckEnv &env) {
    Harness h(env, env.options);
    constexpr int kThreads = 4, kPerThread = 4;
    std::vector<std::unique_ptr<Recorder>> recs(kThreads * kPerThread);
    std::vector<cs_stream *> streams(recs.size(), nullptr);
    std::vector<std::string> errors(recs.size());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            for (int i = 0; i < kPerThread; ++i) {
                size_t k = static_cast<size_t>(t * kPerThread + i);
                recs[k] = std::make_unique<Recorder>();
                cs_status st;
                streams[k] = start(h, *recs[k], request_for(env, "Question number " + std::to_string(k)), st, errors[k]);
                if (st != CS_OK) continue;
                if (rng() % 2) h.vt()->stream_cancel(h.instance->instance(), streams[k]);
            }
        });
    }
    for (auto &th : threads) th.join();
    for (size_t k = 0; k < recs.size(); ++k) {
        if (!streams[k]) return "a concurrent start failed: " + errors[k];
        if (!recs[k]->wait(seconds(60))) return "a concurrent stream never ended";
    }
    std::this_thread::sleep_for(milliseconds(300));
    for (size_t k = 0; k < recs.size(); ++k) {
        std::lock_guard<std::mutex> lock(recs[k]->mu);
        if (recs[k]->terminals != 1 || recs[k]->after_terminal) return "a concurrent stream broke the one-terminal rule";
        release_after_terminal(h, streams[k]);
    }
    return "";
}

// Runs one check in a child process.
std::string run_isolated(const Check &check, const CheckEnv &env, int timeout_s) {
    int fds[2];
    if (::pipe(fds) != 0) return "cannot create a pipe";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        std::string reason;
        try {
            reason = check(env);
        } catch (const std::exception &e) {
            reason = e.what();
        }
        std::string out = reason.empty() ? "PASS" : reason;
        ssize_t w = ::write(fds[1], out.data(), out.size());
        (void)w;
        ::close(fds[1]);
        std::fflush(nullptr);
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string out;
    char buf[1024];
    auto until = steady_clock::now() + seconds(timeout_s);
    int status = 0;
    bool done = false;
    while (steady_clock::now() < until) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            done = true;
            break;
        }
        std::this_thread::sleep_for(milliseconds(20));
    }
    if (!done) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ::close(fds[0]);
        return "did not finish within " + std::to_string(timeout_s) + " s (a hang or a deadlock)";
    }
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    if (WIFSIGNALED(status))
        return std::string("the process died of signal ") + std::to_string(WTERMSIG(status)) +
               (WTERMSIG(status) == SIGABRT ? " (an exception escaping the plugin, or an abort)" : "");
    if (out == "PASS") return "";
    return out.empty() ? "no result" : out;
}

}  // namespace

int cmd_plugin_check(const std::vector<std::string> &argv) {
    Args a = Args::parse(argv, {"options", "model", "data-dir"}, {"verbose"});
    if (a.positional.size() != 1) throw UsageError("plugin check takes one LIBRARY (a .so file)");
    CheckEnv env;
    env.file = std::filesystem::absolute(a.positional[0]);
    env.options = a.get("options").value_or("{}");
    json parsed = json::parse(env.options, nullptr, false);
    if (!parsed.is_object()) throw UsageError("--options must be a JSON object of the plugin's options");
    env.model = a.get("model").value_or("conformance-test");
    env.data_dir = a.get("data-dir").value_or(std::filesystem::temp_directory_path().string());
    if (!a.has("verbose")) log::set_level(log::Level::error);

    const std::pair<const char *, Check> checks[] = {
        {"descriptor: entry point, ABI version, id, version, build signature, function table", check_descriptor},
        {"create and destroy, three times", check_create_destroy},
        {"an unknown option is refused, naming it", check_unknown_option},
        {"a malformed request is refused cleanly, with a message and no events", check_bad_request},
        {"a stream delivers exactly one terminal event and nothing after it", check_stream},
        {"cancel ends a stream promptly, once", check_cancel},
        {"16 streams from 4 threads, some cancelled: one terminal event each", check_threads},
    };
    int failed = 0, passed = 0;
    for (const auto &[name, check] : checks) {
        std::string reason = run_isolated(check, env, 120);
        if (reason.empty()) {
            ++passed;
            std::printf("PASS  %s\n", name);
        } else {
            ++failed;
            std::printf("FAIL  %s: %s\n", name, reason.c_str());
        }
        std::fflush(stdout);
        if (failed && std::string(name).rfind("descriptor", 0) == 0) break;  // nothing else can run
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

}  // namespace consilium::host
