// `consilium plugin`, `consilium persona` and `consilium route`.
#include "commands.hpp"

#include "args.hpp"
#include "config.hpp"
#include "engine.hpp"
#include "locale/catalog.hpp"
#include "persona/hooks.hpp"
#include "persona/loader.hpp"
#include "plugin_loader.hpp"
#include "routing/coordinator.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>

namespace consilium::host {

using json = nlohmann::json;

ConfigSources config_sources(const Args &a);

namespace {

std::filesystem::path personas_dir_from(const Args &a, const std::vector<std::string> &positional) {
    if (auto d = a.get("personas")) return *d;
    if (!positional.empty()) return positional[0];
    return load_config(config_sources(a)).personas_dir;
}

}  // namespace

int cmd_plugin(const std::vector<std::string> &argv) {
    if (argv.empty()) throw UsageError("plugin needs a subcommand: list or check");
    std::string sub = argv[0];
    if (sub == "check") return cmd_plugin_check({argv.begin() + 1, argv.end()});
    Args a = Args::parse({argv.begin() + 1, argv.end()}, {"config", "set", "listen", "data-dir"});
    if (sub != "list") throw UsageError("unknown plugin subcommand '" + sub + "'");
    Config cfg = load_config(config_sources(a));
    PluginRegistry reg;
    reg.scan(cfg.plugin_dirs);
    std::printf("%-10s %-20s %-8s %-5s %s\n", "KIND", "ID", "VERSION", "ABI", "FILE");
    for (const auto &p : reg.plugins()) {
        std::printf("%-10s %-20s %-8s %u.%-3u %s\n", kind_name(p.descriptor->kind), p.descriptor->id,
                    p.descriptor->version, p.descriptor->abi_major, p.descriptor->abi_minor, p.file.c_str());
        std::printf("%-10s %s\n", "", p.descriptor->build_signature);
    }
    for (const auto &problem : reg.problems()) std::printf("refused: %s\n", problem.c_str());
    return reg.problems().empty() ? 0 : 1;
}

namespace {

// Lint beyond loading: a dry run of every persona hook and of the coordinator.
void dry_runs(const Panel &panel, std::vector<Diagnostic> &out) {
    for (const auto &p : panel.personas)
        for (const auto &[line, message] : hooks::dry_run(panel, p))
            out.push_back({p.script_file, line, line > 0 ? 1 : 0, message, true});
    RouteRequest req;
    req.text = "I have had a headache for three days";
    RouteDecision d = Coordinator::route(panel, req);
    if (d.script_error)
        out.push_back({d.script_error->file, d.script_error->line, d.script_error->line > 0 ? 1 : 0,
                       "route(): " + d.script_error->code + ": " + d.script_error->message, true});
}

std::string join(const std::vector<std::string> &v, const char *sep) {
    std::string s;
    for (const auto &x : v) s += (s.empty() ? "" : sep) + x;
    return s;
}

// Missing translations: every locale names every persona's title and has every UI string of en.
void check_locales(const Panel &panel, const std::filesystem::path &locales_dir, std::vector<Diagnostic> &out) {
    std::vector<std::string> problems;
    LocaleCatalog cat = LocaleCatalog::load(locales_dir, problems);
    for (const auto &p : problems) out.push_back({p, 0, 0, p, true});
    const Locale *en = cat.find("en");
    for (const auto &tag : cat.tags()) {
        const Locale *l = cat.find(tag);
        std::string file = (locales_dir / (tag + ".yaml")).string();
        std::string missing;
        for (const auto &p : panel.personas)
            if (!l->personas.contains(p.id) || !l->personas[p.id].contains("title")) missing += (missing.empty() ? "" : ", ") + p.id;
        if (!missing.empty()) out.push_back({file, 0, 0, "missing translation: no persona title for " + missing, false});
        if (en && l != en)
            for (auto it = en->strings.begin(); it != en->strings.end(); ++it)
                if (!l->strings.contains(it.key()))
                    out.push_back({file, 0, 0, "missing translation: strings." + it.key(), false});
    }
}

int persona_lint(const std::filesystem::path &dir, const std::filesystem::path &locales_dir) {
    LoadResult r = load_panel(dir, default_load_options());
    // Deeper checks on whatever loaded, so one broken file does not hide the others' problems.
    if (r.partial) dry_runs(*r.partial, r.diagnostics);
    if (r.partial && std::filesystem::is_directory(locales_dir)) check_locales(*r.partial, locales_dir, r.diagnostics);
    size_t warnings = 0, errors = 0;
    for (const auto &d : r.diagnostics) {
        std::printf("%s\n", d.format().c_str());
        (d.error ? errors : warnings) += 1;
    }
    size_t personas = r.partial ? r.partial->personas.size() : 0;
    std::fprintf(stderr, "%zu persona(s), %zu error(s), %zu warning(s)\n", personas, errors, warnings);
    return errors == 0 ? 0 : 1;
}

int persona_test(const std::filesystem::path &dir, const std::string &only) {
    LoadResult r = load_panel(dir, default_load_options());
    if (!r.ok()) {
        for (const auto &d : r.diagnostics)
            if (d.error) std::fprintf(stderr, "%s\n", d.format().c_str());
        std::fprintf(stderr, "consilium persona test: the personas do not load; run `consilium persona lint`\n");
        return 1;
    }
    const Panel &panel = *r.panel;
    size_t total = 0, failed = 0;
    for (const auto &p : panel.personas) {
        if (!only.empty() && p.id != only) continue;
        for (const auto &t : p.tests) {
            ++total;
            PatientProfile profile = PatientProfile::from_json(t.profile);
            std::vector<std::string> texts = t.turns.empty() ? std::vector<std::string>{t.text} : t.turns;
            RouteDecision d;
            std::string current;
            bool any_emergency = false;
            for (size_t i = 0; i < texts.size(); ++i) {
                RouteRequest req;
                req.text = texts[i];
                req.previous = i > 0 ? texts[i - 1] : "";
                req.profile = profile;
                req.current = current;
                req.turn_index = static_cast<int>(i);
                d = Coordinator::route(panel, req);
                current = d.specialist;
                any_emergency = any_emergency || d.emergency;
            }
            bool routed = std::find(t.expect.begin(), t.expect.end(), d.specialist) != t.expect.end();
            bool emergency_ok = (t.turns.empty() ? d.emergency : any_emergency) == t.emergency;
            if (routed && emergency_ok) continue;
            ++failed;
            std::printf("%s:%d: test failed\n", p.file.c_str(), t.line);
            std::printf("  text: %s\n", nlohmann::json(texts.back()).dump().c_str());
            std::printf("  - expected: %s, emergency %s\n", join(t.expect, " | ").c_str(), t.emergency ? "true" : "false");
            std::printf("  + got:      %s, emergency %s  (rule %s; top %s%s)\n", d.specialist.c_str(),
                        d.emergency ? "true" : "false", d.rule.c_str(), join(d.top, ", ").c_str(),
                        d.flags.empty() ? "" : ("; flags " + join(d.flags, ", ")).c_str());
            if (d.script_error) std::printf("  ! %s\n", d.script_error->format().c_str());
        }
    }
    std::fprintf(stderr, "%zu test(s), %zu failed\n", total, failed);
    std::printf("%zu passed, %zu failed\n", total - failed, failed);
    return failed == 0 ? 0 : 1;
}

}  // namespace

int cmd_persona(const std::vector<std::string> &argv) {
    if (argv.empty()) throw UsageError("persona needs a subcommand: lint or test");
    std::string sub = argv[0];
    Args a = Args::parse({argv.begin() + 1, argv.end()}, {"config", "set", "persona", "locales"});
    auto dir = personas_dir_from(a, a.positional);
    // Locales: --locales, else beside the persona folder, else the configured folder.
    std::filesystem::path locales = a.get("locales").value_or("");
    if (locales.empty()) locales = std::filesystem::absolute(dir).lexically_normal().parent_path() / "locales";
    if (sub == "lint") return persona_lint(dir, locales);
    if (sub == "test") return persona_test(dir, a.get("persona").value_or(""));
    throw UsageError("unknown persona subcommand '" + sub + "'");
}

int cmd_route(const std::vector<std::string> &argv) {
    Args a = Args::parse(argv, {"personas", "jsonl", "config", "set"}, {"explain"});
    bool explain = a.has("explain");
    auto file = a.get("jsonl");
    if (!file) throw UsageError("route needs --jsonl FILE (use - for standard input)");
    auto dir = personas_dir_from(a, {});
    LoadResult r = load_panel(dir, default_load_options());
    if (!r.ok()) {
        for (const auto &d : r.diagnostics)
            if (d.error) std::fprintf(stderr, "%s\n", d.format().c_str());
        std::fprintf(stderr, "consilium route: the personas in %s do not load\n", dir.c_str());
        return 1;
    }
    const Panel &panel = *r.panel;
    std::ifstream fin;
    std::istream *in = &std::cin;
    if (*file != "-") {
        fin.open(*file);
        if (!fin) throw std::runtime_error(*file + ": cannot be read");
        in = &fin;
    }
    std::string line;
    size_t lineno = 0;
    int status = 0;
    auto decide = [&](const std::string &text, const PatientProfile &profile, const std::string &current, int index,
                      const std::string &previous = "") {
        RouteRequest req;
        req.text = text;
        req.previous = previous;
        req.profile = profile;
        req.current = current;
        req.turn_index = index;
        return Coordinator::route(panel, req);
    };
    while (std::getline(*in, line)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        json c = json::parse(line, nullptr, false);
        if (!c.is_object() || !c.contains("id")) {
            std::fprintf(stderr, "%s:%zu: not a JSON object with an id\n", file->c_str(), lineno);
            status = 1;
            continue;
        }
        PatientProfile profile = PatientProfile::from_json(c.value("profile", json::object()));
        json out = {{"id", c["id"]}};
        if (c.contains("turns") && c["turns"].is_array()) {
            json turns = json::array();
            std::string current, previous;
            int i = 0;
            for (const auto &t : c["turns"]) {
                std::string text = t.is_string() ? t.get<std::string>() : "";
                RouteDecision d = decide(text, profile, current, i++, previous);
                current = d.specialist;
                previous = text;
                turns.push_back({{"specialist", d.specialist}, {"top", d.top}, {"emergency", d.emergency}});
            }
            out["turns"] = turns;
        } else if (c.contains("text") && c["text"].is_string()) {
            RouteDecision d = decide(c["text"], profile, "", 0);
            out["specialist"] = d.specialist;
            out["top"] = d.top;
            out["emergency"] = d.emergency;
            if (explain) {
                out["rule"] = d.rule;
                out["flags"] = d.flags;
                out["scores"] = d.scores;
                out["candidates"] = d.candidates;
                if (d.script_error) out["script_error"] = d.script_error->format();
            }
        } else {
            std::fprintf(stderr, "%s:%zu: a case needs \"text\" or \"turns\"\n", file->c_str(), lineno);
            status = 1;
            continue;
        }
        std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    }
    return status;
}

}  // namespace consilium::host
