// `consilium audit verify`: checks the audit log's hash chain in the configured store and names
// the first entry that was changed, removed or reordered (exit 1), or says how many entries are
// intact (exit 0). Needs only the storage plugin: it runs while the host serves.
#include "args.hpp"
#include "commands.hpp"
#include "runtime.hpp"

#include <cstdio>

namespace consilium::host {

ConfigSources config_sources(const Args &a);

int cmd_audit(const std::vector<std::string> &argv) {
    if (argv.empty() || argv[0] != "verify") throw UsageError("audit needs a subcommand: verify");
    Args a = Args::parse({argv.begin() + 1, argv.end()}, {"config", "set", "data-dir"});
    ConfigSources src = config_sources(a);
    src.sets.emplace_back("log.level", "warn");
    HostRuntime runtime(load_config(src), HostRuntime::Mode::storage_only);
    Store store(runtime.storage()->vtable<cs_storage_vtable>(), runtime.storage()->instance());
    AuditVerifyResult r = AuditLog::verify(store);
    if (!r.ok) {
        std::printf("audit log: NOT intact: %s (%lld entries before it are intact)\n", r.problem.c_str(),
                    static_cast<long long>(r.checked));
        return 1;
    }
    std::printf("audit log: intact, %lld entries verified\n", static_cast<long long>(r.checked));
    return 0;
}

}  // namespace consilium::host
