// The Beast transport's plugin entry point (id "beast"): its options, their validation, and the
// SDK glue around the server. Beast-free: the server lives in server.cpp/websocket_session.cpp.
#include "options.hpp"
#include "server.hpp"

#include <consilium/sdk/transport.hpp>

#include <arpa/inet.h>

#include <filesystem>
#include <system_error>

namespace consilium::beast_transport {

namespace {

using sdk::json;

// "host:port" with an IPv4 or IPv6 literal ("[::1]:8080") or "localhost"; port 0 = any free port.
void parse_listen(const std::string &path, const std::string &listen, ServerOptions &out) {
    auto refuse = [&](const std::string &why) {
        throw sdk::Error(CS_E_INVALID, sdk::join_path(path, "listen") + ": " + why + ", got \"" +
                                           listen + "\" (expected host:port, e.g. 127.0.0.1:8080)");
    };
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) refuse("no port");
    std::string host = listen.substr(0, colon);
    std::string port = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        refuse("the port is not a number");
    unsigned long p = std::stoul(port);
    if (p > 65535) refuse("the port is over 65535");
    unsigned char buf[16];
    if (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1)
        refuse("the host is not an IP address");
    out.host = host;
    out.port = static_cast<uint16_t>(p);
}

std::string canonical_dir(const std::string &path, const std::string &dir) {
    std::error_code ec;
    auto abs = std::filesystem::canonical(std::filesystem::absolute(dir, ec), ec);
    if (ec || !std::filesystem::is_directory(abs, ec))
        throw sdk::Error(CS_E_INVALID, sdk::join_path(path, "static_dir") + ": \"" + dir +
                                           "\" is not a directory");
    return abs.string();
}

ServerOptions server_options(const std::string &path, const json &o) {
    ServerOptions s;
    parse_listen(path, o.at("listen").get<std::string>(), s);
    s.threads = static_cast<unsigned>(sdk::option_int(o, path, "threads", 1, 256));
    s.body_limit = static_cast<uint64_t>(sdk::option_int(o, path, "body_limit", 0, 1LL << 32));
    s.header_limit = static_cast<uint32_t>(sdk::option_int(o, path, "header_limit", 1024, 1 << 20));
    s.read_timeout = std::chrono::milliseconds(sdk::option_int(o, path, "read_timeout_ms", 1, 3600000));
    s.ws_max_message = static_cast<uint64_t>(sdk::option_int(o, path, "ws_max_message", 1, 1LL << 30));
    s.ws_handshake_timeout =
        std::chrono::milliseconds(sdk::option_int(o, path, "ws_handshake_timeout_ms", 1, 600000));
    s.ws_idle_timeout =
        std::chrono::milliseconds(sdk::option_int(o, path, "ws_idle_timeout_ms", 0, 86400000));
    s.write_queue_limit =
        static_cast<uint64_t>(sdk::option_int(o, path, "write_queue_limit", 1, 1LL << 32));
    std::string dir = o.at("static_dir").get<std::string>();
    if (!dir.empty()) s.static_dir = canonical_dir(path, dir);
    s.max_connections =
        static_cast<std::size_t>(sdk::option_int(o, path, "max_connections", 1, 1000000));
    return s;
}

}  // namespace

// LIFETIME: made by the SDK's create() thunk, destroyed by destroy(), which stops the server
// first (the server's destructor joins its threads).
class BeastTransport final : public sdk::Transport {
public:
    static json defaults() {
        return json{
            {"listen", "127.0.0.1:8080"},
            {"threads", 1},
            {"body_limit", 1048576},
            {"header_limit", 16384},
            {"read_timeout_ms", 30000},
            {"ws_max_message", 1048576},
            {"ws_handshake_timeout_ms", 10000},
            {"ws_idle_timeout_ms", 300000},
            {"write_queue_limit", 8388608},
            {"static_dir", ""},
            {"max_connections", 10000},
        };
    }

    BeastTransport(const sdk::Host &host, const std::string &path, const json &options)
        : server_(host.api(), server_options(path, options)) {}

    std::string start() override { return server_.start(); }
    void stop_accepting() override { server_.stop_accepting(); }
    void stop() override { server_.stop(); }

private:
    Server server_;
};

}  // namespace consilium::beast_transport

CONSILIUM_TRANSPORT_PLUGIN(consilium::beast_transport::BeastTransport, "beast", "1.0.0",
                           "HTTP + WebSocket server on Boost.Beast: REST API, chat channel, static web app")
