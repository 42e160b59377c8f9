#include "util/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <nlohmann/json.hpp>

namespace consilium::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<bool> g_json{false};
std::atomic<Sink> g_sink{nullptr};
std::mutex g_mu;

const char *level_name(Level l) {
    switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    }
    return "info";
}

std::string timestamp() {
    using namespace std::chrono;
    auto now = system_clock::now();
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::time_t t = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
    return false;
}

}  // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }
bool parse_level(std::string_view t, Level &out) {
    if (t == "debug") out = Level::debug;
    else if (t == "info") out = Level::info;
    else if (t == "warn") out = Level::warn;
    else if (t == "error") out = Level::error;
    else return false;
    return true;
}
void set_format(std::string_view f) { g_json = (f == "json"); }
void set_sink(Sink s) { g_sink = s; }

void write(Level l, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields) {
    if (l < g_level.load()) return;
    std::string line;
    if (g_json) {
        nlohmann::json j;
        j["ts"] = timestamp();
        j["level"] = level_name(l);
        j["component"] = component;
        j["msg"] = message;
        for (const auto &f : fields) j[std::string(f.key)] = f.value;
        line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
        line.reserve(96);
        line += timestamp();
        line += ' ';
        line += level_name(l);
        line += " [";
        line += component;
        line += "] ";
        line += message;
        for (const auto &f : fields) {
            line += ' ';
            line += f.key;
            line += '=';
            if (needs_quotes(f.value)) {
                line += nlohmann::json(f.value).dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace);
            } else {
                line += f.value;
            }
        }
    }
    line += '\n';
    Sink sink = g_sink.load();
    std::lock_guard<std::mutex> lock(g_mu);
    if (sink) {
        sink(line);
    } else {
        std::fwrite(line.data(), 1, line.size(), stderr);
    }
}

}  // namespace consilium::log
