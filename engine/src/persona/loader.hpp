// Loading and validating the panel. Every problem is a Diagnostic with FILE:LINE:COL, so
// `consilium persona lint` and a failed hot reload say exactly where an author went wrong.
#pragma once

#include "persona/persona.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace consilium {

struct Diagnostic {
    std::string file;
    int line = 0;    // 1-based; 0 = whole file
    int column = 0;  // 1-based
    std::string message;
    bool error = true;  // false: a warning
    std::string format() const;  // "FILE:LINE:COL: error: message"
};

struct LoadResult {
    std::shared_ptr<Panel> panel;    // null when there were errors
    std::shared_ptr<Panel> partial;  // the personas that did load, indexed (for lint's deeper checks)
    std::vector<Diagnostic> diagnostics;
    bool ok() const { return panel != nullptr; }
    size_t errors() const;
};

struct LoadOptions {
    // Checks a Lua chunk's syntax; returns "" or "LINE: message". Set by the Lua runtime.
    std::string (*check_lua)(const std::string &source, const std::string &chunkname) = nullptr;
    bool require_coordinator = true;
};

LoadResult load_panel(const std::filesystem::path &dir, const LoadOptions &options = {});

}  // namespace consilium
