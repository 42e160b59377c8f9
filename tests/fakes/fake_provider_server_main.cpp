// tests/fakes/fake_provider_server_main.cpp: the fakes as a standalone process, for integration
// tests that run the real host:
//
//   fake_provider_server --kind anthropic|openai|openai_realtime [--port 0] [--script FILE]
//                        [--protocols DIR] [--requests-log FILE] [--frames-log FILE]
//
// Prints the port it listens on (one line, the number only) once it accepts connections, then
// serves until SIGTERM or SIGINT. --requests-log appends one JSON line per request (number,
// method, target, headers, body, action, status); --frames-log one JSON line per Realtime WebSocket
// frame (number, direction "client" / "server", frame). The recordings are read from --protocols, else
// $CONSILIUM_TEST_SHARED_DIR/protocols, else the shared dir this tree was configured with.
#include "fake_provider_server.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>

namespace {

int usage(const char *why) {
    std::fprintf(stderr,
                 "fake_provider_server: %s\nusage: fake_provider_server --kind anthropic|openai|openai_realtime "
                 "[--port N] [--script FILE] [--protocols DIR] [--requests-log FILE] [--frames-log FILE]\n",
                 why);
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    using consilium::test::fakes::FakeProviderServer;
    std::string kind, script_file, protocols, log_file, frames_file;
    int port = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--kind") kind = next();
        else if (a == "--port") port = std::atoi(next().c_str());
        else if (a == "--script") script_file = next();
        else if (a == "--protocols") protocols = next();
        else if (a == "--requests-log") log_file = next();
        else if (a == "--frames-log") frames_file = next();
        else if (a == "--help" || a == "-h") return usage("help");
        else return usage(("unknown argument " + a).c_str());
    }
    if (kind.empty()) return usage("--kind is required");
    if (port < 0 || port > 65535) return usage("--port must be 0..65535");
    if (protocols.empty()) {
        const char *env = std::getenv("CONSILIUM_TEST_SHARED_DIR");
        protocols = std::string(env && *env ? env : CONSILIUM_TEST_SHARED_DIR) + "/protocols";
    }

    // Signals are taken by sigwait below; block them before any thread starts.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    try {
        FakeProviderServer server(consilium::test::fakes::parse_fake_kind(kind), protocols,
                                  static_cast<uint16_t>(port));
        if (!script_file.empty()) {
            std::ifstream in(script_file);
            if (!in) return usage(("cannot read " + script_file).c_str());
            std::ostringstream s;
            s << in.rdbuf();
            server.set_script(s.str());
        }
        std::mutex log_mu;
        std::ofstream log;
        if (!log_file.empty()) {
            log.open(log_file, std::ios::app);
            if (!log) return usage(("cannot write " + log_file).c_str());
            server.set_observer([&](const consilium::test::fakes::FakeRequest &r) {
                nlohmann::json headers = nlohmann::json::object();
                for (const auto &[k, v] : r.headers) headers[k] = v;
                nlohmann::json line = {{"number", r.number}, {"method", r.method}, {"target", r.target},
                                       {"headers", headers}, {"body", r.body},     {"action", r.action},
                                       {"status", r.status}};
                std::lock_guard<std::mutex> lock(log_mu);
                log << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
            });
        }
        std::ofstream frames;
        if (!frames_file.empty()) {
            frames.open(frames_file, std::ios::app);
            if (!frames) return usage(("cannot write " + frames_file).c_str());
            server.set_ws_observer([&](int number, std::string_view direction, std::string_view frame) {
                nlohmann::json line = {{"number", number}, {"direction", direction}, {"frame", frame}};
                std::lock_guard<std::mutex> lock(log_mu);
                frames << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
            });
        }
        std::printf("%u\n", static_cast<unsigned>(server.port()));
        std::fflush(stdout);
        int sig = 0;
        sigwait(&set, &sig);
        server.set_observer(nullptr);
        server.set_ws_observer(nullptr);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fake_provider_server: %s\n", e.what());
        return 1;
    }
    return 0;
}
