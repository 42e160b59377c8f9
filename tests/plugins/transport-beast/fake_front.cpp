// The fake engine and the fixture of fake_front.hpp.
#include "fake_front.hpp"

#include "plugin/services.hpp"

#include <algorithm>
#include <cctype>

namespace consilium::test {

namespace {

std::string sv(cs_str s) { return s.data ? std::string(s.data, s.size) : std::string(); }
cs_str cs(const std::string &s) { return cs_str{s.data(), s.size()}; }

std::string lower(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

void respond_json(cs_http_respond_fn respond, void *respond_ctx, int status, const std::string &body,
                  const std::vector<std::pair<std::string, std::string>> &extra) {
    std::vector<cs_header> headers;
    for (const auto &[n, v] : extra) headers.push_back(cs_header{cs(n), cs(v)});
    static const std::string type = "application/json";
    cs_http_response res{};
    res.struct_size = sizeof(cs_http_response);
    res.status = status;
    res.content_type = cs(type);
    res.body = cs(body);
    res.headers = headers.data();
    res.header_count = headers.size();
    respond(respond_ctx, &res);
}

}  // namespace

FakeFront::FakeFront() {
    api_.struct_size = sizeof(cs_front_api);
    api_.http = &FakeFront::http;
    api_.chat_open = &FakeFront::chat_open;
    api_.chat_frame = &FakeFront::chat_frame;
    api_.chat_close = &FakeFront::chat_close;
    api_.accepting = &FakeFront::accepting_fn;
    api_.chat_drained = &FakeFront::chat_drained;
}

FakeFront::~FakeFront() {
    for (auto &t : responders_) t.join();
}

FakeFront *FakeFront::self(cs_host_ctx *ctx) {
    // The transport passes back its own host context; the engine's is behind it.
    return reinterpret_cast<FakeFront *>(services_of(ctx)->front_ctx());
}

void FakeFront::note_call() {
    if (marked_.load()) calls_after_mark_.fetch_add(1);
}

bool FakeFront::wait_for(const std::function<bool()> &pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        // pred takes the lock itself: wake on every change, and poll in case one was missed.
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(10)));
    }
}

std::vector<HttpCall> FakeFront::http_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return http_calls_;
}

size_t FakeFront::chat_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return chats_.size();
}

ChatView FakeFront::chat(size_t index) const {
    std::lock_guard<std::mutex> lock(mu_);
    return index < chats_.size() ? chats_[index]->view : ChatView{};
}

int FakeFront::total_chat_close_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto &c : chats_) n += c->view.close_calls;
    return n;
}

size_t FakeFront::held_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
}

void FakeFront::release_held() {
    std::vector<std::pair<cs_http_respond_fn, void *>> held;
    {
        std::lock_guard<std::mutex> lock(mu_);
        held.swap(held_);
    }
    for (auto &[respond, ctx] : held) respond_json(respond, ctx, 200, R"({"late":true})", {});
}

void FakeFront::http(cs_host_ctx *ctx, const cs_http_request *request, cs_http_respond_fn respond,
                     void *respond_ctx) {
    FakeFront *f = self(ctx);
    f->note_call();
    HttpCall call;
    call.method = sv(request->method);
    call.target = sv(request->target);
    call.body = sv(request->body);
    call.peer = sv(request->peer);
    for (size_t i = 0; i < request->header_count; ++i)
        call.headers[lower(sv(request->headers[i].name))] = sv(request->headers[i].value);

    nlohmann::json echo = {{"method", call.method}, {"target", call.target}, {"body", call.body},
                           {"peer", call.peer}, {"headers", call.headers}};
    int status = 200;
    if (call.target.rfind("/status/", 0) == 0) status = std::stoi(call.target.substr(8));
    std::vector<std::pair<std::string, std::string>> extra = {{"X-Fake", "yes"}};
    if (call.target == "/bad-header") {
        extra.emplace_back("X-Evil", "a\r\nInjected: 1");
        extra.emplace_back("Content-Length", "5");
    }
    if (call.target == "/cached") extra.emplace_back("Cache-Control", "max-age=60");

    std::unique_lock<std::mutex> lock(f->mu_);
    f->http_calls_.push_back(call);
    f->cv_.notify_all();
    if (call.target == "/hold") {
        f->held_.emplace_back(respond, respond_ctx);
        return;
    }
    if (call.target.rfind("/async", 0) == 0) {
        // Answer from another thread, a little later.
        f->responders_.emplace_back([respond, respond_ctx, status, body = echo.dump(), extra] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            respond_json(respond, respond_ctx, status, body, extra);
        });
        return;
    }
    lock.unlock();
    respond_json(respond, respond_ctx, status, echo.dump(), extra);
}

cs_chat *FakeFront::chat_open(cs_host_ctx *ctx, const cs_chat_open_params *params,
                              const cs_chat_sink *sink) {
    FakeFront *f = self(ctx);
    f->note_call();
    auto chat = std::make_shared<FakeChat>();
    chat->front = f;
    chat->view.bearer = sv(params->bearer_token);
    chat->view.peer = sv(params->peer);
    chat->view.origin = sv(params->origin);
    chat->view.transport = sv(params->transport);
    chat->view.target = sv(params->target);
    for (size_t i = 0; i < params->header_count; ++i)
        chat->view.headers[lower(sv(params->headers[i].name))] = sv(params->headers[i].value);
    chat->sink = *sink;
    const bool greet = chat->view.bearer == "greet";
    {
        std::lock_guard<std::mutex> lock(f->mu_);
        chat->view.id = static_cast<int>(f->chats_.size());
        f->chats_.push_back(chat);
        f->cv_.notify_all();
    }
    if (greet) {
        std::string ready = "ready";
        chat->sink.send(chat->sink.ctx, cs(ready));
    }
    return reinterpret_cast<cs_chat *>(chat.get());
}

void FakeFront::chat_frame(cs_chat *handle, cs_str frame_in) {
    auto *chat = reinterpret_cast<FakeChat *>(handle);
    FakeFront *f = chat->front;
    f->note_call();
    std::string frame = sv(frame_in);
    {
        std::lock_guard<std::mutex> lock(f->mu_);
        chat->view.frames.push_back(frame);
        f->cv_.notify_all();
    }
    const cs_chat_sink sink = chat->sink;
    if (frame.rfind("close:", 0) == 0) {
        size_t colon = frame.find(':', 6);
        int code = std::stoi(frame.substr(6, colon - 6));
        std::string reason = colon == std::string::npos ? "" : frame.substr(colon + 1);
        sink.close(sink.ctx, code, cs(reason));
        std::string late = "late";
        int64_t r = sink.send(sink.ctx, cs(late));
        std::lock_guard<std::mutex> lock(f->mu_);
        chat->view.send_after_close = r;
        f->cv_.notify_all();
        return;
    }
    if (frame.rfind("flood:", 0) == 0) {
        size_t size = std::stoul(frame.substr(6));
        std::lock_guard<std::mutex> lock(f->mu_);
        chat->threads.emplace_back([f, chat, sink, size] {
            std::string payload(size, 'x');
            for (int i = 0; i < 200000; ++i) {
                int64_t r = sink.send(sink.ctx, cs(payload));
                std::lock_guard<std::mutex> inner(f->mu_);
                if (r < 0) {
                    chat->view.flood_refused = true;
                    f->cv_.notify_all();
                    return;
                }
                ++chat->view.flood_sent;
            }
        });
        return;
    }
    if (frame.rfind("fill:", 0) == 0) {
        size_t colon = frame.find(':', 5);
        size_t size = std::stoul(frame.substr(5, colon - 5));
        int64_t until = std::stoll(frame.substr(colon + 1));
        std::lock_guard<std::mutex> lock(f->mu_);
        chat->threads.emplace_back([f, chat, sink, size, until] {
            std::string payload(size, 'f');
            for (;;) {
                int64_t r = sink.send(sink.ctx, cs(payload));
                std::lock_guard<std::mutex> inner(f->mu_);
                if (r >= 0) {
                    ++chat->view.fill_sent;
                    chat->view.fill_peak = std::max(chat->view.fill_peak, r);
                }
                if (r < 0 || r > until) {
                    chat->view.fill_done = true;
                    f->cv_.notify_all();
                    return;
                }
            }
        });
        return;
    }
    if (frame.rfind("async:", 0) == 0) {
        std::lock_guard<std::mutex> lock(f->mu_);
        chat->threads.emplace_back([sink, text = frame.substr(6)] { sink.send(sink.ctx, cs(text)); });
        return;
    }
    std::string echo = "echo:" + frame;
    sink.send(sink.ctx, cs(echo));
}

void FakeFront::chat_close(cs_chat *handle) {
    auto *chat = reinterpret_cast<FakeChat *>(handle);
    FakeFront *f = chat->front;
    f->note_call();
    std::vector<std::thread> threads;
    {
        std::lock_guard<std::mutex> lock(f->mu_);
        threads.swap(chat->threads);
    }
    // Like the engine: once chat_close returns, nothing of ours touches the sink again.
    for (auto &t : threads) t.join();
    std::lock_guard<std::mutex> lock(f->mu_);
    ++chat->view.close_calls;
    f->cv_.notify_all();
}

void FakeFront::chat_drained(cs_chat *handle, int64_t queued_bytes) {
    auto *chat = reinterpret_cast<FakeChat *>(handle);
    FakeFront *f = chat->front;
    f->note_call();
    std::lock_guard<std::mutex> lock(f->mu_);
    ++chat->view.drained_calls;
    chat->view.drained_bytes = queued_bytes;
    f->cv_.notify_all();
}

int FakeFront::accepting_fn(cs_host_ctx *ctx) { return self(ctx)->accepting.load() ? 1 : 0; }

// ---------------------------------------------------------------------------------------------

bool TransportTest::start(nlohmann::json options) {
    if (!options.contains("listen")) options["listen"] = "127.0.0.1:0";
    harness_ = std::make_unique<PluginHarness>("transport", "beast", options.dump(), dir_.str(),
                                               front_.api(), front_.ctx());
    auto *vt = harness_->instance->vtable<cs_transport_vtable>();
    char address[128] = {};
    cs_error err{};
    cs_status st = vt->start(harness_->instance->instance(), address, sizeof address, &err);
    EXPECT_EQ(st, CS_OK) << err.message;
    if (st != CS_OK) return false;
    std::string a = address;
    auto colon = a.rfind(':');
    host_ = a.substr(0, colon);
    port_ = static_cast<uint16_t>(std::stoi(a.substr(colon + 1)));
    EXPECT_NE(port_, 0);
    return port_ != 0;
}

void TransportTest::stop_accepting() {
    auto *vt = harness_->instance->vtable<cs_transport_vtable>();
    vt->stop_accepting(harness_->instance->instance());
}

void TransportTest::stop() {
    auto *vt = harness_->instance->vtable<cs_transport_vtable>();
    vt->stop(harness_->instance->instance());
}

}  // namespace consilium::test
