// `consilium serve`: run the host until SIGTERM or SIGINT; SIGHUP reloads the personas and keys.
#include "args.hpp"
#include "commands.hpp"
#include "runtime.hpp"
#include "util/log.hpp"

#include <csignal>
#include <cstdio>
#include <pthread.h>

namespace consilium::host {

ConfigSources config_sources(const Args &a) {
    ConfigSources src;
    if (auto f = a.get("config")) src.file = *f;
    if (auto l = a.get("listen")) src.listen = *l;
    if (auto d = a.get("data-dir")) src.data_dir = *d;
    for (const auto &kv : a.all("set")) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) throw UsageError("--set takes KEY=VALUE, got '" + kv + "'");
        src.sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return src;
}

int cmd_serve(const std::vector<std::string> &argv) {
    Args a = Args::parse(argv, {"config", "listen", "data-dir", "set"});
    if (!a.positional.empty()) throw UsageError("serve takes no positional arguments");
    Config cfg = load_config(config_sources(a));

    // Signals are taken by this thread alone (sigwait below): block them before any thread starts.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    HostRuntime runtime(std::move(cfg));
    auto addresses = runtime.start_transports();
    for (const auto &addr : addresses) std::printf("consilium: serving http://%s/\n", addr.c_str());
    std::fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            // SIGHUP: personas and keys (a rotated key becomes current; re-encryption starts).
            runtime.reload_personas();
            runtime.engine().reload_keys();
            continue;
        }
        log::info("host", "signal received; shutting down", {{"signal", sig}});
        break;
    }
    runtime.drain();
    return 0;
}

}  // namespace consilium::host
