// The Beast transport's plugin entry point (id "beast"): its options, their validation, and the
// SDK glue around the server. Beast-free: the server lives in server.cpp, websocket_session.cpp
// and fallback.cpp.
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

// A TLS file option: "" or a regular file, made absolute (relative to the working directory).
std::string tls_file(const std::string &path, const char *key, const std::string &file) {
    if (file.empty()) return file;
    std::error_code ec;
    auto abs = std::filesystem::absolute(file, ec);
    if (ec || !std::filesystem::is_regular_file(abs, ec))
        throw sdk::Error(CS_E_INVALID, sdk::join_path(path, key) + ": \"" + file +
                                           "\" is not a file (expected a PEM file)");
    return abs.string();
}

ServerOptions server_options(const std::string &path, const json &o) {
    ServerOptions s;
    s.config_path = path;
    parse_listen(path, o.at("listen").get<std::string>(), s);
    s.threads = static_cast<unsigned>(sdk::option_int(o, path, "threads", 1, 256));
    s.body_limit = static_cast<uint64_t>(sdk::option_int(o, path, "body_limit", 0, 1LL << 32));
    s.header_limit = static_cast<uint32_t>(sdk::option_int(o, path, "header_limit", 1024, 1 << 20));
    s.read_timeout = std::chrono::milliseconds(sdk::option_int(o, path, "read_timeout_ms", 1, 3600000));
    s.ws_max_message = static_cast<uint64_t>(sdk::option_int(o, path, "ws_max_message", 1, 1LL << 30));
    s.ws_handshake_timeout =
        std::chrono::milliseconds(sdk::option_int(o, path, "ws_handshake_timeout_ms", 1, 600000));
    s.ws_ping_interval =
        std::chrono::milliseconds(sdk::option_int(o, path, "ws_ping_interval_ms", 0, 86400000));
    s.ws_pong_timeout =
        std::chrono::milliseconds(sdk::option_int(o, path, "ws_pong_timeout_ms", 1, 86400000));
    s.write_queue_limit =
        static_cast<uint64_t>(sdk::option_int(o, path, "write_queue_limit", 1, 1LL << 32));
    s.queue_high_water =
        static_cast<uint64_t>(sdk::option_int(o, path, "queue_high_water", 1, 1LL << 32));
    s.queue_low_water =
        static_cast<uint64_t>(sdk::option_int(o, path, "queue_low_water", 0, 1LL << 32));
    if (s.queue_high_water > s.write_queue_limit)
        throw sdk::Error(CS_E_INVALID, sdk::join_path(path, "queue_high_water") +
                                           ": must not exceed write_queue_limit (" +
                                           std::to_string(s.write_queue_limit) + "), got " +
                                           std::to_string(s.queue_high_water));
    if (s.queue_low_water >= s.queue_high_water)
        throw sdk::Error(CS_E_INVALID, sdk::join_path(path, "queue_low_water") +
                                           ": must be below queue_high_water (" +
                                           std::to_string(s.queue_high_water) + "), got " +
                                           std::to_string(s.queue_low_water));
    std::string dir = o.at("static_dir").get<std::string>();
    if (!dir.empty()) s.static_dir = canonical_dir(path, dir);
    s.max_connections =
        static_cast<std::size_t>(sdk::option_int(o, path, "max_connections", 1, 1000000));
    s.max_connections_per_ip =
        static_cast<std::size_t>(sdk::option_int(o, path, "max_connections_per_ip", 1, 1000000));

    s.tls_cert_file = tls_file(path, "tls_cert_file", o.at("tls_cert_file").get<std::string>());
    s.tls_key_file = tls_file(path, "tls_key_file", o.at("tls_key_file").get<std::string>());
    if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
        const char *missing = s.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file";
        throw sdk::Error(CS_E_INVALID, sdk::join_path(path, missing) +
                                           ": missing; TLS needs both tls_cert_file and tls_key_file "
                                           "(leave both empty for plain HTTP)");
    }
    s.tls_also_plain = o.at("tls_also_plain").get<bool>();

    s.fallback_session_idle = std::chrono::milliseconds(
        sdk::option_int(o, path, "fallback_session_idle_ms", 1, 86400000));
    s.fallback_buffer_bytes =
        static_cast<uint64_t>(sdk::option_int(o, path, "fallback_buffer_bytes", 0, 1LL << 32));
    s.fallback_ping_interval = std::chrono::milliseconds(
        sdk::option_int(o, path, "fallback_ping_interval_ms", 1, 3600000));
    s.fallback_max_wait =
        std::chrono::milliseconds(sdk::option_int(o, path, "fallback_max_wait_ms", 0, 600000));
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
            {"ws_ping_interval_ms", 20000},
            {"ws_pong_timeout_ms", 20000},
            {"write_queue_limit", 8388608},
            {"queue_high_water", 262144},
            {"queue_low_water", 65536},
            {"static_dir", ""},
            {"max_connections", 10000},
            {"max_connections_per_ip", 256},
            {"tls_cert_file", ""},
            {"tls_key_file", ""},
            {"tls_also_plain", false},
            {"fallback_session_idle_ms", 60000},
            {"fallback_buffer_bytes", 1048576},
            {"fallback_ping_interval_ms", 15000},
            {"fallback_max_wait_ms", 25000},
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

CONSILIUM_TRANSPORT_PLUGIN(consilium::beast_transport::BeastTransport, "beast", "1.1.0",
                           "HTTP + WebSocket server on Boost.Beast (TLS optional): REST API, chat "
                           "channel with SSE and long-polling fallbacks, static web app")
