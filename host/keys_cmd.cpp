// `consilium keys rotate data|token`, `keys status`, `keys retire data|token ID`: key rotation
// without downtime (docs/security.md, "Key rotation"). rotate adds a fresh key to the key file
// and makes it current; a running host picks it up on SIGHUP (and re-encrypts data in the
// background); retire removes an old key once nothing needs it.
#include "args.hpp"
#include "commands.hpp"
#include "runtime.hpp"

#include "crypto/reencrypt.hpp"

#include <cstdio>
#include <cstdlib>

namespace consilium::host {

ConfigSources config_sources(const Args &a);

namespace {

struct Ring {
    std::filesystem::path file;
    const char *env;
};

Ring ring_for(const Config &cfg, const std::string &which) {
    if (which == "data") return {key_file(cfg.tree, cfg.data_dir, "encryption", "data.keys"), "CONSILIUM_DATA_KEYS"};
    if (which == "token") return {key_file(cfg.tree, cfg.data_dir, "auth", "token.keys"), "CONSILIUM_TOKEN_KEYS"};
    throw UsageError("name the key ring: data or token");
}

void refuse_env(const Ring &r) {
    const char *v = std::getenv(r.env);
    if (v && *v)
        throw std::runtime_error(std::string(r.env) + " is set: its keys come from the environment, so rotate them "
                                 "where that variable is managed (add a key, make it current, restart or SIGHUP)");
}

}  // namespace

int cmd_keys(const std::vector<std::string> &argv) {
    if (argv.empty()) throw UsageError("keys needs a subcommand: rotate, status or retire");
    std::string sub = argv[0];
    std::vector<std::string> rest(argv.begin() + 1, argv.end());
    std::string which, retire_id;
    if (sub == "rotate" || sub == "retire") {
        if (rest.empty()) throw UsageError("keys " + sub + " needs data or token");
        which = rest.front();
        rest.erase(rest.begin());
        if (sub == "retire") {
            if (rest.empty()) throw UsageError("keys retire needs the key id");
            retire_id = rest.front();
            rest.erase(rest.begin());
        }
    } else if (sub != "status") {
        throw UsageError("keys needs a subcommand: rotate, status or retire");
    }
    Args a = Args::parse(rest, {"config", "set", "data-dir"});
    ConfigSources src = config_sources(a);
    src.sets.emplace_back("log.level", "warn");
    Config cfg = load_config(src);

    if (sub == "rotate") {
        Ring r = ring_for(cfg, which);
        refuse_env(r);
        KeyRing ring = KeyRing::load(r.file, r.env, true);
        std::string previous = ring.current_id();
        std::string id = ring.rotate();
        ring.save(r.file);
        std::printf("%s keys: %s is now current (was %s). Send SIGHUP to running hosts to use it.\n", which.c_str(),
                    id.c_str(), previous.c_str());
        return 0;
    }

    HostRuntime runtime(std::move(cfg), HostRuntime::Mode::storage_only);
    Store store(runtime.storage()->vtable<cs_storage_vtable>(), runtime.storage()->instance());
    const Config &c = runtime.config();
    std::string reencrypted = store.meta(Reencryptor::kDoneMeta).value_or("");
    if (sub == "status") {
        for (const char *w : {"data", "token"}) {
            Ring r = ring_for(c, w);
            KeyRing ring = KeyRing::load(r.file, r.env, false);
            std::string ids;
            for (const auto &[id, key] : ring.keys()) ids += (ids.empty() ? "" : ", ") + id;
            std::printf("%s keys: current %s; all: %s\n", w, ring.current_id().c_str(), ids.c_str());
        }
        std::printf("data re-encrypted under: %s\n", reencrypted.empty() ? "(not yet)" : reencrypted.c_str());
        return 0;
    }

    // retire
    Ring r = ring_for(c, which);
    refuse_env(r);
    KeyRing ring = KeyRing::load(r.file, r.env, false);
    if (!ring.key(retire_id)) throw std::runtime_error(which + " keys: no key " + retire_id);
    if (retire_id == ring.current_id()) throw std::runtime_error(which + " keys: " + retire_id + " is current; rotate first");
    if (which == "data" && reencrypted != ring.current_id())
        throw std::runtime_error("data keys: re-encryption under " + ring.current_id() +
                                 " has not completed (a running host does it after SIGHUP); values sealed under " +
                                 retire_id + " would become unreadable");
    ring.remove(retire_id);
    ring.save(r.file);
    std::printf("%s keys: %s retired%s\n", which.c_str(), retire_id.c_str(),
                which == "token" ? " (access tokens it signed are refused from now on)" : "");
    return 0;
}

}  // namespace consilium::host
