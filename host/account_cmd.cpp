// `consilium account create --role ROLE [--email ADDRESS]`: makes an account in the configured
// store and prints its tokens, so operators and persona authors can call the admin endpoints.
// With --email, the password is read from the first line of standard input (never an argument:
// arguments show in `ps`), and the account can then log in.
#include "args.hpp"
#include "commands.hpp"
#include "runtime.hpp"

#include <cstdio>
#include <iostream>

namespace consilium::host {

ConfigSources config_sources(const Args &a);

int cmd_account(const std::vector<std::string> &argv) {
    if (argv.empty() || argv[0] != "create") throw UsageError("account needs a subcommand: create --role ROLE");
    Args a = Args::parse({argv.begin() + 1, argv.end()}, {"config", "set", "data-dir", "role", "email"});
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
    const auto &auth = cfg.tree["auth"];
    settings.access_ttl_s = auth["access_ttl_s"];
    settings.refresh_ttl_s = auth["refresh_ttl_s"];
    settings.password_min_chars = auth["password_min_chars"];
    settings.passwords.ops_limit = auth["argon2_ops_limit"];
    settings.passwords.mem_limit_kib = auth["argon2_memory_kib"];
    AuditLog audit(store, runtime.metrics());
    Accounts accounts(store, sealer, *signer, audit, settings);
    std::string email = a.get("email").value_or(""), password;
    if (!email.empty()) {
        std::getline(std::cin, password);
        if (!password.empty() && password.back() == '\r') password.pop_back();
    }
    nlohmann::json r;
    try {
        r = accounts.create_account(*role, email, password);
    } catch (const std::invalid_argument &e) {
        throw UsageError(std::string("--role: ") + e.what());
    }
    audit.flush();
    std::printf("%s\n", r.dump(2).c_str());
    return 0;
}

}  // namespace consilium::host
