// Logging without health data. Messages name ids, codes and counts only: never message text,
// names, e-mails or profile details (tests/integration/no_phi_test.cpp checks whole runs).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace consilium::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// A key=value field. Values are printed as given: pass ids and numbers, not content.
struct Field {
    std::string_view key;
    std::string value;
    Field(std::string_view k, std::string_view v) : key(k), value(v) {}
    Field(std::string_view k, const std::string &v) : key(k), value(v) {}
    Field(std::string_view k, const char *v) : key(k), value(v ? v : "") {}
    template <class N, class = std::enable_if_t<std::is_arithmetic_v<N>>>
    Field(std::string_view k, N n) : key(k), value(std::to_string(n)) {}
};

void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level &out);
// Format: "text" (human) or "json" (one object a line).
void set_format(std::string_view format);

// Where lines go; stderr by default. Tests capture them to search for PHI.
using Sink = void (*)(std::string_view line);
void set_sink(Sink sink);

void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields = {});

inline void debug(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
    if (level() <= Level::debug) write(Level::debug, c, m, f);
}
inline void info(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
    write(Level::info, c, m, f);
}
inline void warn(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
    write(Level::warn, c, m, f);
}
inline void error(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
    write(Level::error, c, m, f);
}

}  // namespace consilium::log
