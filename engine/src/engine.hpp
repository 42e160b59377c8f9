// The engine: everything between the transports and the plugins, wired from one configuration.
// It owns the key rings, storage access, the panel (hot-swappable), the connector, the
// consultation service, the REST API and the chat channel. The host (host/) builds it from the
// plugins it loaded and hands its front API to the transports.
#pragma once

#include <consilium/abi.h>

#include "api/chat_session.hpp"
#include "api/http_api.hpp"
#include "audit/audit_log.hpp"
#include "auth/accounts.hpp"
#include "connector/connector.hpp"
#include "consult/service.hpp"
#include "crypto/sealer.hpp"
#include "exec/executor.hpp"
#include "locale/catalog.hpp"
#include "persona/loader.hpp"
#include "plugin/instance.hpp"
#include "privacy/privacy.hpp"
#include "storage/store.hpp"
#include "util/metrics.hpp"
#include "voice/voice.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace consilium {

struct EnginePaths {
    std::filesystem::path data_dir;
    std::filesystem::path personas_dir;
    std::filesystem::path locales_dir;
};

class EngineError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Engine {
public:
    // `config` is the host's validated configuration tree (host/defaults.yaml's keys). Throws
    // EngineError when keys, personas or locales cannot be loaded.
    Engine(const nlohmann::json &config, EnginePaths paths, Executor &executor, metrics::Registry &metrics,
           std::shared_ptr<PluginInstance> storage, std::map<std::string, std::shared_ptr<PluginInstance>> providers);
    ~Engine();
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;

    Executor &executor() { return executor_; }
    metrics::Registry &metrics() { return metrics_; }
    Store &store() { return *store_; }
    Sealer &sealer() { return *sealer_; }
    Accounts &accounts() { return *accounts_; }
    ConsultationService &service() { return *service_; }
    HttpApi &http_api() { return *http_; }
    Connector &connector() { return *connector_; }
    VoiceService &voice() { return *voice_; }
    AuditLog &audit() { return *audit_; }
    Privacy &privacy() { return *privacy_; }
    std::shared_ptr<ProviderClient> provider_client(const std::string &name) const {
        auto it = clients_.find(name);
        return it == clients_.end() ? nullptr : it->second;
    }
    const ChatSettings &chat_settings() const { return chat_settings_; }
    AccountLimiter &account_limiter() { return *account_limiter_; }
    std::shared_ptr<const Panel> panel() const;
    std::shared_ptr<const LocaleCatalog> locales() const;

    // The front API and the context a transport created with it passes back.
    static const cs_front_api *front() { return front_api(); }
    cs_host_ctx *front_ctx() { return reinterpret_cast<cs_host_ctx *>(this); }

    void set_ready(bool ready) { ready_ = ready; }
    std::string not_ready_reason() const;

    // Reloads personas/: a panel that fails to load is refused and the live one stays.
    LoadResult reload_personas();
    // Loads personas/ without making it live: the lint of the running host's files.
    LoadResult lint_personas() const;

    // Chat connections by account, so that logout and erasure can close them (4004).
    void register_chat(const Principal &who, const std::shared_ptr<ChatSession> &chat);
    void close_chats_of(const Principal &who, bool every_session);
    // A chat connection ended: forget it now (its memory goes with the last reference).
    void unregister_chat(const std::string &account_id, const ChatSession *chat);

    // Emergency access of an operator to one consultation (docs/security.md): returns the
    // grant's expiry (Unix ms).
    int64_t grant_emergency_access(const std::string &operator_id, const std::string &consultation_id);
    bool has_emergency_access(const std::string &operator_id, const std::string &consultation_id, int64_t now_ms);

    // Reloads the data and token key rings from their files (or the environment): a rotated key
    // becomes current; re-encryption of older values starts in the background. SIGHUP.
    void reload_keys();
    // Starts the re-encryption walk if values may be sealed under an older key (at start, after
    // a rotation). One walk at a time; stopped by drain().
    void start_reencryption();

    // The periodic jobs (every 30 s): idle consultations, expired guests, audit retention.
    void housekeeping();
    // SIGTERM: stop new turns, let streams finish up to deadline, end the rest, flush.
    void drain(std::chrono::milliseconds deadline);

    nlohmann::json consultation_json(const ConsultationRecord &c, bool with_messages);

private:
    Executor &executor_;
    metrics::Registry &metrics_;
    EnginePaths paths_;
    std::shared_ptr<PluginInstance> storage_plugin_;
    std::map<std::string, std::shared_ptr<PluginInstance>> provider_plugins_;
    ChatSettings chat_settings_;
    std::unique_ptr<AccountLimiter> account_limiter_;
    std::unique_ptr<Sealer> sealer_;
    std::unique_ptr<TokenSigner> signer_;
    std::unique_ptr<Store> store_;
    std::map<std::string, std::shared_ptr<ProviderClient>> clients_;
    std::unique_ptr<Connector> connector_;
    std::unique_ptr<VoiceService> voice_;
    std::unique_ptr<ConsultationService> service_;
    std::unique_ptr<AuditLog> audit_;
    std::unique_ptr<Privacy> privacy_;
    std::unique_ptr<Accounts> accounts_;
    std::unique_ptr<HttpApi> http_;
    mutable std::mutex panel_mu_;
    std::mutex reload_mu_;
    std::shared_ptr<const Panel> panel_;
    std::shared_ptr<const LocaleCatalog> locales_;
    std::atomic<bool> ready_{false};
    TimerId sweep_timer_ = 0;
    struct Housekeeping {
        std::chrono::seconds guest_sweep_every{300};
        int64_t audit_retention_days = 2190;
        std::chrono::minutes emergency_access{60};
        std::chrono::steady_clock::time_point last_guests{}, last_purge{}, last_head{};
    } housekeeping_;
    std::mutex chats_mu_;
    std::multimap<std::string, std::weak_ptr<ChatSession>> chats_;  // account id -> connection
    nlohmann::json keys_config_;  // auth and encryption sections, for reload_keys()
    std::mutex reencrypt_mu_;
    std::thread reencrypt_thread_;
    std::atomic<bool> reencrypt_stop_{false};
    std::atomic<bool> reencrypt_running_{false};
    std::mutex grants_mu_;
    std::map<std::pair<std::string, std::string>, int64_t> grants_;  // (operator, consultation) -> until
    std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
    void schedule_sweep();
};

// Where the key files are: the configured path, or <data_dir>/keys/<default_name>.
std::filesystem::path key_file(const nlohmann::json &config, const std::filesystem::path &data_dir,
                               const char *section, const char *default_name);
KeyRing load_data_keys(const nlohmann::json &config, const std::filesystem::path &data_dir);
std::unique_ptr<TokenSigner> make_token_signer(const nlohmann::json &config, const std::filesystem::path &data_dir);

// The Lua syntax check the persona loader uses (from the Lua runtime).
LoadOptions default_load_options();

}  // namespace consilium
