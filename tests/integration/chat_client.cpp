#include "chat_client.hpp"

namespace consilium::test {

GuestToken new_guest(uint16_t port) {
    net::HttpClient http("127.0.0.1", port);
    auto r = http.request("POST", "/v1/auth/guest", "{}", {{"Content-Type", "application/json"}});
    GuestToken t;
    if (r.status != 201) return t;
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object()) return t;
    t.access_token = j.value("access_token", "");
    t.account_id = j["account"].value("id", "");
    return t;
}

bool ChatClient::connect(const std::string &token) {
    if (!ws_.connect("127.0.0.1", port_, "/v1/chat", {{"Authorization", "Bearer " + token}})) return false;
    auto f = next();
    return f && f->value("type", "") == "ready";
}

bool ChatClient::connect_anonymous() { return ws_.connect("127.0.0.1", port_, "/v1/chat"); }

bool ChatClient::send(const json &frame) { return ws_.send_text(frame.dump()); }
bool ChatClient::send_raw(const std::string &text) { return ws_.send_text(text); }

std::optional<json> ChatClient::next(std::chrono::milliseconds timeout) {
    auto text = ws_.receive_text(timeout);
    if (!text) return std::nullopt;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) return json{{"type", "<not json>"}, {"raw", *text}};
    return j;
}

std::vector<json> ChatClient::until(const std::function<bool(const json &)> &pred, std::chrono::milliseconds timeout) {
    std::vector<json> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        auto f = next(left);
        if (!f) break;
        out.push_back(*f);
        if (pred(*f)) break;
    }
    return out;
}

std::vector<json> ChatClient::until_stream_end(std::chrono::milliseconds timeout) {
    return until([](const json &f) { return f.value("type", "") == "stream_end"; }, timeout);
}

}  // namespace consilium::test
