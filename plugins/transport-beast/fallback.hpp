// The chat channel's fallback transports, for networks that block WebSockets: a chat session
// created over HTTP (POST /v1/chat/sessions), read as Server-Sent Events (GET .../events) or by
// long-polling (GET .../poll), written to by POST .../frames. One session is one chat of the
// front API (chat_open ... chat_close); the engine's frames pass unchanged, each numbered with a
// per-session event id (docs/protocol.md, "Fallback transports").
//
// Split from the HTTP side: fallback.cpp keeps the sessions (Asio strands and timers, no Beast
// template); the SSE connection itself is written by the HTTP session in server.cpp, which
// implements SseSink.
#pragma once

#include "core.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace consilium::beast_transport {

// Answers one fallback request. Called exactly once, from an io thread; it must not block.
using Respond = std::function<void(FrontResponse)>;

// A fallback request as the HTTP session read it. Borrowed for the call.
struct FallbackRequest {
    std::string_view method;
    std::string_view target;         // with its query
    std::string_view body;
    std::string_view peer;           // "ip:port"
    std::string_view address;        // address_key() of the peer
    std::string_view authorization;  // the Authorization header, or empty
    std::string_view origin;         // the Origin header, or empty
    std::string_view last_event_id;  // the Last-Event-ID header, or empty
    const cs_header *headers = nullptr;  // every request header, for chat_open
    std::size_t header_count = 0;
};

// An SSE connection, as the session sees it: implemented by the HTTP session that holds it.
class SseSink {
public:
    virtual ~SseSink() = default;
    // Any thread. Writes bytes (SSE text) to the client; once they are written, the connection
    // calls SseSource::sse_written(this, last_id). The source hands one write at a time.
    virtual void sse_write(std::shared_ptr<const std::string> bytes, uint64_t last_id) = 0;
    // Any thread. Writes bytes (if any), then ends the response and closes the connection.
    // Nothing is reported back.
    virtual void sse_end(std::shared_ptr<const std::string> bytes) = 0;
};

// A session, as an SSE connection sees it. Every call posts to the session's strand.
class SseSource {
public:
    virtual ~SseSource() = default;
    // Attaches the connection (its response header is written or under way): the session writes
    // every frame after event id `after` (0: all it still has), then the live ones. A connection
    // already attached is ended with an `event: replaced`.
    virtual void attach_sse(std::weak_ptr<SseSink> sink, SseSink *key, uint64_t after) = 0;
    virtual void sse_written(SseSink *key, uint64_t last_id) = 0;
    // The connection ended (client gone, write error, timeout, server stop).
    virtual void detach_sse(SseSink *key) = 0;
};

class FallbackSession;

// The sessions of one server, by id.
// LIFETIME: owned by the Core. Server::stop() empties it once no io thread runs.
class Fallback {
public:
    explicit Fallback(Core &core) : core_(core) {}
    Fallback(const Fallback &) = delete;
    Fallback &operator=(const Fallback &) = delete;

    // Whether a request path belongs to the fallback transports (/v1/chat/sessions and below).
    static bool owns(std::string_view path);
    // Whether a request is an SSE stream (GET /v1/chat/sessions/<id>/events).
    static bool is_events(std::string_view method, std::string_view path);

    // Every fallback request but the SSE stream; respond is called exactly once, possibly
    // before this returns.
    void handle(const FallbackRequest &request, Respond respond);
    // For an SSE stream request: the session, or null and the response to send instead.
    std::shared_ptr<SseSource> find_for_events(const FallbackRequest &request, FrontResponse &error,
                                               uint64_t &after);

    // The session ended: forget it.
    void remove(const std::string &id) noexcept;
    // Server::stop(), with no io thread running: drops every session.
    void clear();
    std::size_t size() const;

private:
    // The session named in path (".../sessions/<id>[/...]") if it exists and the request
    // carries the Authorization header it was created with.
    std::shared_ptr<FallbackSession> find(std::string_view id, std::string_view authorization) const;
    void create(const FallbackRequest &request, Respond respond);

    Core &core_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<FallbackSession>> sessions_;
};

}  // namespace consilium::beast_transport
