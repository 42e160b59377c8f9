// consilium: the host executable. See `consilium help` and docs/.
#include "args.hpp"
#include "commands.hpp"
#include "config.hpp"

#include <consilium/abi.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

const char kUsage[] =
    "usage: consilium <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--set KEY=VALUE]...\n"
    "                      run the host (defaults: mock provider, SQLite in ./var, 127.0.0.1:8080)\n"
    "  route [--personas DIR] [--explain] --jsonl FILE\n"
    "                      route cases without any provider, one JSON line per case\n"
    "  chat [--specialist ID] [--age YEARS] [--sex female|male] [--pregnant] [--personas DIR]\n"
    "                      a consultation in the terminal, with the same engine as the server\n"
    "  persona lint [DIR]  check persona files and dry-run their scripts; FILE:LINE:COL: message\n"
    "  persona test [DIR] [--persona ID]\n"
    "                      run the personas' own routing test cases\n"
    "  account create --role patient|author|operator [--email ADDRESS] [--data-dir DIR]\n"
    "                      make an account and print its tokens (with --email: password on stdin)\n"
    "  audit verify [--config FILE] [--data-dir DIR]\n"
    "                      check the audit log's hash chain; names the first bad entry\n"
    "  keys rotate data|token | keys status | keys retire data|token ID\n"
    "                      rotate encryption or signing keys (SIGHUP a running host to use them)\n"
    "  plugin list         the plugins this host finds, with their ABI and build\n"
    "  plugin check LIBRARY [--options JSON] [--model ID]\n"
    "                      the conformance kit: runs the provider contract against a plugin\n"
    "  version             print the version\n"
    "\n"
    "docs: docs/configuration.md, docs/protocol.md, docs/security.md, docs/plugins.md\n";

}  // namespace

int main(int argc, char **argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        std::fputs(kUsage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    std::string cmd = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    try {
        if (cmd == "serve") return consilium::host::cmd_serve(rest);
        if (cmd == "plugin") return consilium::host::cmd_plugin(rest);
        if (cmd == "persona") return consilium::host::cmd_persona(rest);
        if (cmd == "route") return consilium::host::cmd_route(rest);
        if (cmd == "chat") return consilium::host::cmd_chat(rest);
        if (cmd == "account") return consilium::host::cmd_account(rest);
        if (cmd == "audit") return consilium::host::cmd_audit(rest);
        if (cmd == "keys") return consilium::host::cmd_keys(rest);
        if (cmd == "version" || cmd == "--version") {
            std::printf("consilium %s (plugin ABI %d.%d)\n", CONSILIUM_VERSION, CS_ABI_MAJOR, CS_ABI_MINOR);
            return 0;
        }
        std::fprintf(stderr, "consilium: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
        return 2;
    } catch (const consilium::host::UsageError &e) {
        std::fprintf(stderr, "consilium %s: %s\n\n%s", cmd.c_str(), e.what(), kUsage);
        return 2;
    } catch (const consilium::host::ConfigError &e) {
        std::fprintf(stderr, "consilium: configuration: %s\n", e.what());
        return 2;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "consilium: %s\n", e.what());
        return 1;
    }
}
