// providers/common/provider_support.cpp: see provider_support.hpp.
#include "provider_support.hpp"

#include <curl/curl.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace consilium::providers {

using sdk::Error;
using sdk::join_path;

namespace {

std::string_view trim_view(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

bool has_control_chars(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
    return false;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
            return false;
    return true;
}

const char *stop_name(cs_stop_reason r) {
    switch (r) {
    case CS_STOP_END_TURN: return "end_turn";
    case CS_STOP_MAX_TOKENS: return "max_tokens";
    case CS_STOP_STOP_SEQUENCE: return "stop_sequence";
    case CS_STOP_REFUSAL: return "refusal";
    case CS_STOP_CANCELLED: return "cancelled";
    case CS_STOP_CONTEXT_EXCEEDED: return "context_exceeded";
    }
    return "unknown";
}

const char *kind_name(cs_error_kind k) {
    switch (k) {
    case CS_ERR_RATE_LIMITED: return "rate_limited";
    case CS_ERR_OVERLOADED: return "overloaded";
    case CS_ERR_SERVER: return "server";
    case CS_ERR_TIMEOUT: return "timeout";
    case CS_ERR_CONNECTION: return "connection";
    case CS_ERR_CONTEXT_TOO_LONG: return "context_too_long";
    case CS_ERR_CONTENT_FILTER: return "content_filter";
    case CS_ERR_AUTH: return "auth";
    case CS_ERR_BAD_REQUEST: return "bad_request";
    case CS_ERR_NOT_FOUND: return "not_found";
    case CS_ERR_PROTOCOL: return "protocol";
    case CS_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

constexpr size_t kMaxErrorBody = 64 * 1024;

}  // namespace

// ---- API keys -------------------------------------------------------------------------------

std::string load_api_key(const json &options, const std::string &path, bool required) {
    auto given = options.find("api_key");
    if (given != options.end() && !given->is_null())
        throw Error(CS_E_INVALID, join_path(path, "api_key") +
                                      ": API keys are never read from the configuration; set api_key_env to the "
                                      "name of an environment variable that holds the key, or api_key_file to a "
                                      "file that contains it");
    std::string file = options.value("api_key_file", "");
    std::string env = options.value("api_key_env", "");
    std::string key;
    std::string source;
    if (!file.empty()) {
        source = join_path(path, "api_key_file");
        std::ifstream in(file, std::ios::binary);
        if (!in) throw Error(CS_E_INVALID, source + ": cannot read " + file + ": " + std::strerror(errno));
        std::string content(64 * 1024, '\0');
        in.read(content.data(), static_cast<std::streamsize>(content.size()));
        content.resize(static_cast<size_t>(in.gcount()));
        key = std::string(trim_view(content));
        if (key.empty() && required) throw Error(CS_E_INVALID, source + ": the file " + file + " is empty");
    } else if (!env.empty()) {
        source = join_path(path, "api_key_env");
        const char *v = std::getenv(env.c_str());
        key = v ? std::string(trim_view(v)) : std::string();
        if (key.empty() && required)
            throw Error(CS_E_INVALID, source + ": the environment variable " + env +
                                          " is not set or empty; export the API key in it, or set api_key_file");
    } else if (required) {
        throw Error(CS_E_INVALID, path + ": no API key configured; set api_key_env or api_key_file");
    }
    if (has_control_chars(key))
        throw Error(CS_E_INVALID, source + ": the key contains control characters (a line break?)");
    return key;
}

// ---- Parsing helpers ------------------------------------------------------------------------

int64_t parse_retry_after_ms(std::string_view value, int64_t now_unix_ms) {
    std::string_view v = trim_view(value);
    if (v.empty()) return -1;
    bool numeric = true;
    int dots = 0;
    for (char c : v) {
        if (c == '.') ++dots;
        else if (c < '0' || c > '9') numeric = false;
    }
    if (numeric && dots <= 1 && v.front() != '.' && v.size() < 20) {
        double seconds = std::strtod(std::string(v).c_str(), nullptr);
        return static_cast<int64_t>(std::ceil(seconds * 1000.0));
    }
    std::string date(v);
    time_t t = curl_getdate(date.c_str(), nullptr);
    if (t == static_cast<time_t>(-1)) return -1;
    int64_t ms = static_cast<int64_t>(t) * 1000 - now_unix_ms;
    return ms < 0 ? 0 : ms;
}

int64_t parse_duration_ms(std::string_view value) {
    std::string_view v = trim_view(value);
    if (v.empty()) return -1;
    double total_ms = 0;
    size_t i = 0;
    while (i < v.size()) {
        size_t start = i;
        while (i < v.size() && ((v[i] >= '0' && v[i] <= '9') || v[i] == '.')) ++i;
        if (i == start) return -1;
        double n = std::strtod(std::string(v.substr(start, i - start)).c_str(), nullptr);
        size_t u = i;
        while (i < v.size() && !((v[i] >= '0' && v[i] <= '9') || v[i] == '.')) ++i;
        std::string_view unit = v.substr(u, i - u);
        if (unit == "h") total_ms += n * 3600000.0;
        else if (unit == "m") total_ms += n * 60000.0;
        else if (unit == "s") total_ms += n * 1000.0;
        else if (unit == "ms") total_ms += n;
        else if (unit == "us" || unit == "\xC2\xB5s") total_ms += n / 1000.0;
        else if (unit == "ns") total_ms += n / 1e6;
        else return -1;
    }
    return static_cast<int64_t>(std::ceil(total_ms));
}

std::string normalise_base_url(const std::string &url, const std::string &option_path) {
    if (!(starts_with_nocase(url, "http://") || starts_with_nocase(url, "https://")) || has_control_chars(url) ||
        url.find(' ') != std::string::npos)
        throw Error(CS_E_INVALID, option_path + ": must be an http:// or https:// URL, got \"" + url + "\"");
    std::string out = url;
    while (!out.empty() && out.back() == '/') out.pop_back();
    return out;
}

int64_t connect_timeout_ms(const json &request, int64_t fallback) {
    auto t = request.find("timeouts");
    if (t == request.end() || !t->is_object()) return fallback;
    auto c = t->find("connect_ms");
    if (c == t->end() || !c->is_number()) return fallback;
    double ms = c->get<double>();
    if (!(ms > 0) || ms > 3600000) return fallback;
    return static_cast<int64_t>(ms);
}

std::string redact(std::string text, const std::string &secret) {
    if (secret.empty()) return text;
    size_t pos = 0;
    while ((pos = text.find(secret, pos)) != std::string::npos) {
        text.replace(pos, secret.size(), "[redacted]");
        pos += 10;
    }
    return text;
}

bool header_safe(std::string_view name, std::string_view value) {
    if (name.empty() || has_control_chars(name) || name.find(':') != std::string_view::npos ||
        name.find(' ') != std::string_view::npos)
        return false;
    for (char c : value)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

// ---- StreamOut ------------------------------------------------------------------------------

void StreamOut::text(std::string_view delta) {
    if (finished_ || delta.empty()) return;
    text_bytes_ += static_cast<int64_t>(delta.size());
    sink_.text(delta);
}

void StreamOut::citation(const json &c) {
    if (!finished_) sink_.citation(c);
}

void StreamOut::model(std::string_view m) {
    if (!finished_ && !m.empty()) sink_.model(m);
}

void StreamOut::usage(int64_t input_tokens, int64_t output_tokens) {
    if (!finished_) sink_.usage(input_tokens, output_tokens);
}

void StreamOut::end(cs_stop_reason reason) {
    if (finished_) return;
    finished_ = true;
    std::string line = provider_ + ": stream ended stop=" + stop_name(reason) +
                       " text_bytes=" + std::to_string(text_bytes_) + " body_bytes=" + std::to_string(body_bytes_);
    if (!request_id_.empty()) line += " request_id=" + request_id_;
    host_.log(CS_LOG_DEBUG, line);
    sink_.end(reason);
}

void StreamOut::fail(cs_error_kind kind, const std::string &message, int http_status, int64_t retry_after_ms) {
    if (finished_) return;
    finished_ = true;
    std::string msg = redact(message, secret_);
    if (msg.size() > 900) msg.resize(900);
    std::string line = provider_ + ": stream failed kind=" + kind_name(kind) + " status=" + std::to_string(http_status);
    if (retry_after_ms >= 0) line += " retry_after_ms=" + std::to_string(retry_after_ms);
    if (!request_id_.empty()) line += " request_id=" + redact(request_id_, secret_);
    line += " text_bytes=" + std::to_string(text_bytes_) + " body_bytes=" + std::to_string(body_bytes_);
    host_.warn(line);
    sink_.error(kind, msg, http_status, retry_after_ms);
}

// ---- SseHttpStream --------------------------------------------------------------------------

SseHttpStream::SseHttpStream(StreamOut out, std::unique_ptr<StreamProtocol> protocol, std::string request_id_header)
    : out_(std::move(out)), protocol_(std::move(protocol)), request_id_header_(std::move(request_id_header)),
      parser_([this](const SseEvent &ev) {
          protocol_->on_event(ev, out_);
          return !out_.finished();
      }) {}

void SseHttpStream::on_head(const HttpHead &head) {
    head_ = head;
    std::string rid = head.header(request_id_header_);
    if (!rid.empty() && rid.size() < 200 && !has_control_chars(rid)) out_.set_request_id(rid);
    std::string type = head.header("content-type");
    streaming_ = head.status / 100 == 2 && (type.empty() || starts_with_nocase(type, "text/event-stream"));
}

bool SseHttpStream::on_body(std::string_view bytes) {
    if (out_.finished()) return false;
    out_.count_body_bytes(static_cast<int64_t>(bytes.size()));
    if (streaming_) {
        parser_.feed(bytes);
        if (parser_.overflowed())
            out_.fail(CS_ERR_PROTOCOL, out_.provider() + ": an event line exceeded 16 MiB", head_.status);
        return !out_.finished();
    }
    if (error_body_.size() < kMaxErrorBody)
        error_body_.append(bytes.substr(0, kMaxErrorBody - error_body_.size()));
    return true;
}

void SseHttpStream::on_end(const HttpResult &r) {
    if (out_.finished()) return;
    const std::string &p = out_.provider();
    switch (r.end) {
    case HttpEnd::cancelled: out_.end(CS_STOP_CANCELLED); break;
    case HttpEnd::shutdown: out_.fail(CS_ERR_CONNECTION, p + ": the provider instance is shutting down"); break;
    case HttpEnd::aborted: out_.fail(CS_ERR_INTERNAL, p + ": transfer aborted"); break;
    case HttpEnd::connect_timeout:
        out_.fail(CS_ERR_TIMEOUT, p + ": connect timeout (" + r.message + ")");
        break;
    case HttpEnd::connection_failed:
    case HttpEnd::failed:
        if (r.head_received && !streaming_) {
            // An error status whose body was cut: the status still says what happened.
            protocol_->on_error_response(head_, error_body_, out_);
        } else if (r.head_received) {
            out_.fail(CS_ERR_CONNECTION,
                      p + ": connection closed mid-stream after " + std::to_string(parser_.events()) + " events (" +
                          r.message + ")",
                      head_.status);
        } else {
            out_.fail(CS_ERR_CONNECTION, p + ": connection failed (" + r.message + ")");
        }
        break;
    case HttpEnd::complete:
        if (!r.head_received) {
            out_.fail(CS_ERR_PROTOCOL, p + ": no HTTP response");
        } else if (streaming_) {
            parser_.finish();
            if (!out_.finished()) protocol_->on_eof(out_);
        } else {
            protocol_->on_error_response(head_, error_body_, out_);
        }
        break;
    }
    // Exactly one terminal event, whatever the protocol did.
    if (!out_.finished()) out_.fail(CS_ERR_INTERNAL, p + ": the stream ended without a verdict", head_.status);
}

}  // namespace consilium::providers
