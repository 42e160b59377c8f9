// The cs_front_api the engine gives transport plugins: HTTP requests and chat connections in,
// responses and events out. See abi.h for the threading and LIFETIME rules.
#include "api/chat_session.hpp"
#include "api/http_api.hpp"
#include "api/voice_relay.hpp"
#include "engine.hpp"
#include "plugin/services.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <cctype>

namespace consilium {

namespace {

struct ChatHandle {
    std::shared_ptr<FrontSession> session;
};

Engine &engine_of(cs_host_ctx *ctx) { return *reinterpret_cast<Engine *>(services_of(ctx)->front_ctx()); }

std::string str(cs_str s) { return s.data ? std::string(s.data, s.size) : std::string(); }

void front_http(cs_host_ctx *ctx, const cs_http_request *r, cs_http_respond_fn respond, void *respond_ctx) {
    Engine &engine = engine_of(ctx);
    HttpRequest req;
    req.method = str(r->method);
    std::string target = str(r->target);
    HttpApi::split_target(target, req.path, req.query);
    req.body = str(r->body);
    req.peer = str(r->peer);
    for (size_t i = 0; i < r->header_count; ++i) {
        std::string name = str(r->headers[i].name);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        req.headers[name] = str(r->headers[i].value);
    }
    auto started = std::chrono::steady_clock::now();
    engine.executor().post([&engine, req = std::move(req), respond, respond_ctx, started]() mutable {
        std::string path = req.path;
        std::string method = req.method;
        HttpResponse resp = engine.http_api().handle(std::move(req));
        std::vector<cs_header> headers;
        for (const auto &[k, v] : resp.headers) headers.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
        cs_http_response out{sizeof(cs_http_response), resp.status,
                             {resp.content_type.data(), resp.content_type.size()},
                             {resp.body.data(), resp.body.size()},
                             headers.data(), headers.size()};
        respond(respond_ctx, &out);
        engine.metrics()
            .histogram("http_request_seconds", "HTTP request handling time", {{"status", std::to_string(resp.status / 100) + "xx"}})
            .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    });
}

cs_chat *front_chat_open(cs_host_ctx *ctx, const cs_chat_open_params *p, const cs_chat_sink *sink) {
    Engine &engine = engine_of(ctx);
    // The target says which protocol: the chat channel, or a voice relay (ABI 1.1 transports
    // fill it; older ones only serve the chat).
    std::string target = p->struct_size >= sizeof(cs_chat_open_params) ? str(p->target) : "/v1/chat";
    std::string path;
    std::map<std::string, std::string> query;
    HttpApi::split_target(target, path, query);
    std::shared_ptr<FrontSession> session;
    if (path == "/v1/voice/relay")
        session = std::make_shared<VoiceRelaySession>(engine, *sink, std::move(query));
    else {
        auto chat = std::make_shared<ChatSession>(engine, *sink, str(p->peer), str(p->transport));
        chat->set_origin(str(p->origin));
        session = chat;
    }
    auto *h = new ChatHandle{session};
    session->open(str(p->bearer_token));
    return reinterpret_cast<cs_chat *>(h);
}

void front_chat_frame(cs_chat *chat, cs_str frame) {
    auto *h = reinterpret_cast<ChatHandle *>(chat);
    h->session->on_frame(std::string_view(frame.data ? frame.data : "", frame.data ? frame.size : 0));
}

void front_chat_close(cs_chat *chat) {
    auto *h = reinterpret_cast<ChatHandle *>(chat);
    h->session->close();
    delete h;
}

int front_accepting(cs_host_ctx *ctx) { return engine_of(ctx).service().accepting() ? 1 : 0; }

void front_chat_drained(cs_chat *chat, int64_t queued_bytes) {
    reinterpret_cast<ChatHandle *>(chat)->session->on_drained(queued_bytes);
}

const cs_front_api kFront{sizeof(cs_front_api), &front_http,      &front_chat_open, &front_chat_frame,
                          &front_chat_close,     &front_accepting, &front_chat_drained};

}  // namespace

const cs_front_api *front_api() { return &kFront; }

}  // namespace consilium
