// Routing performance (issue targets: one decision for the full panel p99 < 200 us; loading
// the panel < 300 ms; a reload < 500 ms). Texts are the personas' own examples and tests, so
// nothing of the evaluation sets is involved.
//
//   build/tests/bench/bench_routing [--personas DIR] [--rounds N] [--quick]
#include "engine.hpp"
#include "lua/runtime.hpp"
#include "persona/loader.hpp"
#include "routing/coordinator.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace consilium;
using clock_type = std::chrono::steady_clock;

static double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int main(int argc, char **argv) {
    std::string dir = std::string(CONSILIUM_SOURCE_DIR) + "/personas";
    int rounds = 5;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--personas") && i + 1 < argc) dir = argv[++i];
        else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
    }
    if (quick) rounds = 1;

    std::vector<double> loads;
    std::shared_ptr<Panel> panel;
    for (int i = 0; i < (quick ? 1 : 5); ++i) {
        auto t0 = clock_type::now();
        LoadResult r = load_panel(dir, default_load_options());
        loads.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
        if (!r.ok()) {
            std::fprintf(stderr, "the panel in %s does not load\n", dir.c_str());
            return 1;
        }
        panel = r.panel;
    }

    std::vector<std::string> texts;
    for (const auto &p : panel->personas) {
        for (const auto &e : p.examples) texts.push_back(e);
        for (const auto &t : p.tests)
            if (!t.text.empty()) texts.push_back(t.text);
    }
    if (quick) texts.resize(std::min<size_t>(texts.size(), 50));

    // Warm the thread's Lua state and chunk cache as a worker would be.
    RouteRequest warm;
    warm.text = "warm up";
    Coordinator::route(*panel, warm);

    std::vector<double> us;
    us.reserve(texts.size() * static_cast<size_t>(rounds));
    size_t script_errors = 0;
    for (int r = 0; r < rounds; ++r) {
        for (const auto &t : texts) {
            RouteRequest req;
            req.text = t;
            req.profile.age_years = 40;
            auto t0 = clock_type::now();
            RouteDecision d = Coordinator::route(*panel, req);
            us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
            if (d.script_error) ++script_errors;
        }
    }
    std::printf("panel: %zu personas, %zu texts x %d rounds\n", panel->personas.size(), texts.size(), rounds);
    std::printf("load (parse, validate, index): median %.1f ms, max %.1f ms\n", pct(loads, 0.5),
                *std::max_element(loads.begin(), loads.end()));
    std::printf("route (coordinator.lua, full panel): p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
                pct(us, 0.5), pct(us, 0.9), pct(us, 0.99), *std::max_element(us.begin(), us.end()));
    // Where a decision's time goes: the text index, the red-flag patterns, the candidates (index
    // plus persona score() hooks), the rest being the coordinator's Lua call.
    auto time_of = [&](const auto &f) {
        std::vector<double> v;
        for (const auto &t : texts) {
            auto t0 = clock_type::now();
            f(t);
            v.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
        }
        return v;
    };
    auto search = time_of([&](const std::string &t) { return panel->index.search(t).size(); });
    auto flags = time_of([&](const std::string &t) { return Coordinator::match_flags(*panel, t).size(); });
    auto cands = time_of([&](const std::string &t) {
        RouteRequest req;
        req.text = t;
        return Coordinator::candidates(*panel, req, Coordinator::turn_json(req)).size();
    });
    std::printf("  of which: index search p50 %.1f us p99 %.1f us; red flags p50 %.1f us p99 %.1f us; "
                "candidates (search + score hooks) p50 %.1f us p99 %.1f us\n",
                pct(search, 0.5), pct(search, 0.99), pct(flags, 0.5), pct(flags, 0.99), pct(cands, 0.5),
                pct(cands, 0.99));
    std::printf("script errors: %zu\n", script_errors);
    return script_errors == 0 ? 0 : 1;
}
