#include "engine.hpp"

#include "lua/runtime.hpp"
#include "util/log.hpp"

namespace consilium {

using json = nlohmann::json;
using namespace std::chrono;

std::filesystem::path key_file(const json &cfg, const std::filesystem::path &data_dir, const char *section,
                               const char *default_name) {
    std::string f = cfg.at(section).at("key_file").get<std::string>();
    if (!f.empty()) return std::filesystem::absolute(f);
    return data_dir / "keys" / default_name;
}

KeyRing load_data_keys(const json &cfg, const std::filesystem::path &data_dir) {
    return KeyRing::load(key_file(cfg, data_dir, "encryption", "data.keys"), "CONSILIUM_DATA_KEYS", true);
}

std::unique_ptr<TokenSigner> make_token_signer(const json &cfg, const std::filesystem::path &data_dir) {
    const json &auth = cfg.at("auth");
    TokenSettings ts;
    ts.issuer = auth.at("issuer");
    ts.audience = auth.at("audience");
    ts.access_ttl_s = auth.at("access_ttl_s");
    return std::make_unique<TokenSigner>(
        KeyRing::load(key_file(cfg, data_dir, "auth", "token.keys"), "CONSILIUM_TOKEN_KEYS", true), ts);
}

LoadOptions default_load_options() {
    LoadOptions o;
    o.check_lua = [](const std::string &source, const std::string &file) { return lua::Runtime::check_syntax(source, file); };
    return o;
}

Engine::Engine(const json &cfg, EnginePaths paths, Executor &executor, metrics::Registry &metrics,
               std::shared_ptr<PluginInstance> storage, std::map<std::string, std::shared_ptr<PluginInstance>> providers)
    : executor_(executor), metrics_(metrics), paths_(std::move(paths)), storage_plugin_(std::move(storage)),
      provider_plugins_(std::move(providers)) {
    const json &chat = cfg.at("chat");
    chat_settings_.max_frame_bytes = chat.at("max_frame_bytes").get<size_t>();
    chat_settings_.max_text_chars = chat.at("max_text_chars").get<size_t>();
    chat_settings_.auth_timeout = milliseconds(chat.at("auth_timeout_ms").get<int64_t>());

    try {
        sealer_ = std::make_unique<Sealer>(load_data_keys(cfg, paths_.data_dir));
        signer_ = make_token_signer(cfg, paths_.data_dir);
    } catch (const KeyError &e) {
        throw EngineError(std::string("keys: ") + e.what());
    }

    store_ = std::make_unique<Store>(storage_plugin_->vtable<cs_storage_vtable>(), storage_plugin_->instance());

    LoadResult loaded = load_panel(paths_.personas_dir, default_load_options());
    for (const auto &d : loaded.diagnostics)
        if (d.error) log::error("personas", d.format());
    if (!loaded.ok())
        throw EngineError("personas in " + paths_.personas_dir.string() + " have " + std::to_string(loaded.errors()) +
                          " error(s); run `consilium persona lint " + paths_.personas_dir.string() + "`");
    panel_ = loaded.panel;
    log::info("personas", "panel loaded", {{"personas", panel_->personas.size()}, {"generation", panel_->generation}});

    std::vector<std::string> problems;
    auto cat = std::make_shared<LocaleCatalog>(LocaleCatalog::load(paths_.locales_dir, problems));
    for (const auto &p : problems) log::warn("locales", p);
    if (!cat->find("en")) throw EngineError("locales in " + paths_.locales_dir.string() + ": en.yaml is required");
    locales_ = cat;

    // Models and providers.
    std::map<std::string, ModelInfo> models;
    for (auto it = cfg.at("models").begin(); it != cfg.at("models").end(); ++it) {
        ModelInfo m;
        m.alias = it.key();
        m.provider = it->at("provider");
        m.model = it->at("model");
        m.context_window = it->value("context_window", int64_t{0});
        m.vision = it->value("vision", false);
        m.pdf = it->value("pdf", false);
        m.max_output_tokens = it->value("max_output_tokens", int64_t{0});
        models[m.alias] = m;
    }
    const json &c = cfg.at("connector");
    for (auto &[name, inst] : provider_plugins_)
        clients_[name] = std::make_shared<ProviderClient>(inst, executor_, c.at("max_concurrent_per_provider").get<int>());
    ConnectorSettings cs;
    cs.connect_timeout = milliseconds(c.at("connect_timeout_ms").get<int64_t>());
    cs.first_token_timeout = milliseconds(c.at("first_token_timeout_ms").get<int64_t>());
    cs.idle_timeout = milliseconds(c.at("idle_timeout_ms").get<int64_t>());
    cs.turn_budget = milliseconds(c.at("turn_budget_ms").get<int64_t>());
    cs.max_retries = c.at("max_retries");
    cs.max_tokens = c.at("max_tokens");
    cs.retry_after_cap = milliseconds(c.at("retry_after_cap_ms").get<int64_t>());
    cs.breaker_failures = c.at("breaker_failures");
    cs.breaker_cooldown = milliseconds(c.at("breaker_cooldown_ms").get<int64_t>());
    cs.max_concurrent_per_provider = c.at("max_concurrent_per_provider");
    connector_ = std::make_unique<Connector>(executor_, metrics_, cs, models, clients_);

    ServiceSettings ss;
    ss.history_turns = chat.at("history_turns").get<size_t>();
    ss.default_models = cfg.at("routing").at("default").get<std::vector<std::string>>();
    ss.force_models = cfg.at("routing").at("force").get<std::vector<std::string>>();
    service_ = std::make_unique<ConsultationService>(
        ConsultationService::Deps{executor_, *store_, *sealer_, *connector_, metrics_, [this] { return panel(); },
                                  [this] { return locales(); }},
        ss);

    const json &auth = cfg.at("auth");
    AuthSettings as;
    as.access_ttl_s = auth.at("access_ttl_s");
    as.refresh_ttl_s = auth.at("refresh_ttl_s");
    as.guest_ttl_s = auth.at("guest_ttl_s");
    accounts_ = std::make_unique<Accounts>(*store_, *sealer_, *signer_, as);
    const json &v = cfg.at("voice");
    VoiceSettings vs;
    vs.model_alias = v.at("model");
    vs.expires_after_s = v.at("expires_after_s");
    vs.transcription_model = v.at("transcription_model");
    voice_ = std::make_unique<VoiceService>(*this, vs);
    http_ = std::make_unique<HttpApi>(*this);
    schedule_sweep();
}

Engine::~Engine() {
    *alive_ = false;
    if (sweep_timer_) executor_.cancel(sweep_timer_);
    store_->flush();
}

void Engine::schedule_sweep() {
    auto alive = alive_;
    sweep_timer_ = executor_.after(seconds(30), [this, alive](bool cancelled) {
        if (cancelled || !*alive) return;
        service_->sweep(seconds(300));
        schedule_sweep();
    });
}

std::shared_ptr<const Panel> Engine::panel() const {
    std::lock_guard<std::mutex> lock(panel_mu_);
    return panel_;
}

std::shared_ptr<const LocaleCatalog> Engine::locales() const {
    std::lock_guard<std::mutex> lock(panel_mu_);
    return locales_;
}

std::string Engine::not_ready_reason() const {
    if (!ready_) return "starting";
    if (!service_->accepting()) return "draining";
    return {};
}

LoadResult Engine::reload_personas() {
    std::lock_guard<std::mutex> one_at_a_time(reload_mu_);
    auto started = steady_clock::now();
    LoadResult r = load_panel(paths_.personas_dir, default_load_options());
    double seconds = duration<double>(steady_clock::now() - started).count();
    metrics_.histogram("persona_reload_seconds", "Time to load and index the panel").observe(seconds);
    if (!r.ok()) {
        for (const auto &d : r.diagnostics)
            if (d.error) log::error("personas", d.format());
        metrics_.counter("persona_reloads_total", "Panel reloads", {{"result", "refused"}}).add(1);
        log::warn("personas", "reload refused: the live panel stays", {{"errors", r.errors()}});
        return r;
    }
    metrics_.counter("persona_reloads_total", "Panel reloads", {{"result", "ok"}}).add(1);
    {
        std::lock_guard<std::mutex> lock(panel_mu_);
        panel_ = r.panel;
    }
    log::info("personas", "panel reloaded", {{"personas", r.panel->personas.size()}, {"generation", r.panel->generation}});
    return r;
}

void Engine::drain(milliseconds deadline) { service_->drain(deadline); }

json Engine::consultation_json(const ConsultationRecord &c, bool with_messages) {
    json out = {{"id", c.id},
                {"profile_id", c.profile_id},
                {"created_at", c.created_ms},
                {"updated_at", c.updated_ms},
                {"last_seq", c.last_seq},
                {"specialist", c.specialist ? json(*c.specialist) : json(nullptr)}};
    if (!with_messages) return out;
    json messages = json::array();
    for (const auto &m : store_->messages(c.id)) {
        auto plain = sealer_->open(m.body_sealed, "message:" + c.id + ":" + std::to_string(m.seq));
        json body = plain ? json::parse(*plain, nullptr, false) : json();
        json meta = json::parse(m.meta, nullptr, false);
        json item = {{"seq", m.seq}, {"role", m.role}, {"created_at", m.created_ms}};
        if (m.client_id) item["id"] = *m.client_id;
        if (m.specialist) item["specialist"] = *m.specialist;
        if (body.is_object()) {
            item["text"] = body.value("text", "");
            if (m.role == "specialist") {
                item["citations"] = body.value("citations", json::array());
                item["follow_ups"] = body.value("follow_ups", json::array());
            } else if (body.contains("attachments") && body["attachments"].is_array()) {
                json atts = json::array();
                for (const auto &a : body["attachments"])
                    atts.push_back({{"type", a.value("type", "")}, {"media_type", a.value("media_type", "")}});
                item["attachments"] = atts;
            }
        } else {
            item["text"] = nullptr;
            item["unreadable"] = true;
        }
        if (meta.is_object() && m.role == "specialist") {
            item["stop_reason"] = meta.value("stop_reason", "");
            item["model"] = meta.value("model", "");
            item["usage"] = meta.value("usage", json::object());
            item["attempts"] = meta.value("attempts", 0);
        }
        messages.push_back(item);
    }
    out["messages"] = messages;
    return out;
}

}  // namespace consilium
