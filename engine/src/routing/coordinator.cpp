#include "routing/coordinator.hpp"

#include "persona/hooks.hpp"
#include "util/log.hpp"

#include <algorithm>

namespace consilium {

using json = nlohmann::json;

json PatientProfile::to_json() const {
    json j = json::object();
    if (age_years) j["age_years"] = *age_years;
    if (!sex.empty()) j["sex"] = sex;
    j["pregnant"] = pregnant;
    return j;
}

PatientProfile PatientProfile::from_json(const json &j) {
    PatientProfile p;
    if (!j.is_object()) return p;
    if (j.contains("age_years") && j["age_years"].is_number()) p.age_years = j["age_years"].get<double>();
    if (j.contains("sex") && j["sex"].is_string()) p.sex = j["sex"];
    if (j.contains("pregnant") && j["pregnant"].is_boolean()) p.pregnant = j["pregnant"];
    return p;
}

json RouteDecision::to_json() const {
    json j = {{"specialist", specialist}, {"top", top}, {"emergency", emergency},
              {"flags", flags}, {"rule", rule}, {"scores", scores}};
    if (script_error) j["script_error"] = script_error->format();
    return j;
}

bool Coordinator::audience_fits(const Persona &p, const PatientProfile &profile) {
    if (profile.age_years) {
        if (p.audience.min_age_years && *profile.age_years < *p.audience.min_age_years) return false;
        if (p.audience.max_age_years && *profile.age_years > *p.audience.max_age_years) return false;
    }
    if (!profile.sex.empty() && !p.audience.sexes.empty() &&
        std::find(p.audience.sexes.begin(), p.audience.sexes.end(), profile.sex) == p.audience.sexes.end())
        return false;
    return true;
}

json Coordinator::match_flags(const Panel &panel, const std::string &text) {
    PreparedText prepared(text);
    json out = json::array();
    for (uint32_t i : panel.flag_index.match(prepared)) {
        const RedFlag &f = *panel.flags[i];
        out.push_back({{"id", f.id}, {"emergency", f.emergency}, {"route_to", f.route_to}, {"owner", f.owner},
                       {"message", f.message}});
    }
    return out;
}

json Coordinator::search(const Panel &panel, const std::string &text) {
    json out = json::array();
    for (const auto &h : panel.index.search(text)) {
        const Persona &p = panel.personas[h.persona];
        out.push_back({{"id", p.id}, {"keywords", h.keywords}, {"examples", h.examples},
                       {"nearest", h.nearest}, {"matched", h.matched}, {"matched_weights", h.matched_weights}});
    }
    return out;
}

namespace {
constexpr double kWKeywords = 1.0, kWExamples = 0.35, kWNearest = 4.0;
constexpr size_t kScoredByScripts = 8;  // persona score() hooks run for the best few only
constexpr size_t kCandidates = 20;      // what the coordinator sees
}  // namespace

json Coordinator::turn_json(const RouteRequest &req) {
    return {{"text", req.text},     {"profile", req.profile.to_json()}, {"current", req.current},
            {"pinned", req.pinned}, {"locale", req.locale},             {"turn_index", req.turn_index},
            {"previous", req.previous}};
}

json Coordinator::candidates(const Panel &panel, const RouteRequest &req, const json &turn) {
    struct C {
        const IndexHit *hit;
        double base;
    };
    auto hits = panel.index.search(turn.value("text", ""));
    std::vector<C> cs;
    cs.reserve(hits.size());
    for (const auto &h : hits) cs.push_back({&h, kWKeywords * h.keywords + kWExamples * h.examples + kWNearest * h.nearest});
    std::sort(cs.begin(), cs.end(), [&](const C &a, const C &b) {
        if (a.base != b.base) return a.base > b.base;
        return panel.personas[a.hit->persona].id < panel.personas[b.hit->persona].id;
    });
    json out = json::array();
    for (size_t i = 0; i < cs.size() && i < kCandidates; ++i) {
        const Persona &p = panel.personas[cs[i].hit->persona];
        json c = {{"id", p.id},
                  {"group", p.group},
                  {"keywords", cs[i].hit->keywords},
                  {"examples", cs[i].hit->examples},
                  {"nearest", cs[i].hit->nearest},
                  {"matched", cs[i].hit->matched},
                  {"matched_weights", cs[i].hit->matched_weights},
                  {"base", cs[i].base},
                  {"bonus", 0.0},
                  {"fits", audience_fits(p, req.profile)},
                  {"pregnancy_preferred", p.audience.pregnancy == "preferred"}};
        if (i < kScoredByScripts && !p.script.empty()) c["bonus"] = hooks::score(panel, p, turn, c);
        out.push_back(std::move(c));
    }
    return out;
}

lua::FunctionTable Coordinator::functions(const Panel &panel) {
    lua::FunctionTable t;
    t["search"] = [&panel](const json &args) {
        if (args.empty() || !args[0].is_string()) throw std::invalid_argument("search(text) needs a string");
        return search(panel, args[0].get<std::string>());
    };
    t["red_flags"] = [&panel](const json &args) {
        if (args.empty() || !args[0].is_string()) throw std::invalid_argument("red_flags(text) needs a string");
        return match_flags(panel, args[0].get<std::string>());
    };
    t["persona"] = [&panel](const json &args) -> json {
        if (args.empty() || !args[0].is_string()) return nullptr;
        const Persona *p = panel.find(args[0].get<std::string>());
        if (!p) return nullptr;
        json a = json::object();
        if (p->audience.min_age_years) a["min_age_years"] = *p->audience.min_age_years;
        if (p->audience.max_age_years) a["max_age_years"] = *p->audience.max_age_years;
        a["sexes"] = p->audience.sexes;
        a["pregnancy"] = p->audience.pregnancy;
        return {{"id", p->id}, {"group", p->group}, {"entry", p->entry}, {"name", p->name},
                {"specialty", p->specialty}, {"audience", a}};
    };
    t["exists"] = [&panel](const json &args) -> json {
        return !args.empty() && args[0].is_string() && panel.find(args[0].get<std::string>()) != nullptr;
    };
    t["personas"] = [&panel](const json &) {
        json ids = json::array();
        for (const auto &p : panel.personas) ids.push_back(p.id);
        return ids;
    };
    t["normalize"] = [](const json &args) -> json {
        if (args.empty() || !args[0].is_string()) return "";
        return text::normalize(args[0].get<std::string>());
    };
    t["tokens"] = [](const json &args) -> json {
        json out = json::array();
        if (args.empty() || !args[0].is_string()) return out;
        for (const auto &tok : text::tokenize(args[0].get<std::string>())) out.push_back(tok.text);
        return out;
    };
    t["log"] = [](const json &args) -> json {
        // Scripts may log codes; the text is truncated and must carry no health data.
        std::string msg = args.empty() ? "" : (args[0].is_string() ? args[0].get<std::string>() : args[0].dump());
        if (msg.size() > 200) msg.resize(200);
        log::info("lua", "script log", {{"code", msg}});
        return nullptr;
    };
    return t;
}

RouteDecision Coordinator::route_builtin(const Panel &panel, const RouteRequest &req) {
    RouteDecision d;
    d.rule = "builtin";
    json flags = match_flags(panel, req.text);
    for (const auto &f : flags) {
        d.flags.push_back(f["id"]);
        if (f["emergency"].get<bool>() && !d.emergency) {
            d.emergency = true;
            d.emergency_message = f["message"];
            if (panel.find(f["route_to"])) d.specialist = f["route_to"];
        }
    }
    struct Cand {
        std::string id;
        double score;
    };
    std::vector<Cand> cands;
    for (const auto &c : candidates(panel, req, turn_json(req))) {
        const Persona &p = *panel.find(c["id"].get<std::string>());
        double s = c["base"].get<double>() + c["bonus"].get<double>();
        if (!audience_fits(p, req.profile)) s *= 0.2;
        if (p.id == req.current) s *= 1.15;
        cands.push_back({p.id, s});
        d.scores[p.id] = s;
    }
    std::sort(cands.begin(), cands.end(), [](const Cand &a, const Cand &b) {
        return a.score != b.score ? a.score > b.score : a.id < b.id;
    });
    for (size_t i = 0; i < cands.size() && i < 3; ++i) d.top.push_back(cands[i].id);
    if (!req.pinned.empty() && panel.find(req.pinned)) {
        d.specialist = req.pinned;
        d.rule = "builtin:pinned";
    } else if (d.specialist.empty()) {
        if (!cands.empty() && cands[0].score > 1.0) d.specialist = cands[0].id;
        else if (!req.current.empty() && panel.find(req.current)) d.specialist = req.current;
        else if (const Persona *e = panel.entry()) d.specialist = e->id;
        else if (!panel.personas.empty()) d.specialist = panel.personas[0].id;
    }
    if (d.top.empty() && !d.specialist.empty()) d.top.push_back(d.specialist);
    return d;
}

RouteDecision Coordinator::route(const Panel &panel, const RouteRequest &req) {
    if (panel.coordinator.empty()) return route_builtin(panel, req);
    json turn = turn_json(req);
    turn["candidates"] = candidates(panel, req, turn);
    if (const Persona *e = panel.entry()) turn["entry"] = e->id;
    lua::FunctionTable api = functions(panel);
    lua::CallResult r = lua::thread_runtime().call(panel.coordinator_file, panel.coordinator, "route", {turn}, api);
    std::optional<lua::ScriptError> error = r.error;
    if (!error) {
        const json &v = *r.value;
        if (!v.is_object() || !v.contains("specialist") || !v["specialist"].is_string() ||
            !panel.find(v["specialist"].get<std::string>())) {
            error = lua::ScriptError{"bad_result", panel.coordinator_file, 0,
                                     "route() must return {specialist = <a persona id>, ...}"};
        } else {
            RouteDecision d;
            d.specialist = v["specialist"];
            d.emergency = v.value("emergency", false);
            d.rule = v.contains("rule") && v["rule"].is_string() ? v["rule"].get<std::string>() : "script";
            if (v.contains("top") && v["top"].is_array())
                for (const auto &t : v["top"])
                    if (t.is_string() && panel.find(t.get<std::string>()) && d.top.size() < 3) d.top.push_back(t);
            if (d.top.empty()) d.top.push_back(d.specialist);
            if (v.contains("flags") && v["flags"].is_array())
                for (const auto &f : v["flags"])
                    if (f.is_string()) d.flags.push_back(f);
            if (v.contains("emergency_message") && v["emergency_message"].is_string())
                d.emergency_message = v["emergency_message"];
            if (v.contains("scores")) d.scores = v["scores"];
            d.candidates = json::array();
            for (size_t i = 0; i < turn["candidates"].size() && i < 5; ++i) d.candidates.push_back(turn["candidates"][i]);
            return d;
        }
    }
    log::error("coordinator", "coordinator script failed; built-in routing answered",
               {{"file", error->file}, {"line", error->line}, {"code", error->code}});
    RouteDecision d = route_builtin(panel, req);
    d.script_error = error;
    return d;
}

}  // namespace consilium
