// Load benchmarks of the chat channel against the real host (issue 5, "load"): each runs
// `consilium serve` as a child process (tests/support HostProcess) on its embedded defaults plus
// the --set values it prints, and drives it from this process with one client thread (ws_load).
//
//   bench_channel idle        10,000 idle authenticated WebSockets: host memory per connection
//   bench_channel streams     1,000 concurrent answers from the mock at 20 tokens/s: time to
//                             first token and gaps between chunks beyond the mock's own pacing
//   bench_channel throughput  frames/s through transport + engine vs a bare Beast WebSocket
//                             server with the same frame sizes (streamed answers, and ping/pong)
//   bench_channel all         the three in turn (the default)
//
// Options: --quick (small numbers, a few seconds: what ctest runs; it checks that the benchmarks
// work, never their timings), --connections N, --guests N, --pause-ms N (idle: between its two
// rounds), --streams N, --ramp-ms N (streams), --conns N, --seconds S (throughput), and
// --host-set KEY=VALUE (repeatable): one more --set for every host started (experiments).
// docs/performance.md records the results. Exits non-zero only when a run did not work
// (connections refused, streams that did not end): timings are reported, never asserted.
#include "host_process.hpp"
#include "net/net_client.hpp"
#include "ws_load.hpp"

#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <mutex>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace consilium;
using bench::Clock;
using bench::WsLoad;
using Ms = std::chrono::milliseconds;

namespace {

struct Options {
    bool quick = false;
    size_t connections = 10000;  // idle
    size_t guests = 200;         // idle: connections share guest tokens
    int pause_ms = 2000;         // idle: between the two rounds
    size_t streams = 1000;
    int ramp_ms = 2000;          // streams: the sends are spread over this
    size_t conns = 16;           // throughput
    double seconds = 5;          // throughput: measured time per mode and server
    std::vector<std::string> host_sets;  // --host-set KEY=VALUE: more --set for every host started
};

const Options *g_options = nullptr;

// ---- small helpers ----------------------------------------------------------------------------

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double max_of(const std::vector<double> &v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

// The frame's top-level "type". The engine writes keys in sorted order, so "type" is the last
// key of a frame; quotes inside string values are escaped, so the match is never in a value.
std::string_view frame_type(std::string_view f) {
    constexpr std::string_view key = "\"type\":\"";
    auto pos = f.rfind(key);
    if (pos == std::string_view::npos) return {};
    pos += key.size();
    auto end = f.find('"', pos);
    return end == std::string_view::npos ? std::string_view{} : f.substr(pos, end - pos);
}

std::string_view string_field(std::string_view f, std::string_view name) {
    std::string key = "\"" + std::string(name) + "\":\"";
    auto pos = f.find(key);
    if (pos == std::string_view::npos) return {};
    pos += key.size();
    auto end = f.find('"', pos);
    return end == std::string_view::npos ? std::string_view{} : f.substr(pos, end - pos);
}

long rss_kib_of(const std::string &pid) {
    std::ifstream in("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// CPU time (user + system, all threads) the process has used, in seconds.
double cpu_seconds(const std::string &pid) {
    std::ifstream in("/proc/" + pid + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto paren = text.rfind(')');
    if (paren == std::string::npos) return 0;
    std::istringstream fields(text.substr(paren + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; fields >> f; ++i) {  // field 3 is the state; 14 utime, 15 stime
        if (i == 14) utime = std::stoull(f);
        if (i == 15) {
            stime = std::stoull(f);
            break;
        }
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            auto colon = line.find(':');
            return colon == std::string::npos ? line : line.substr(colon + 2);
        }
    return "?";
}

void print_header(const char *what) {
    std::printf("\n== %s ==\nload average before: %s\n", what, loadavg().c_str());
    std::fflush(stdout);
}

void print_sets(const std::vector<std::string> &sets) {
    std::printf("host: consilium serve (embedded defaults)");
    for (const auto &s : sets) std::printf(" --set %s", s.c_str());
    std::printf("\n");
}

void row(const char *name, const std::vector<double> &v, const char *unit) {
    std::printf("  %-44s %9.2f %9.2f %9.2f %9zu  %s\n", name, pct(v, 0.5), pct(v, 0.99), max_of(v), v.size(), unit);
}

void row_header() {
    std::printf("  %-44s %9s %9s %9s %9s\n", "", "p50", "p99", "max", "samples");
}

std::unique_ptr<test::HostProcess> start_host(std::vector<std::string> sets) {
    for (const auto &s : g_options->host_sets) sets.push_back(s);
    print_sets(sets);
    auto host = std::make_unique<test::HostProcess>(sets);
    if (!host->start(std::chrono::seconds(60))) {
        std::fprintf(stderr, "the host did not start:\n%s\n", host->log().c_str());
        return nullptr;
    }
    return host;
}

// POST /v1/auth/guest n times over a few keep-alive connections; the access tokens. (Setup, not
// measured; the threads are joined before anything else runs.)
std::vector<std::string> make_guests(uint16_t port, size_t n) {
    std::vector<std::string> tokens(n);
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::string error;
    std::vector<std::thread> threads;
    const size_t nthreads = std::min<size_t>(4, std::max<size_t>(n, 1));
    for (size_t t = 0; t < nthreads; ++t) {
        threads.emplace_back([&] {
            test::net::HttpClient http("127.0.0.1", port, std::chrono::seconds(30));
            for (size_t i = next++; i < n && !failed; i = next++) {
                auto r = http.request("POST", "/v1/auth/guest", "{}", {{"Content-Type", "application/json"}});
                auto j = nlohmann::json::parse(r.body, nullptr, false);
                if (r.status != 201 || !j.is_object() || !j.contains("access_token")) {
                    failed = true;
                    std::lock_guard<std::mutex> lock(mu);
                    error = "POST /v1/auth/guest: " + std::to_string(r.status) + " " + r.error + " " + r.body;
                    return;
                }
                tokens[i] = j["access_token"].get<std::string>();
            }
        });
    }
    for (auto &t : threads) t.join();
    if (failed) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return {};
    }
    return tokens;
}

const char *const kTexts[] = {
    "I have had a rash on my elbows for two weeks and it itches at night",
    "My knee hurts when I climb stairs, especially in the morning",
    "I keep getting headaches in the afternoon when I work at the computer",
    "I have had a dry cough for three weeks that will not go away",
    "I feel tired all the time even though I sleep eight hours",
};

std::string message_frame(const std::string &id, size_t k) {
    nlohmann::json j = {{"type", "message"}, {"id", id}, {"text", kTexts[k % std::size(kTexts)]}};
    return j.dump();
}

// ---- idle -------------------------------------------------------------------------------------

bool bench_idle(const Options &o) {
    print_header("idle: authenticated WebSocket connections held open");
    const size_t n = o.connections;
    const size_t guests = std::max<size_t>(1, std::min(o.guests, n));
    std::vector<std::string> sets = {"transports.http.max_connections=" + std::to_string(n + 1000),
                                     "transports.http.max_connections_per_ip=" + std::to_string(n + 1000)};
    auto host = start_host(sets);
    if (!host) return false;
    auto tokens = make_guests(host->port(), guests);
    if (tokens.empty()) return false;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const long rss0 = host->rss_kib();
    const long self0 = rss_kib_of("self");

    // One round: opens n connections, waits for every `ready`, sends one ping on each (the protocol
    // asks idle clients to ping every 25 s, so a live idle connection has read and written a frame)
    // and waits for every pong, then stays idle for 2 s.
    struct Round {
        size_t ready = 0, pongs = 0, other = 0, failed = 0, open_at_end = 0;
        double connect_s = 0;
        long rss_ready = 0, rss_idle = 0, self_idle = 0;
        std::string other_frame, error;
    };
    auto round = [&](Round &r) {
        WsLoad load("127.0.0.1", host->port());
        load.set_handlers({[&](size_t, std::string_view text, Clock::time_point) {
                               auto type = frame_type(text);
                               if (type == "ready") ++r.ready;
                               else if (type == "pong") ++r.pongs;
                               else if (++r.other == 1) r.other_frame = std::string(text);
                           },
                           {}});
        for (size_t i = 0; i < n; ++i) load.add(tokens[i % guests]);
        const auto t0 = Clock::now();
        load.connect_all(200);
        load.run_until([&] { return r.ready + load.failed() >= n; }, t0 + std::chrono::seconds(300));
        r.connect_s = ms_between(t0, Clock::now()) / 1000;
        r.rss_ready = host->rss_kib();
        for (size_t i = 0; i < n; ++i) load.send(i, R"({"type":"ping"})");
        load.run_until([&] { return r.pongs + load.failed() >= n; }, Clock::now() + std::chrono::seconds(120));
        load.run_for(Ms(2000));
        r.rss_idle = host->rss_kib();
        r.self_idle = rss_kib_of("self");
        r.failed = load.failed();
        r.error = load.first_error();
        r.open_at_end = load.opened() - load.failed();
        load.close_all(false);
    };
    Round r1, r2;
    round(r1);
    std::this_thread::sleep_for(Ms(o.pause_ms));
    const long rss_closed = host->rss_kib();
    // Again, on the same host: memory that the first round's connections left behind is either
    // reused (no growth) or leaked (grows by as much again).
    round(r2);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const long rss_closed2 = host->rss_kib();
    host->stop();

    const double per_conn = r1.ready ? static_cast<double>(r1.rss_idle - rss0) * 1024.0 / static_cast<double>(r1.ready) : 0;
    for (const Round *r : {&r1, &r2}) {
        std::printf("round %d: %zu asked, %zu ready (%zu guest accounts), %zu answered a ping, %zu open at the end, %zu failed%s%s; "
                    "opened in %.2f s (%.0f connections/s, 200 handshakes in flight)\n",
                    r == &r1 ? 1 : 2, n, r->ready, guests, r->pongs, r->open_at_end, r->failed, r->failed ? ": " : "",
                    r->error.c_str(), r->connect_s, static_cast<double>(r->ready) / std::max(r->connect_s, 1e-9));
        if (r->other) std::printf("unexpected frames: %zu, first: %.200s\n", r->other, r->other_frame.c_str());
    }
    std::printf("  %-52s %12s\n", "host VmRSS", "KiB");
    std::printf("  %-52s %12ld\n", "before (guests made, no connection)", rss0);
    std::printf("  %-52s %12ld\n", "round 1: all connections ready", r1.rss_ready);
    std::printf("  %-52s %12ld\n", "round 1: after one ping each + 2 s idle", r1.rss_idle);
    std::printf("  %-52s %12ld\n", (std::to_string(o.pause_ms / 1000) + " s after the client dropped them all").c_str(), rss_closed);
    std::printf("  %-52s %12ld\n", "round 2 (same host): after one ping each + 2 s idle", r2.rss_idle);
    std::printf("  %-52s %12ld\n", "2 s after the client dropped them all again", rss_closed2);
    std::printf("host memory per idle connection (round 1): %.0f bytes (%.2f KiB); target <= 20 KB: %s\n", per_conn,
                per_conn / 1024, per_conn <= 20000 ? "met" : "NOT met");
    std::printf("(client side, this process: %.2f KiB per connection)\n",
                r1.ready ? static_cast<double>(r1.self_idle - self0) / static_cast<double>(r1.ready) : 0.0);
    return r1.ready == n && r1.pongs == n && r1.failed == 0 && r2.ready == n && r2.pongs == n && r2.failed == 0;
}

// ---- streams ----------------------------------------------------------------------------------

struct StreamState {
    Clock::time_point send{}, ack{}, start{}, first{}, last{};
    size_t chunks = 0;
    bool acked = false, started = false, ended = false;
    std::string stop_reason;
};

bool bench_streams(const Options &o) {
    print_header("streams: concurrent answers from the mock provider");
    const size_t n = o.streams;
    const double tps = 20;
    const double first_token_ms = 200;
    const double pace_ms = 1000.0 / tps;
    const size_t guests = (n + 1) / 2;  // limits.guest_concurrent_turns is 2
    std::vector<std::string> sets = {"providers.mock.tokens_per_second=20", "providers.mock.first_token_ms=200",
                                      "connector.max_concurrent_per_provider=" + std::to_string(n),
                                      "transports.http.max_connections_per_ip=" + std::to_string(n + 100)};
    if (o.quick) sets.push_back("providers.mock.reply_tokens=40");
    auto host = start_host(sets);
    if (!host) return false;
    auto tokens = make_guests(host->port(), guests);
    if (tokens.empty()) return false;

    WsLoad load("127.0.0.1", host->port());
    std::vector<StreamState> st(n);
    std::vector<double> gaps_ms, added_gap_ms;
    gaps_ms.reserve(n * 130);
    added_gap_ms.reserve(n * 130);
    size_t ready = 0, ended = 0, active = 0, max_active = 0, merged = 0, errors = 0, other = 0, emergencies = 0;
    std::string first_error_frame;
    load.set_handlers({[&](size_t i, std::string_view text, Clock::time_point at) {
                           StreamState &s = st[i];
                           auto type = frame_type(text);
                           if (type == "stream_chunk") {
                               if (s.chunks == 0) {
                                   s.first = at;
                               } else {
                                   double g = ms_between(s.last, at);
                                   gaps_ms.push_back(g);
                                   added_gap_ms.push_back(g - pace_ms);
                               }
                               s.last = at;
                               ++s.chunks;
                               if (text.find("\"seq_from\"") != std::string_view::npos) ++merged;
                           } else if (type == "ack") {
                               s.ack = at;
                               s.acked = true;
                           } else if (type == "stream_start") {
                               s.start = at;
                               s.started = true;
                               max_active = std::max(max_active, ++active);
                           } else if (type == "stream_end") {
                               s.ended = true;
                               s.stop_reason = std::string(string_field(text, "stop_reason"));
                               --active;
                               ++ended;
                           } else if (type == "ready") {
                               ++ready;
                           } else if (type == "error") {
                               if (++errors == 1) first_error_frame = std::string(text);
                           } else if (type == "emergency") {
                               ++emergencies;
                           } else {
                               ++other;
                           }
                       },
                       {}});
    for (size_t i = 0; i < n; ++i) load.add(tokens[i / 2]);
    load.connect_all(200);
    load.run_until([&] { return ready + load.failed() >= n; }, Clock::now() + std::chrono::seconds(120));
    if (ready != n) {
        std::fprintf(stderr, "only %zu of %zu connections ready: %s\n", ready, n, load.first_error().c_str());
        return false;
    }
    load.take_loop_lag_us();
    const auto t0 = Clock::now() + Ms(200);
    for (size_t i = 0; i < n; ++i) {
        auto when = t0 + std::chrono::microseconds(static_cast<int64_t>(1000.0 * o.ramp_ms * static_cast<double>(i) / static_cast<double>(n)));
        load.at(when, [&, i] {
            st[i].send = Clock::now();
            load.send(i, message_frame("bench-" + std::to_string(i), i));
        });
    }
    const std::string host_pid = std::to_string(host->pid());
    const double host_cpu0 = cpu_seconds(host_pid), self_cpu0 = cpu_seconds("self");
    load.run_until([&] { return ended + errors + load.failed() >= n; }, t0 + Ms(o.ramp_ms) + std::chrono::seconds(90));
    const double total_s = ms_between(t0, Clock::now()) / 1000;
    const double host_cpu = cpu_seconds(host_pid) - host_cpu0, self_cpu = cpu_seconds("self") - self_cpu0;
    const std::string load_after = loadavg();
    auto lag = load.take_loop_lag_us();
    for (auto &v : lag) v /= 1000;
    load.close_all(true);
    host->stop();

    std::vector<double> ack, to_start, ttft, ttft_added, first_after_start, chunks;
    size_t end_turn = 0;
    for (const auto &s : st) {
        if (s.acked) ack.push_back(ms_between(s.send, s.ack));
        if (s.started) to_start.push_back(ms_between(s.send, s.start));
        if (s.chunks > 0) {
            ttft.push_back(ms_between(s.send, s.first));
            ttft_added.push_back(ms_between(s.send, s.first) - first_token_ms);
            if (s.started) first_after_start.push_back(ms_between(s.start, s.first) - first_token_ms);
        }
        chunks.push_back(static_cast<double>(s.chunks));
        if (s.stop_reason == "end_turn") ++end_turn;
    }
    std::printf("streams: %zu sent over %d ms, %zu ended (%zu end_turn), at most %zu at once; %zu errors%s%.300s; "
                "%zu emergencies; %zu merged chunks; %zu connections failed; %.1f s in all\n",
                n, o.ramp_ms, ended, end_turn, max_active, errors, errors ? ", first: " : "", first_error_frame.c_str(),
                emergencies, merged, load.failed(), total_s);
    std::printf("chunks per stream: p50 %.0f, min %.0f; mock: %.0f tokens/s (%.0f ms apart), first token after %.0f ms\n",
                pct(chunks, 0.5), chunks.empty() ? 0.0 : *std::min_element(chunks.begin(), chunks.end()), tps, pace_ms,
                first_token_ms);
    double total_chunks = 0;
    for (double c : chunks) total_chunks += c;
    std::printf("CPU while streaming: host %.2f cores (%.1f us per chunk), this client %.2f cores; load average after: %s\n",
                host_cpu / total_s, total_chunks > 0 ? host_cpu * 1e6 / total_chunks : 0.0, self_cpu / total_s,
                load_after.c_str());
    row_header();
    row("message sent -> ack (stored durably)", ack, "ms");
    row("message sent -> stream_start", to_start, "ms");
    row("time to first token (sent -> first chunk)", ttft, "ms");
    row("  added: TTFT - first_token_ms", ttft_added, "ms");
    row("  of which stream_start -> first chunk - 200", first_after_start, "ms");
    row("gap between chunks", gaps_ms, "ms");
    row("  added: gap - 50 ms", added_gap_ms, "ms");
    row("client loop lag (noise floor of the above)", lag, "ms");
    const double p99_gap = pct(added_gap_ms, 0.99), p99_ttft = pct(ttft_added, 0.99);
    std::printf("target p99 added < 5 ms: gaps %.2f ms (%s), TTFT %.2f ms (%s)\n", p99_gap,
                p99_gap < 5 ? "met" : "NOT met", p99_ttft, p99_ttft < 5 ? "met" : "NOT met");
    return ended == n && end_turn == n && errors == 0 && load.failed() == 0;
}

// ---- throughput -------------------------------------------------------------------------------

struct ThroughputResult {
    double stream_fps = 0, stream_mbps = 0, echo_fps = 0;
    double stream_cpu_us = 0, echo_cpu_us = 0;  // server CPU time per frame
    double stream_cores = 0, echo_cores = 0;    // server CPU use while measured
    size_t turns = 0;
    std::vector<bench::ScriptFrame> script;  // the frames of one turn, as the client got them
    bool ok = true;
};

// Drives `conns` connections of `load` (already ready): first streamed answers (each connection
// sends a message, reads the answer to its stream_end, sends the next), then ping/pong with
// `window` pings in flight per connection. Counts the frames that arrive within the measured
// time after a warm-up.
ThroughputResult drive_throughput(WsLoad &load, size_t conns, int server_pid, const Options &o) {
    ThroughputResult r;
    const std::string pid = std::to_string(server_pid);
    const Ms warmup(o.quick ? 300 : 1000);
    const Ms measure(static_cast<int64_t>(o.seconds * 1000));
    const double measure_s = static_cast<double>(measure.count()) / 1000;
    enum class Mode { stream, echo, drain } mode = Mode::stream;
    Clock::time_point w0{}, w1{};
    size_t frames = 0, bytes = 0, in_flight = 0;
    double cpu0 = 0, cpu1 = 0;
    std::vector<size_t> sent(conns, 0);
    std::vector<bench::ScriptFrame> current;
    bool recording = false;
    auto next_message = [&](size_t i) {
        ++in_flight;
        load.send(i, message_frame("t-" + std::to_string(i) + "-" + std::to_string(sent[i]), sent[i]));
        ++sent[i];
    };
    // The window [w0, w1): frames arriving in it are counted, and the server's CPU time sampled at
    // both ends.
    auto open_window = [&] {
        frames = bytes = 0;
        w0 = Clock::now() + warmup;
        w1 = w0 + measure;
        load.at(w0, [&] { cpu0 = cpu_seconds(pid); });
        load.at(w1, [&] { cpu1 = cpu_seconds(pid); });
    };
    load.set_handlers({[&](size_t i, std::string_view text, Clock::time_point at) {
                           const bool in_window = at >= w0 && at < w1;
                           if (in_window) {
                               ++frames;
                               bytes += text.size();
                           }
                           auto type = frame_type(text);
                           if (type == "error") {
                               r.ok = false;
                               std::fprintf(stderr, "error frame: %.300s\n", std::string(text).c_str());
                           }
                           if (mode == Mode::echo) {
                               if (type == "pong") {
                                   if (Clock::now() < w1) load.send(i, R"({"type":"ping"})");
                                   else --in_flight;
                               }
                               return;
                           }
                           // Streams: record one whole turn (from the ack) for the baseline's script.
                           if (i == 0 && r.script.empty()) {
                               if (type == "ack" && in_window) recording = true;
                               if (recording) current.push_back({std::string(type), text.size()});
                           }
                           if (type == "stream_end") {
                               if (i == 0 && recording && r.script.empty()) r.script = current;
                               if (in_window) ++r.turns;
                               --in_flight;
                               if (mode == Mode::stream && Clock::now() < w1) next_message(i);
                           }
                       },
                       {}});
    // Streamed answers.
    open_window();
    for (size_t i = 0; i < conns; ++i) next_message(i);
    load.run_until([&] { return Clock::now() >= w1 && cpu1 > 0; }, w1 + Ms(100));
    load.run_until([&] { return in_flight == 0; }, Clock::now() + std::chrono::seconds(30));
    r.stream_fps = static_cast<double>(frames) / measure_s;
    r.stream_mbps = static_cast<double>(bytes) / measure_s / 1e6;
    r.stream_cores = (cpu1 - cpu0) / measure_s;
    r.stream_cpu_us = frames ? (cpu1 - cpu0) * 1e6 / static_cast<double>(frames) : 0;
    // Ping / pong.
    mode = Mode::echo;
    cpu0 = cpu1 = 0;
    const size_t window = 16;
    open_window();
    for (size_t i = 0; i < conns; ++i)
        for (size_t k = 0; k < window; ++k) {
            ++in_flight;
            load.send(i, R"({"type":"ping"})");
        }
    load.run_until([&] { return Clock::now() >= w1 && cpu1 > 0; }, w1 + Ms(100));
    load.run_until([&] { return in_flight == 0; }, Clock::now() + std::chrono::seconds(30));
    r.echo_fps = static_cast<double>(frames) / measure_s;
    r.echo_cores = (cpu1 - cpu0) / measure_s;
    r.echo_cpu_us = frames ? (cpu1 - cpu0) * 1e6 / static_cast<double>(frames) : 0;
    mode = Mode::drain;
    if (load.failed() || in_flight) r.ok = false;
    return r;
}

bool bench_throughput(const Options &o) {
    print_header("throughput: transport + engine vs a bare Beast WebSocket server");
    const size_t conns = o.conns;
    // As fast as possible: the mock sends every token at once; limits high enough not to refuse
    // the load (the point is the frame path, not the rate limits).
    std::vector<std::string> sets = {"providers.mock.tokens_per_second=0", "providers.mock.first_token_ms=0",
                                     "limits.guest_messages_per_minute=1000000000",
                                     "limits.guest_account_messages_per_minute=1000000000",
                                     "limits.bytes_per_minute=1000000000"};
    ThroughputResult eng;
    {
        auto host = start_host(sets);
        if (!host) return false;
        auto tokens = make_guests(host->port(), conns);
        if (tokens.empty()) return false;
        WsLoad load("127.0.0.1", host->port());
        size_t ready = 0;
        load.set_handlers({[&](size_t, std::string_view text, Clock::time_point) {
                               if (frame_type(text) == "ready") ++ready;
                           },
                           {}});
        for (size_t i = 0; i < conns; ++i) load.add(tokens[i]);
        load.connect_all(conns);
        load.run_until([&] { return ready + load.failed() >= conns; }, Clock::now() + std::chrono::seconds(30));
        if (ready != conns) {
            std::fprintf(stderr, "engine: only %zu of %zu connections ready: %s\n", ready, conns, load.first_error().c_str());
            return false;
        }
        eng = drive_throughput(load, conns, host->pid(), o);
        load.close_all(true);
        host->stop();
    }
    if (eng.script.empty()) {
        std::fprintf(stderr, "no complete turn was recorded for the baseline's script\n");
        return false;
    }
    size_t script_bytes = 0;
    for (const auto &f : eng.script) script_bytes += f.bytes;
    std::printf("one turn, as the engine sent it: %zu frames, %zu bytes (%.0f bytes a frame)\n", eng.script.size(),
                script_bytes, static_cast<double>(script_bytes) / static_cast<double>(eng.script.size()));

    ThroughputResult base;
    {
        bench::BaselineServer server(eng.script);
        if (!server.start()) {
            std::fprintf(stderr, "the baseline server did not start\n");
            return false;
        }
        WsLoad load("127.0.0.1", server.port(), "/");
        size_t ready = 0;
        load.set_handlers({[&](size_t, std::string_view text, Clock::time_point) {
                               if (frame_type(text) == "ready") ++ready;
                           },
                           {}});
        for (size_t i = 0; i < conns; ++i) load.add("");
        load.connect_all(conns);
        load.run_until([&] { return ready + load.failed() >= conns; }, Clock::now() + std::chrono::seconds(30));
        if (ready != conns) {
            std::fprintf(stderr, "baseline: only %zu of %zu connections ready: %s\n", ready, conns, load.first_error().c_str());
            return false;
        }
        base = drive_throughput(load, conns, server.pid(), o);
        load.close_all(true);
        server.stop();
    }

    std::printf("%zu connections, %.1f s measured per line after %.1f s of warm-up; server: 1 I/O thread each\n", conns,
                o.seconds, o.quick ? 0.3 : 1.0);
    std::printf("  %-36s %14s %14s %8s\n", "", "engine", "bare Beast", "ratio");
    std::printf("  %-36s %14.0f %14.0f %7.0f%%\n", "streamed answers: frames/s", eng.stream_fps, base.stream_fps,
                100 * eng.stream_fps / std::max(base.stream_fps, 1e-9));
    std::printf("  %-36s %14.2f %14.2f\n", "streamed answers: MB/s", eng.stream_mbps, base.stream_mbps);
    std::printf("  %-36s %14zu %14zu\n", "streamed answers: turns completed", eng.turns, base.turns);
    std::printf("  %-36s %14.1f %14.1f\n", "streamed answers: server CPU us/frame", eng.stream_cpu_us, base.stream_cpu_us);
    std::printf("  %-36s %14.2f %14.2f\n", "streamed answers: server CPU cores", eng.stream_cores, base.stream_cores);
    std::printf("  %-36s %14.0f %14.0f %7.0f%%\n", "ping/pong: frames/s", eng.echo_fps, base.echo_fps,
                100 * eng.echo_fps / std::max(base.echo_fps, 1e-9));
    std::printf("  %-36s %14.1f %14.1f\n", "ping/pong: server CPU us/frame", eng.echo_cpu_us, base.echo_cpu_us);
    std::printf("  %-36s %14.2f %14.2f\n", "ping/pong: server CPU cores", eng.echo_cores, base.echo_cores);
    std::printf("load average after: %s\n", loadavg().c_str());
    const double ratio = eng.stream_fps / std::max(base.stream_fps, 1e-9);
    std::printf("target >= 80%% of the baseline's frames/s (streamed answers): %s\n", ratio >= 0.8 ? "met" : "NOT met");
    return eng.ok && base.ok && eng.stream_fps > 0 && base.stream_fps > 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o;
    std::string what = "all";
    bool quick = false;
    std::vector<std::pair<std::string, std::string>> given;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") quick = true;
        else if (a.rfind("--", 0) == 0 && i + 1 < argc) given.emplace_back(a, argv[++i]);
        else if (a == "idle" || a == "streams" || a == "throughput" || a == "all") what = a;
        else {
            std::fprintf(stderr, "usage: bench_channel [idle|streams|throughput|all] [--quick] [--connections N] "
                                 "[--guests N] [--pause-ms N] [--streams N] [--ramp-ms N] [--conns N] [--seconds S] "
                                 "[--host-set KEY=VALUE]...\n");
            return 2;
        }
    }
    if (quick) {
        o.quick = true;
        o.connections = 200;
        o.guests = 10;
        o.streams = 50;
        o.ramp_ms = 500;
        o.conns = 4;
        o.seconds = 1;
    }
    for (const auto &[k, v] : given) {
        if (k == "--connections") o.connections = std::stoul(v);
        else if (k == "--guests") o.guests = std::stoul(v);
        else if (k == "--pause-ms") o.pause_ms = std::stoi(v);
        else if (k == "--streams") o.streams = std::stoul(v);
        else if (k == "--ramp-ms") o.ramp_ms = std::stoi(v);
        else if (k == "--conns") o.conns = std::stoul(v);
        else if (k == "--seconds") o.seconds = std::stod(v);
        else if (k == "--host-set") o.host_sets.push_back(v);
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }

    // Both ends hold a socket per connection; the host inherits the limit.
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);

    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
    std::printf("bench_channel %s%s: %s, %ld cores (%s), RLIMIT_NOFILE %llu\n", what.c_str(), quick ? " --quick" : "",
                date, ::sysconf(_SC_NPROCESSORS_ONLN), cpu_model().c_str(), static_cast<unsigned long long>(rl.rlim_cur));
    if (rl.rlim_cur < o.connections + 200 && (what == "all" || what == "idle"))
        std::printf("warning: RLIMIT_NOFILE %llu is below the %zu connections asked for\n",
                    static_cast<unsigned long long>(rl.rlim_cur), o.connections);

    g_options = &o;
    bool ok = true;
    if (what == "all" || what == "idle") ok = bench_idle(o) && ok;
    if (what == "all" || what == "streams") ok = bench_streams(o) && ok;
    if (what == "all" || what == "throughput") ok = bench_throughput(o) && ok;
    std::printf("\n%s\n", ok ? "all runs completed" : "SOME RUNS FAILED (see above)");
    return ok ? 0 : 1;
}
