#include "persona/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <fstream>
#include <set>
#include <unordered_map>
#include <sstream>

namespace consilium {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Diagnostic::format() const {
    std::ostringstream s;
    s << file;
    if (line > 0) s << ':' << line << ':' << (column > 0 ? column : 1);
    s << (error ? ": error: " : ": warning: ") << message;
    return s.str();
}

size_t LoadResult::errors() const {
    return static_cast<size_t>(std::count_if(diagnostics.begin(), diagnostics.end(),
                                             [](const Diagnostic &d) { return d.error; }));
}

const Persona *Panel::entry() const {
    for (const auto &p : personas)
        if (p.entry) return &p;
    return nullptr;
}

namespace {

// ^[a-z]{2,3}(-[A-Za-z0-9]+)?$
bool is_language_tag(const std::string &s) {
    size_t i = 0;
    while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') ++i;
    if (i < 2 || i > 3) return false;
    if (i == s.size()) return true;
    if (s[i] != '-' || i + 1 == s.size()) return false;
    for (++i; i < s.size(); ++i)
        if (!std::isalnum(static_cast<unsigned char>(s[i]))) return false;
    return true;
}

// ^[a-z][a-z0-9_]*$
bool is_persona_id(const std::string &s) {
    if (s.empty() || s[0] < 'a' || s[0] > 'z') return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

// Languages every persona is expected to carry keywords in (docs/personas.md).
const std::vector<std::string> kRequiredKeywordLanguages = {"en", "es", "fr", "de", "pt", "it",
                                                            "ar", "zh", "hi", "ur", "tr", "ru"};
const std::set<std::string> kVoices = {"alloy", "ash",     "ballad", "coral", "echo",
                                       "sage",  "shimmer", "verse",  "marin", "cedar"};

std::string read_file(const fs::path &p, bool &ok) {
    std::ifstream in(p, std::ios::binary);
    ok = static_cast<bool>(in);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Walks YAML nodes against the persona schema, collecting diagnostics with positions.
class Checker {
public:
    Checker(std::string file, std::vector<Diagnostic> &diags) : file_(std::move(file)), diags_(diags) {}

    void error(const YAML::Mark &m, const std::string &msg) { add(m, msg, true); }
    void warn(const YAML::Mark &m, const std::string &msg) { add(m, msg, false); }
    void error(const YAML::Node &n, const std::string &msg) { error(n.Mark(), msg); }
    void warn(const YAML::Node &n, const std::string &msg) { warn(n.Mark(), msg); }
    void file_error(const std::string &msg) { diags_.push_back({file_, 0, 0, msg, true}); }
    size_t errors() const { return errors_; }
    const std::string &file() const { return file_; }

    // Refuses keys not in `allowed` and reports missing `required` ones.
    void keys(const YAML::Node &map, const std::string &where, const std::set<std::string> &allowed,
              const std::set<std::string> &required) {
        std::set<std::string> seen;
        for (const auto &kv : map) {
            std::string k = kv.first.Scalar();
            if (!allowed.count(k)) {
                error(kv.first.Mark(), "unknown key '" + k + "'" + (where.empty() ? "" : " in " + where) +
                                           suggestion(k, allowed));
            }
            if (!seen.insert(k).second) error(kv.first.Mark(), "duplicate key '" + k + "'");
        }
        for (const auto &r : required)
            if (!seen.count(r))
                error(map.Mark(), "missing required key '" + r + "'" + (where.empty() ? "" : " in " + where));
    }

    std::optional<std::string> str(const YAML::Node &map, const char *key, bool nonempty = true) {
        YAML::Node n = map[key];
        if (!n) return std::nullopt;
        if (!n.IsScalar()) {
            error(n, std::string("'") + key + "' must be a string");
            return std::nullopt;
        }
        if (nonempty && n.Scalar().empty()) {
            error(n, std::string("'") + key + "' must not be empty");
            return std::nullopt;
        }
        return n.Scalar();
    }

    std::optional<bool> boolean(const YAML::Node &map, const char *key) {
        YAML::Node n = map[key];
        if (!n) return std::nullopt;
        bool v = false;
        if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v) || n.Tag() == "!") {
            error(n, std::string("'") + key + "' must be true or false");
            return std::nullopt;
        }
        return v;
    }

    std::optional<double> number(const YAML::Node &map, const char *key) {
        YAML::Node n = map[key];
        if (!n || n.IsNull()) return std::nullopt;
        double v = 0;
        if (!n.IsScalar() || n.Tag() == "!" || !YAML::convert<double>::decode(n, v)) {
            error(n, std::string("'") + key + "' must be a number");
            return std::nullopt;
        }
        return v;
    }

    std::vector<std::string> str_list(const YAML::Node &map, const char *key, size_t min_items) {
        std::vector<std::string> out;
        YAML::Node n = map[key];
        if (!n) return out;
        if (!n.IsSequence()) {
            error(n, std::string("'") + key + "' must be a list of strings");
            return out;
        }
        for (const auto &item : n) {
            if (!item.IsScalar() || item.Scalar().empty()) {
                error(item, std::string("every item of '") + key + "' must be a non-empty string");
                continue;
            }
            out.push_back(item.Scalar());
        }
        if (out.size() < min_items)
            error(n, std::string("'") + key + "' needs at least " + std::to_string(min_items) + " items, has " +
                         std::to_string(out.size()));
        return out;
    }

private:
    void add(const YAML::Mark &m, const std::string &msg, bool is_error) {
        diags_.push_back({file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, msg, is_error});
        if (is_error) ++errors_;
    }
    static std::string suggestion(const std::string &k, const std::set<std::string> &allowed) {
        // Closest allowed key by edit distance, when close.
        std::string best;
        size_t best_d = 3;
        for (const auto &a : allowed) {
            size_t n = k.size(), m = a.size();
            std::vector<size_t> prev(m + 1), cur(m + 1);
            for (size_t j = 0; j <= m; ++j) prev[j] = j;
            for (size_t i = 1; i <= n; ++i) {
                cur[0] = i;
                for (size_t j = 1; j <= m; ++j)
                    cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (k[i - 1] == a[j - 1] ? 0 : 1)});
                std::swap(prev, cur);
            }
            if (prev[m] < best_d) {
                best_d = prev[m];
                best = a;
            }
        }
        return best.empty() ? "" : " (did you mean '" + best + "'?)";
    }

    std::string file_;
    std::vector<Diagnostic> &diags_;
    size_t errors_ = 0;
};

std::optional<YAML::Node> parse_yaml(const fs::path &p, std::vector<Diagnostic> &diags) {
    bool ok = false;
    std::string text = read_file(p, ok);
    if (!ok) {
        diags.push_back({p.string(), 0, 0, "cannot be read", true});
        return std::nullopt;
    }
    try {
        return YAML::Load(text);
    } catch (const YAML::Exception &e) {
        diags.push_back({p.string(), e.mark.line + 1, e.mark.column + 1, "YAML syntax: " + e.msg, true});
        return std::nullopt;
    }
}

// patterns: {lang: [{all: [group, ...]}, ...]}
std::vector<std::pair<std::string, Pattern>> read_patterns(Checker &c, const YAML::Node &node, const std::string &where) {
    std::vector<std::pair<std::string, Pattern>> out;
    if (!node || !node.IsMap()) {
        c.error(node ? node.Mark() : YAML::Mark(), where + ": 'patterns' must map language tags to lists of {all: [...]}");
        return out;
    }
    for (const auto &kv : node) {
        std::string lang = kv.first.Scalar();
        if (!is_language_tag(lang)) c.error(kv.first.Mark(), "'" + lang + "' is not a language tag");
        if (!kv.second.IsSequence()) {
            c.error(kv.second, where + ": patterns for '" + lang + "' must be a list");
            continue;
        }
        for (const auto &p : kv.second) {
            if (!p.IsMap()) {
                c.error(p, where + ": a pattern is {all: [\"group\", ...]}");
                continue;
            }
            c.keys(p, "a pattern", {"all"}, {"all"});
            std::vector<std::string> groups = c.str_list(p, "all", 1);
            if (groups.empty()) continue;
            try {
                out.emplace_back(lang, Pattern(groups));
            } catch (const std::exception &e) {
                c.error(p, where + ": " + e.what());
            }
        }
    }
    return out;
}

void read_persona(Checker &c, const YAML::Node &doc, Persona &p, const std::string &expected_id) {
    if (!doc.IsMap()) {
        c.error(doc, "a persona file must be a mapping of keys");
        return;
    }
    static const std::set<std::string> keys = {"schema", "id", "specialty", "group", "entry", "name", "title",
                                               "scope", "audience", "voice", "models", "prompt", "examples",
                                               "keywords", "red_flags", "sources", "follow_ups", "tests"};
    c.keys(doc, "", keys, keys);
    if (auto v = c.number(doc, "schema"); v && *v != 1)
        c.error(doc["schema"], "schema " + std::to_string(static_cast<int>(*v)) + " is not supported (this engine reads schema 1)");
    p.id = c.str(doc, "id").value_or("");
    if (!p.id.empty() && p.id != expected_id)
        c.error(doc["id"], "id '" + p.id + "' does not match the file name '" + expected_id + ".yaml'");
    if (!p.id.empty() && !is_persona_id(p.id))
        c.error(doc["id"], "id must be lowercase letters, digits and _");
    p.specialty = c.str(doc, "specialty").value_or("");
    p.group = c.str(doc, "group").value_or("");
    p.entry = c.boolean(doc, "entry").value_or(false);
    p.name = c.str(doc, "name").value_or("");
    p.title = c.str(doc, "title").value_or("");
    p.scope = c.str(doc, "scope").value_or("");
    p.prompt = c.str(doc, "prompt").value_or("");
    if (!p.prompt.empty() && p.prompt.size() < 200)
        c.warn(doc["prompt"], "the prompt is very short (" + std::to_string(p.prompt.size()) + " characters)");

    if (YAML::Node a = doc["audience"]) {
        if (!a.IsMap()) {
            c.error(a, "'audience' must be a mapping");
        } else {
            c.keys(a, "audience", {"min_age_years", "max_age_years", "sexes", "pregnancy"}, {});
            p.audience.min_age_years = c.number(a, "min_age_years");
            p.audience.max_age_years = c.number(a, "max_age_years");
            p.audience.sexes = c.str_list(a, "sexes", 0);
            for (const auto &s : p.audience.sexes)
                if (s != "female" && s != "male") c.error(a["sexes"], "sexes may list 'female' and 'male' only");
            p.audience.pregnancy = c.str(a, "pregnancy").value_or("any");
            if (p.audience.pregnancy != "any" && p.audience.pregnancy != "preferred")
                c.error(a["pregnancy"], "pregnancy must be 'any' or 'preferred'");
            if (p.audience.min_age_years && p.audience.max_age_years &&
                *p.audience.min_age_years > *p.audience.max_age_years)
                c.error(a, "min_age_years is above max_age_years");
        }
    }
    if (YAML::Node v = doc["voice"]) {
        if (!v.IsMap()) {
            c.error(v, "'voice' must be a mapping {realtime, style}");
        } else {
            c.keys(v, "voice", {"realtime", "style"}, {"realtime", "style"});
            p.voice = c.str(v, "realtime").value_or("");
            p.voice_style = c.str(v, "style").value_or("");
            if (!p.voice.empty() && !kVoices.count(p.voice))
                c.error(v["realtime"], "unknown realtime voice '" + p.voice + "'");
        }
    }
    if (YAML::Node m = doc["models"]) {
        if (!m.IsMap()) {
            c.error(m, "'models' must be a mapping {primary, fallbacks}");
        } else {
            c.keys(m, "models", {"primary", "fallbacks"}, {"primary", "fallbacks"});
            p.model_primary = c.str(m, "primary").value_or("");
            p.model_fallbacks = c.str_list(m, "fallbacks", 0);
        }
    }
    p.examples = c.str_list(doc, "examples", 10);
    if (YAML::Node k = doc["keywords"]) {
        if (!k.IsMap()) {
            c.error(k, "'keywords' must map language tags to lists of terms");
        } else {
            for (const auto &kv : k) {
                std::string lang = kv.first.Scalar();
                if (!kv.second.IsSequence()) {
                    c.error(kv.second, "keywords for '" + lang + "' must be a list");
                    continue;
                }
                for (const auto &t : kv.second) {
                    if (!t.IsScalar() || t.Scalar().empty()) c.error(t, "a keyword must be a non-empty string");
                    else p.keywords[lang].push_back(t.Scalar());
                }
            }
            if (!p.keywords.count("en")) c.error(k, "keywords need at least the 'en' list");
            for (const auto &lang : kRequiredKeywordLanguages)
                if (!p.keywords.count(lang)) c.warn(k, "missing translation: no keywords for '" + lang + "'");
        }
    }
    if (YAML::Node rf = doc["red_flags"]) {
        if (!rf.IsSequence()) {
            c.error(rf, "'red_flags' must be a list");
        } else {
            for (const auto &f : rf) {
                if (!f.IsMap()) {
                    c.error(f, "a red flag is {id, emergency, message, patterns}");
                    continue;
                }
                c.keys(f, "a red flag", {"id", "emergency", "message", "patterns"}, {"id", "emergency", "message", "patterns"});
                RedFlag flag;
                flag.id = c.str(f, "id").value_or("");
                flag.emergency = c.boolean(f, "emergency").value_or(true);
                flag.message = c.str(f, "message").value_or("");
                flag.owner = expected_id;
                flag.route_to = expected_id;
                flag.patterns = read_patterns(c, f["patterns"], "red flag '" + flag.id + "'");
                p.red_flags.push_back(std::move(flag));
            }
        }
    }
    if (YAML::Node s = doc["sources"]) {
        if (!s.IsSequence() || s.size() == 0) {
            c.error(s, "'sources' must be a non-empty list of {title, url}");
        } else {
            for (const auto &src : s) {
                if (!src.IsMap()) {
                    c.error(src, "a source is {title, url}");
                    continue;
                }
                c.keys(src, "a source", {"title", "url"}, {"title", "url"});
                Source out{c.str(src, "title").value_or(""), c.str(src, "url").value_or("")};
                if (!out.url.empty() && out.url.rfind("https://", 0) != 0)
                    c.error(src["url"], "source URLs must start with https://");
                p.sources.push_back(std::move(out));
            }
        }
    }
    p.follow_ups = c.str_list(doc, "follow_ups", 1);
    if (YAML::Node t = doc["tests"]) {
        if (!t.IsSequence()) {
            c.error(t, "'tests' must be a list");
        } else {
            for (const auto &tc : t) {
                if (!tc.IsMap()) {
                    c.error(tc, "a test is {text, profile?, expect, emergency}");
                    continue;
                }
                c.keys(tc, "a test", {"text", "turns", "profile", "expect", "emergency"}, {"expect", "emergency"});
                PersonaTest out;
                out.line = tc.Mark().line + 1;
                out.text = c.str(tc, "text").value_or("");
                out.turns = c.str_list(tc, "turns", 0);
                if (out.text.empty() == out.turns.empty()) c.error(tc, "a test needs either 'text' or 'turns'");
                out.expect = c.str_list(tc, "expect", 1);
                out.emergency = c.boolean(tc, "emergency").value_or(false);
                if (YAML::Node pr = tc["profile"]) {
                    if (!pr.IsMap()) {
                        c.error(pr, "'profile' must be {age_years, sex, pregnant}");
                    } else {
                        c.keys(pr, "a profile", {"age_years", "sex", "pregnant"}, {});
                        out.profile = json::object();
                        if (auto a = c.number(pr, "age_years")) out.profile["age_years"] = *a;
                        if (auto s = c.str(pr, "sex")) out.profile["sex"] = *s;
                        if (auto g = c.boolean(pr, "pregnant")) out.profile["pregnant"] = *g;
                    }
                }
                p.tests.push_back(std::move(out));
            }
        }
    }
}

void read_emergency(Checker &c, const YAML::Node &doc, std::vector<RedFlag> &flags) {
    if (!doc.IsMap()) {
        c.error(doc, "emergency.yaml must be a mapping {schema, flags}");
        return;
    }
    c.keys(doc, "", {"schema", "flags"}, {"schema", "flags"});
    YAML::Node list = doc["flags"];
    if (!list || !list.IsSequence()) {
        c.error(doc, "'flags' must be a list");
        return;
    }
    std::set<std::string> ids;
    for (const auto &f : list) {
        if (!f.IsMap()) {
            c.error(f, "a flag is {id, route_to, message, patterns}");
            continue;
        }
        c.keys(f, "a flag", {"id", "route_to", "message", "patterns"}, {"id", "route_to", "message", "patterns"});
        RedFlag flag;
        flag.id = c.str(f, "id").value_or("");
        if (!ids.insert(flag.id).second) c.error(f["id"], "duplicate flag id '" + flag.id + "'");
        flag.route_to = c.str(f, "route_to").value_or("emergency_medicine");
        flag.message = c.str(f, "message").value_or("");
        flag.patterns = read_patterns(c, f["patterns"], "flag '" + flag.id + "'");
        flag.emergency = true;
        flags.push_back(std::move(flag));
    }
}

}  // namespace

LoadResult load_panel(const fs::path &dir, const LoadOptions &options) {
    LoadResult result;
    auto &diags = result.diagnostics;
    auto panel = std::make_shared<Panel>();
    panel->dir = dir.string();

    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        diags.push_back({dir.string(), 0, 0, "is not a directory of personas", true});
        return result;
    }
    std::vector<fs::path> files;
    for (const auto &e : fs::directory_iterator(dir, ec))
        if (e.is_regular_file() && e.path().extension() == ".yaml" && e.path().filename() != "emergency.yaml")
            files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) diags.push_back({dir.string(), 0, 0, "contains no persona (*.yaml)", true});

    size_t errors_before = 0;
    for (const auto &f : files) {
        auto doc = parse_yaml(f, diags);
        if (!doc) continue;
        Checker c(f.string(), diags);
        Persona p;
        p.file = f.string();
        read_persona(c, *doc, p, f.stem().string());
        fs::path script = f;
        script.replace_extension(".lua");
        if (fs::exists(script, ec)) {
            bool ok = false;
            p.script = read_file(script, ok);
            p.script_file = script.string();
            if (!ok) {
                diags.push_back({script.string(), 0, 0, "cannot be read", true});
            } else if (options.check_lua) {
                std::string problem = options.check_lua(p.script, script.string());
                if (!problem.empty()) {
                    int line = std::atoi(problem.c_str());
                    auto colon = problem.find(": ");
                    diags.push_back({script.string(), line, 1,
                                     "Lua syntax: " + (colon == std::string::npos ? problem : problem.substr(colon + 2)),
                                     true});
                }
            }
        }
        if (!p.id.empty() && panel->by_id.count(p.id)) {
            c.error((*doc)["id"], "duplicate persona id '" + p.id + "' (also in " +
                                      panel->personas[panel->by_id[p.id]].file + ")");
        }
        if (c.errors() == 0 && !p.id.empty()) {
            panel->by_id[p.id] = panel->personas.size();
            panel->personas.push_back(std::move(p));
        }
        errors_before += c.errors();
    }

    // Cross-file checks.
    size_t entries = 0;
    for (const auto &p : panel->personas) {
        if (p.entry) ++entries;
        for (const auto &t : p.tests)
            for (const auto &e : t.expect)
                if (!panel->by_id.count(e))
                    diags.push_back({p.file, t.line, 1, "test expects unknown persona '" + e + "'", true});
    }
    if (!panel->personas.empty() && entries != 1)
        diags.push_back({dir.string(), 0, 0,
                         "exactly one persona must have entry: true (found " + std::to_string(entries) + ")", true});

    fs::path emergency = dir / "emergency.yaml";
    if (fs::exists(emergency, ec)) {
        if (auto doc = parse_yaml(emergency, diags)) {
            Checker c(emergency.string(), diags);
            read_emergency(c, *doc, panel->emergency_flags);
            for (const auto &f : panel->emergency_flags)
                if (!panel->by_id.count(f.route_to) && !panel->personas.empty())
                    diags.push_back({emergency.string(), 0, 0,
                                     "flag '" + f.id + "' routes to unknown persona '" + f.route_to + "'", true});
        }
    } else {
        diags.push_back({emergency.string(), 0, 0, "missing: panel-wide emergency flags are required", true});
    }

    fs::path coord = dir / "coordinator.lua";
    if (fs::exists(coord, ec)) {
        bool ok = false;
        panel->coordinator = read_file(coord, ok);
        panel->coordinator_file = coord.string();
        if (!ok) diags.push_back({coord.string(), 0, 0, "cannot be read", true});
        else if (options.check_lua) {
            std::string problem = options.check_lua(panel->coordinator, coord.string());
            if (!problem.empty()) {
                int line = std::atoi(problem.c_str());
                auto colon = problem.find(": ");
                diags.push_back({coord.string(), line, 1,
                                 "Lua syntax: " + (colon == std::string::npos ? problem : problem.substr(colon + 2)), true});
            }
        }
    } else if (options.require_coordinator) {
        diags.push_back({coord.string(), 0, 0, "missing: the coordinator decides who answers each turn", true});
    }

    const bool failed = result.errors() > 0;

    // The routing index.
    panel->index = TextIndex(panel->personas.size());
    for (uint32_t i = 0; i < panel->personas.size(); ++i) {
        const Persona &p = panel->personas[i];
        for (const auto &e : p.examples) panel->index.add_example(i, e);
        panel->index.add_scope(i, p.scope);
        panel->index.add_scope(i, p.title);
        for (const auto &[lang, terms] : p.keywords)
            for (const auto &t : terms) panel->index.add_keyword(i, t);
    }
    panel->index.finalize();
    for (const auto &f : panel->emergency_flags) panel->flags.push_back(&f);
    for (const auto &p : panel->personas)
        for (const auto &f : p.red_flags) panel->flags.push_back(&f);
    // How common each word is in what patients write (the examples): red flags are indexed by
    // their rarest group.
    std::unordered_map<std::string, double> frequency;
    for (const auto &p : panel->personas)
        for (const auto &e : p.examples)
            for (const auto &t : text::tokenize(e)) frequency[t.text] += 1;
    auto cost = [&](const std::string &w) {
        auto it = frequency.find(w);
        return 1.0 + (it == frequency.end() ? 0.0 : it->second);
    };
    for (uint32_t i = 0; i < panel->flags.size(); ++i)
        for (const auto &[lang, pattern] : panel->flags[i]->patterns) panel->flag_index.add(&pattern, i, cost);
    result.partial = panel;
    if (failed) return result;
    static std::atomic<uint64_t> generation{0};
    panel->generation = ++generation;
    result.panel = panel;
    return result;
}

}  // namespace consilium
