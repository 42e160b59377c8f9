// providers/common/http_client.cpp: HttpClient on libcurl's multi interface.
//
// One loop thread owns the multi handle and every easy handle; other threads only queue
// commands (start, cancel, stop) under a mutex and wake the loop with curl_multi_wakeup. So no
// curl handle is ever touched by two threads, and handlers always run on the loop thread.
#include "http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace consilium::providers {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

void global_init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            throw std::runtime_error("libcurl could not be initialised");
    });
}

HttpEnd classify(CURLcode code) {
    switch (code) {
    case CURLE_OK: return HttpEnd::complete;
    case CURLE_OPERATION_TIMEDOUT: return HttpEnd::connect_timeout;  // the only timeout we set
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: return HttpEnd::connection_failed;
    default: return HttpEnd::failed;
    }
}

}  // namespace

std::string HttpHead::header(std::string_view name) const {
    std::string n = lower(name);
    for (const auto &[k, v] : headers)
        if (k == n) return v;
    return {};
}

// One transfer. LIFETIME: owned by the loop (queue, then the running map) until on_end returned.
struct Transfer {
    uint64_t id = 0;
    HttpRequest request;
    std::shared_ptr<HttpHandler> handler;
    CURL *easy = nullptr;
    curl_slist *headers = nullptr;
    HttpHead head;
    bool head_sent = false;
    bool aborted = false;
    int64_t body_bytes = 0;
    char errbuf[CURL_ERROR_SIZE] = {};

    ~Transfer() {
        if (easy) curl_easy_cleanup(easy);
        if (headers) curl_slist_free_all(headers);
    }

    void send_head() {
        if (head_sent) return;
        head_sent = true;
        try {
            handler->on_head(head);
        } catch (...) {
            aborted = true;
        }
    }

    static size_t on_header(char *data, size_t size, size_t n, void *self_ptr) {
        auto *self = static_cast<Transfer *>(self_ptr);
        std::string_view line(data, size * n);
        if (line.rfind("HTTP/", 0) == 0) {
            // A new response (after 1xx, or the first): forget what an interim one said.
            self->head.headers.clear();
            return size * n;
        }
        std::string_view t = trim(line);
        if (t.empty()) {
            long status = 0;
            curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status);
            if (status >= 200) {
                self->head.status = static_cast<int>(status);
                self->send_head();
                if (self->aborted) return 0;
            }
            return size * n;
        }
        auto colon = t.find(':');
        if (colon != std::string_view::npos && colon > 0)
            self->head.headers.emplace_back(lower(trim(t.substr(0, colon))), std::string(trim(t.substr(colon + 1))));
        return size * n;
    }

    static size_t on_write(char *data, size_t size, size_t n, void *self_ptr) {
        auto *self = static_cast<Transfer *>(self_ptr);
        if (!self->head_sent) {
            long status = 0;
            curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status);
            self->head.status = static_cast<int>(status);
            self->send_head();
        }
        if (self->aborted) return 0;
        self->body_bytes += static_cast<int64_t>(size * n);
        bool more = false;
        try {
            more = self->handler->on_body(std::string_view(data, size * n));
        } catch (...) {
            more = false;
        }
        if (!more) {
            self->aborted = true;
            return 0;  // CURLE_WRITE_ERROR: the transfer stops
        }
        return size * n;
    }
};

struct HttpClient::Core {
    HttpClientOptions options;
    CURLM *multi = nullptr;
    std::thread thread;
    std::atomic<uint64_t> next_id{1};
    std::atomic<size_t> in_flight{0};
    std::atomic<size_t> peak{0};

    // Commands from other threads.
    std::mutex mu;
    std::deque<std::unique_ptr<Transfer>> incoming;
    std::vector<uint64_t> cancels;
    bool stopping = false;

    // Loop-thread state.
    std::deque<std::unique_ptr<Transfer>> queued;
    std::map<CURL *, std::unique_ptr<Transfer>> running;

    explicit Core(HttpClientOptions o) : options(std::move(o)) {
        global_init_once();
        multi = curl_multi_init();
        if (!multi) throw std::runtime_error("libcurl: cannot create a multi handle");
    }
    ~Core() {
        if (multi) curl_multi_cleanup(multi);
    }

    void wake() { curl_multi_wakeup(multi); }

    static void finish(std::unique_ptr<Transfer> t, HttpResult r) {
        r.body_bytes = t->body_bytes;
        r.head_received = t->head_sent;
        auto handler = std::move(t->handler);
        t.reset();  // the easy handle goes before the handler hears of the end
        try {
            handler->on_end(r);
        } catch (...) {
        }
    }

    bool begin(std::unique_ptr<Transfer> &t) {
        CURL *e = curl_easy_init();
        if (!e) return false;
        t->easy = e;
        const HttpRequest &rq = t->request;
        for (const auto &h : rq.headers) t->headers = curl_slist_append(t->headers, h.c_str());
        // No "Expect: 100-continue" round trip for large bodies.
        t->headers = curl_slist_append(t->headers, "Expect:");
        curl_easy_setopt(e, CURLOPT_URL, rq.url.c_str());
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq.method.c_str());
        if (rq.method == "POST" || !rq.body.empty()) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq.body.data());
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(rq.body.size()));
        }
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        curl_easy_setopt(e, CURLOPT_USERAGENT, options.user_agent.c_str());
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        if (rq.connect_timeout_ms > 0) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(rq.connect_timeout_ms));
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
        if (curl_multi_add_handle(multi, e) != CURLM_OK) return false;
        running.emplace(e, std::move(t));
        size_t now = running.size();
        in_flight = now;
        size_t p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        return true;
    }

    // Starts queued transfers while there is room. Returns true if it started any.
    bool fill() {
        bool started = false;
        while (!queued.empty() && running.size() < options.max_concurrent) {
            std::unique_ptr<Transfer> t = std::move(queued.front());
            queued.pop_front();
            if (!begin(t)) {
                if (t) finish(std::move(t), HttpResult{HttpEnd::failed, 0, "libcurl could not start the transfer"});
                continue;
            }
            started = true;
        }
        return started;
    }

    std::unique_ptr<Transfer> detach(CURL *e) {
        auto it = running.find(e);
        if (it == running.end()) return nullptr;
        std::unique_ptr<Transfer> t = std::move(it->second);
        running.erase(it);
        curl_multi_remove_handle(multi, e);
        in_flight = running.size();
        return t;
    }

    void cancel_now(uint64_t id, HttpEnd why) {
        for (auto it = queued.begin(); it != queued.end(); ++it) {
            if ((*it)->id == id) {
                std::unique_ptr<Transfer> t = std::move(*it);
                queued.erase(it);
                finish(std::move(t), HttpResult{why, 0, {}});
                return;
            }
        }
        for (auto &[easy, t] : running) {
            if (t->id == id) {
                finish(detach(easy), HttpResult{why, 0, {}});
                return;
            }
        }
    }

    void collect() {
        int left = 0;
        while (CURLMsg *m = curl_multi_info_read(multi, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            CURLcode code = m->data.result;
            std::unique_ptr<Transfer> t = detach(m->easy_handle);
            if (!t) continue;
            HttpResult r;
            r.curl_code = static_cast<int>(code);
            if (t->aborted) {
                r.end = HttpEnd::aborted;
            } else {
                r.end = classify(code);
                if (code == CURLE_OPERATION_TIMEDOUT && t->head_sent) r.end = HttpEnd::connection_failed;
                if (code != CURLE_OK) r.message = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
                if (code == CURLE_OK && !t->head_sent) {
                    long status = 0;
                    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
                    t->head.status = static_cast<int>(status);
                    t->send_head();
                }
            }
            finish(std::move(t), std::move(r));
        }
    }

    void end_all(HttpEnd why) {
        while (!queued.empty()) {
            std::unique_ptr<Transfer> t = std::move(queued.front());
            queued.pop_front();
            finish(std::move(t), HttpResult{why, 0, {}});
        }
        while (!running.empty()) finish(detach(running.begin()->first), HttpResult{why, 0, {}});
    }

    void run() {
        for (;;) {
            std::deque<std::unique_ptr<Transfer>> in;
            std::vector<uint64_t> cx;
            bool stop = false;
            {
                std::lock_guard<std::mutex> lock(mu);
                in.swap(incoming);
                cx.swap(cancels);
                stop = stopping;
            }
            for (auto &t : in) queued.push_back(std::move(t));
            for (uint64_t id : cx) cancel_now(id, HttpEnd::cancelled);
            if (stop) {
                end_all(HttpEnd::shutdown);
                return;
            }
            bool started = fill();
            int still = 0;
            curl_multi_perform(multi, &still);
            collect();
            started = fill() || started;
            curl_multi_poll(multi, nullptr, 0, started ? 0 : 1000, nullptr);
        }
    }
};

HttpClient::HttpClient(HttpClientOptions options)
    : core_(std::make_shared<Core>(std::move(options))) {
    if (core_->options.max_concurrent == 0) core_->options.max_concurrent = 1;
    core_->thread = std::thread([c = core_.get()] { c->run(); });
}

HttpClient::~HttpClient() {
    {
        std::lock_guard<std::mutex> lock(core_->mu);
        core_->stopping = true;
    }
    core_->wake();
    if (core_->thread.joinable()) core_->thread.join();
    // Transfers queued after the loop ended (none in practice) still get their end.
    std::deque<std::unique_ptr<Transfer>> late;
    {
        std::lock_guard<std::mutex> lock(core_->mu);
        late.swap(core_->incoming);
    }
    for (auto &t : late) Core::finish(std::move(t), HttpResult{HttpEnd::shutdown, 0, {}});
}

uint64_t HttpClient::start(HttpRequest request, std::shared_ptr<HttpHandler> handler) {
    auto t = std::make_unique<Transfer>();
    t->id = core_->next_id.fetch_add(1);
    t->request = std::move(request);
    t->handler = std::move(handler);
    uint64_t id = t->id;
    {
        std::lock_guard<std::mutex> lock(core_->mu);
        core_->incoming.push_back(std::move(t));
    }
    core_->wake();
    return id;
}

void HttpClient::cancel(uint64_t id) {
    {
        std::lock_guard<std::mutex> lock(core_->mu);
        core_->cancels.push_back(id);
    }
    core_->wake();
}

void HttpClient::Canceller::cancel() const {
    if (auto core = core_.lock()) {
        {
            std::lock_guard<std::mutex> lock(core->mu);
            if (core->stopping) return;
            core->cancels.push_back(id_);
        }
        core->wake();
    }
}

HttpClient::Canceller HttpClient::canceller(uint64_t id) const { return Canceller(core_, id); }

size_t HttpClient::in_flight() const { return core_->in_flight.load(); }
size_t HttpClient::peak_in_flight() const { return core_->peak.load(); }

}  // namespace consilium::providers
