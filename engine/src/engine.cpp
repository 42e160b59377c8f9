#include "engine.hpp"

#include "crypto/reencrypt.hpp"
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
    chat_settings_.frames.max_frame_bytes = chat.at("max_frame_bytes").get<size_t>();
    chat_settings_.frames.max_text_chars = chat.at("max_text_chars").get<size_t>();
    chat_settings_.frames.max_attachments = chat.at("max_attachments").get<size_t>();
    chat_settings_.auth_timeout = milliseconds(chat.at("auth_timeout_ms").get<int64_t>());
    chat_settings_.idle_timeout = milliseconds(chat.at("idle_timeout_ms").get<int64_t>());
    chat_settings_.allowed_origins = chat.at("allowed_origins").get<std::vector<std::string>>();
    chat_settings_.merge_above_bytes = chat.at("merge_above_bytes").get<int64_t>();
    const json &lim = cfg.at("limits");
    RateLimits &rl = chat_settings_.limits;
    rl.messages_per_minute = lim.at("messages_per_minute");
    rl.guest_messages_per_minute = lim.at("guest_messages_per_minute");
    rl.bytes_per_minute = lim.at("bytes_per_minute");
    rl.account_messages_per_minute = lim.at("account_messages_per_minute");
    rl.guest_account_messages_per_minute = lim.at("guest_account_messages_per_minute");
    rl.burst_fraction = lim.at("burst_fraction");
    rl.close_after_violations = lim.at("close_after_violations");
    rl.concurrent_turns = lim.at("concurrent_turns");
    rl.guest_concurrent_turns = lim.at("guest_concurrent_turns");
    account_limiter_ = std::make_unique<AccountLimiter>(rl);

    keys_config_ = {{"auth", cfg.at("auth")}, {"encryption", cfg.at("encryption")}};
    try {
        sealer_ = std::make_unique<Sealer>(load_data_keys(cfg, paths_.data_dir));
        signer_ = make_token_signer(cfg, paths_.data_dir);
    } catch (const KeyError &e) {
        throw EngineError(std::string("keys: ") + e.what());
    }

    store_ = std::make_unique<Store>(storage_plugin_->vtable<cs_storage_vtable>(), storage_plugin_->instance());
    audit_ = std::make_unique<AuditLog>(*store_, metrics_);
    privacy_ = std::make_unique<Privacy>(*this);

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
    ss.concurrent_turns = rl.concurrent_turns;
    ss.guest_concurrent_turns = rl.guest_concurrent_turns;
    ss.default_models = cfg.at("routing").at("default").get<std::vector<std::string>>();
    ss.force_models = cfg.at("routing").at("force").get<std::vector<std::string>>();
    service_ = std::make_unique<ConsultationService>(
        ConsultationService::Deps{executor_, *store_, *sealer_, *connector_, metrics_, audit_.get(), [this] { return panel(); },
                                  [this] { return locales(); }},
        ss);

    const json &auth = cfg.at("auth");
    AuthSettings as;
    as.access_ttl_s = auth.at("access_ttl_s");
    as.refresh_ttl_s = auth.at("refresh_ttl_s");
    as.guest_ttl_s = auth.at("guest_ttl_s");
    as.session_idle_s = auth.at("session_idle_s");
    as.password_min_chars = auth.at("password_min_chars");
    as.passwords.ops_limit = auth.at("argon2_ops_limit");
    as.passwords.mem_limit_kib = auth.at("argon2_memory_kib");
    as.account_throttle.free_failures = auth.at("login_free_failures");
    as.address_throttle.free_failures = auth.at("login_free_failures_per_address");
    as.account_throttle.max_lockout = as.address_throttle.max_lockout = milliseconds(auth.at("login_max_lockout_ms").get<int64_t>());
    accounts_ = std::make_unique<Accounts>(*store_, *sealer_, *signer_, *audit_, as);
    accounts_->on_session_ended([this](const std::string &account_id, const std::string &session_id) {
        Principal who{};
        who.account_id = account_id;
        who.session = session_id;
        close_chats_of(who, false);
    });
    housekeeping_.guest_sweep_every = seconds(auth.at("guest_sweep_interval_s").get<int64_t>());
    housekeeping_.audit_retention_days = cfg.at("audit").at("retention_days");
    housekeeping_.emergency_access = minutes(cfg.at("audit").at("emergency_access_minutes").get<int64_t>());
    const json &v = cfg.at("voice");
    VoiceSettings vs;
    vs.model_alias = v.at("model");
    vs.expires_after_s = v.at("expires_after_s");
    vs.transcription_model = v.at("transcription_model");
    voice_ = std::make_unique<VoiceService>(*this, vs);
    http_ = std::make_unique<HttpApi>(*this);
    schedule_sweep();
    start_reencryption();
}

Engine::~Engine() {
    *alive_ = false;
    if (sweep_timer_) executor_.cancel(sweep_timer_);
    reencrypt_stop_ = true;
    {
        std::lock_guard<std::mutex> lock(reencrypt_mu_);
        if (reencrypt_thread_.joinable()) reencrypt_thread_.join();
    }
    store_->flush();
}

void Engine::reload_keys() {
    try {
        KeyRing data = load_data_keys(keys_config_, paths_.data_dir);
        std::string before = sealer_->current_key_id();
        KeyRing tokens = KeyRing::load(key_file(keys_config_, paths_.data_dir, "auth", "token.keys"),
                                       "CONSILIUM_TOKEN_KEYS", false);
        sealer_->replace(std::move(data));
        signer_->replace_keys(std::move(tokens));
        log::info("encryption", "keys reloaded", {{"data_key", sealer_->current_key_id()}, {"was", before}});
    } catch (const KeyError &e) {
        log::error("encryption", "keys could not be reloaded; the current ones stay", {{"why", e.what()}});
        return;
    }
    start_reencryption();
}

void Engine::start_reencryption() {
    std::lock_guard<std::mutex> lock(reencrypt_mu_);
    if (reencrypt_running_) return;
    try {
        if (!Reencryptor(*store_, *sealer_, metrics_).needed()) return;
    } catch (const StorageError &e) {
        log::error("encryption", "could not check whether re-encryption is needed", {{"why", e.what()}});
        return;
    }
    if (reencrypt_thread_.joinable()) reencrypt_thread_.join();
    reencrypt_running_ = true;
    reencrypt_thread_ = std::thread([this] {
        Reencryptor r(*store_, *sealer_, metrics_);
        for (int walk = 0; walk < 3 && !reencrypt_stop_; ++walk) {
            try {
                if (r.run(reencrypt_stop_).completed && !r.needed()) break;
            } catch (const StorageError &e) {
                log::error("encryption", "re-encryption interrupted; it resumes at the next start or SIGHUP",
                           {{"why", e.what()}});
                break;
            }
        }
        reencrypt_running_ = false;
    });
}

void Engine::schedule_sweep() {
    auto alive = alive_;
    // The first run comes soon after start (expired guests are erased even on short-lived hosts).
    // Later runs every 30 s, or more often when guests are to be swept more often.
    auto every = std::min<std::chrono::milliseconds>(seconds(30), housekeeping_.guest_sweep_every);
    sweep_timer_ = executor_.after(sweep_timer_ ? every : std::min<std::chrono::milliseconds>(seconds(2), every), [this, alive](bool cancelled) {
        if (cancelled || !*alive) return;
        housekeeping();
        schedule_sweep();
    });
}

void Engine::housekeeping() {
    auto now = steady_clock::now();
    try {
        service_->sweep(seconds(300));
        if (now - housekeeping_.last_guests >= housekeeping_.guest_sweep_every) {
            housekeeping_.last_guests = now;
            int64_t wall = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
            privacy_->erase_expired_guests(wall);
        }
        if (now - housekeeping_.last_purge >= hours(24)) {
            housekeeping_.last_purge = now;
            int64_t wall = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
            audit_->purge_before(wall - housekeeping_.audit_retention_days * 86400000LL);
        }
        if (now - housekeeping_.last_head >= hours(1)) {
            housekeeping_.last_head = now;
            audit_->log_head();
        }
    } catch (const StorageError &e) {
        log::error("engine", "housekeeping failed; it runs again in 30 s", {{"why", e.what()}});
    }
    std::lock_guard<std::mutex> lock(chats_mu_);
    for (auto it = chats_.begin(); it != chats_.end();) it = it->second.expired() ? chats_.erase(it) : std::next(it);
}

void Engine::register_chat(const Principal &who, const std::shared_ptr<ChatSession> &chat) {
    std::lock_guard<std::mutex> lock(chats_mu_);
    chats_.emplace(who.account_id, chat);
}

void Engine::unregister_chat(const std::string &account_id, const ChatSession *chat) {
    std::lock_guard<std::mutex> lock(chats_mu_);
    auto [b, e] = chats_.equal_range(account_id);
    for (auto it = b; it != e;) it = it->second.expired() || it->second.lock().get() == chat ? chats_.erase(it) : std::next(it);
}

void Engine::close_chats_of(const Principal &who, bool every_session) {
    std::vector<std::shared_ptr<ChatSession>> closing;
    {
        std::lock_guard<std::mutex> lock(chats_mu_);
        auto [b, e] = chats_.equal_range(who.account_id);
        for (auto it = b; it != e; ++it)
            if (auto c = it->second.lock(); c && (every_session || c->session_id() == who.session)) closing.push_back(c);
    }
    for (auto &c : closing) c->end_session();
}

int64_t Engine::grant_emergency_access(const std::string &operator_id, const std::string &consultation_id) {
    int64_t until = duration_cast<milliseconds>((system_clock::now() + housekeeping_.emergency_access).time_since_epoch()).count();
    std::lock_guard<std::mutex> lock(grants_mu_);
    grants_[{operator_id, consultation_id}] = until;
    return until;
}

bool Engine::has_emergency_access(const std::string &operator_id, const std::string &consultation_id, int64_t now_ms) {
    std::lock_guard<std::mutex> lock(grants_mu_);
    auto it = grants_.find({operator_id, consultation_id});
    return it != grants_.end() && it->second > now_ms;
}

LoadResult Engine::lint_personas() const { return load_panel(paths_.personas_dir, default_load_options()); }

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

void Engine::drain(milliseconds deadline) {
    reencrypt_stop_ = true;
    service_->drain(deadline);
    audit_->flush();
}

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
