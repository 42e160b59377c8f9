// The HTTP + WebSocket server behind the Beast transport. Beast-free interface: every Beast
// template lives in server.cpp and websocket_session.cpp.
#pragma once

#include "options.hpp"

#include <consilium/abi.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace consilium::beast_transport {

class Core;
class Listener;
struct WorkGuard;

// LIFETIME: borrows the host services table (valid until the plugin instance is destroyed, which
// destroys this first). stop() ends every connection and joins the io threads; after it returns
// no thread of ours calls the front API. Destroying the server stops it.
class Server {
public:
    Server(const cs_host_api *host, ServerOptions options);
    ~Server();
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    // Binds, starts the io threads and returns the bound "host:port". Throws sdk::Error.
    std::string start();
    // Closes the listening socket; open connections carry on. Idempotent.
    void stop_accepting();
    // Closes every WebSocket (1001 "going away") and HTTP connection, waits for them (at most the
    // WebSocket handshake timeout and a second), stops and joins the io threads, then ends the
    // chats of connections that did not finish in time. Idempotent.
    void stop();

private:
    std::shared_ptr<Core> core_;
    std::shared_ptr<Listener> listener_;
    std::unique_ptr<WorkGuard> work_;
    std::vector<std::thread> threads_;
    std::mutex stop_mu_;  // serializes start/stop_accepting/stop
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace consilium::beast_transport
