// `consilium account create --role ROLE`: makes an account in the configured store and prints
// its access token, so operators and persona authors can call the admin endpoints.
#include "args.hpp"
#include "commands.hpp"
#include "runtime.hpp"

#include <cstdio>

namespace consilium::host {

ConfigSources config_sources(const Args &a);

int cmd_account(const std::vector<std::string> &argv) {
    if (argv.empty() || argv[0] != "create") throw UsageError("account needs a subcommand: create --role ROLE");
    Args a = Args::parse({argv.begin() + 1, argv.end()}, {"config", "set", "data-dir", "role"});
    auto role = a.get("role");
    if (!role) throw UsageError("account create needs --role patient|author|operator");
    ConfigSources src = config_sources(a);
    src.sets.emplace_back("log.level", "warn");
    // Storage and keys only: an account can be made while the personas are being edited.
    HostRuntime runtime(load_config(src), HostRuntime::Mode::storage_only);
    const auto &cfg = runtime.config();
    Store store(runtime.storage()->vtable<cs_storage_vtable>(), runtime.storage()->instance());
    Sealer sealer(load_data_keys(cfg.tree, cfg.data_dir));
    auto signer = make_token_signer(cfg.tree, cfg.data_dir);
    AuthSettings settings;
    settings.access_ttl_s = cfg.tree["auth"]["access_ttl_s"];
    Accounts accounts(store, sealer, *signer, settings);
    nlohmann::json r;
    try {
        r = accounts.create_account(*role);
    } catch (const std::invalid_argument &e) {
        throw UsageError(std::string("--role: ") + e.what());
    }
    std::printf("%s\n", r.dump(2).c_str());
    return 0;
}

}  // namespace consilium::host
