// providers/openai-realtime/realtime_relay.hpp: the server-side WebSocket relays of one
// "openai_realtime" instance. Beast-free header; all the Beast code is in realtime_relay.cpp.
//
// One I/O thread per RelayClient (one per plugin instance) runs every relay, each on its own
// strand, with do_x/on_x pairs and one finish() that delivers the sink's single close. A relay
// connects (DNS, TCP, TLS with the system CA store and host name checks for wss://, the upgrade
// with the given headers) within connect_timeout_ms; sends first_frame, then the client frames in
// the order send() was called; hands every upstream text frame, checked to be JSON, to the sink.
// Client frames wait in a queue bounded by send_queue_limit bytes: over it, the relay closes with
// 1008 "send queue full".
//
// Close codes given to the sink (reasons at most 123 bytes, never a header value or a frame):
//   1000 close() was called, or upstream closed normally (1000 / no code)
//   1001 the instance is being destroyed, or upstream went away (1001)
//   1008 send queue full
//   1011 upstream refused the credentials (401/403) or the upgrade (other 4xx), sent a malformed
//        or binary frame, failed TLS, or the connection was lost mid-session; any other upstream
//        close code (the original code is in the reason)
//   1012/1013 upstream restarting / try again later: its own 1012/1013, 429 or 5xx on the
//        upgrade, DNS or connect failure, connect timeout
#pragma once

#include "realtime_session.hpp"

#include <consilium/sdk/provider.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace consilium::providers::realtime {

struct RelayOptions {
    int64_t connect_timeout_ms = 5000;       // DNS + TCP + TLS + upgrade; also bounds the close handshake
    size_t send_queue_limit = 4u << 20;      // bytes of client frames not yet written upstream
    size_t max_frame_bytes = 16u << 20;      // an upstream message larger than this ends the relay
    int64_t idle_timeout_ms = 60000;         // pings after half of it; no data for all of it ends it
};

// LIFETIME: owned by the provider instance. Its destructor closes every open relay (the sink
// gets 1001) and joins the I/O thread. Relay handles may outlive it; they then do nothing.
class RelayClient {
public:
    RelayClient(sdk::Host host, std::string name);
    ~RelayClient();
    RelayClient(const RelayClient &) = delete;
    RelayClient &operator=(const RelayClient &) = delete;

    // Starts one relay and returns at once; the sink gets frames, then exactly one close (also
    // when the connection fails). headers: extra upgrade headers (Authorization, ...).
    std::unique_ptr<sdk::Relay> open(const WsTarget &target, std::vector<std::pair<std::string, std::string>> headers,
                                     std::string first_frame, sdk::RelaySink sink, const RelayOptions &options);

    // Relays whose sink has not been closed yet.
    size_t open_relays() const;

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

}  // namespace consilium::providers::realtime
