// Static files of the web app: which requests they answer, how a request target maps to a file
// under the static directory (no way out of it), and MIME types. Beast-free.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace consilium::beast_transport {

// Whether a GET or HEAD of this path (no query) is for the static files: everything but the API
// (/v1 and below) and the health endpoints.
bool is_static_path(std::string_view path);

// The path part of a request target: up to '?' or '#'.
std::string_view target_path(std::string_view target);

// The Content-Type for a file name, by extension; "application/octet-stream" when unknown.
std::string_view mime_type(std::string_view file_name);

struct StaticLookup {
    enum class Kind { file, not_found, bad_request };
    Kind kind = Kind::not_found;
    std::filesystem::path file;  // Kind::file: canonical path of a regular file inside the root
    bool fallback = false;       // served index.html in place of a missing page (single-page app)
};

// Maps request targets to files under one directory.
//  - "/" and directories serve their index.html.
//  - A missing path whose last segment has no extension serves the root's index.html (the web
//    app routes it); a missing file with an extension is not found.
//  - Refused (bad_request): anything that is not a clean absolute path once percent-decoded:
//    "." or ".." segments (encoded or not), empty segments ("//etc"), NUL or backslash, bad
//    escapes. Not found: hidden files (a segment starting with '.'), and anything whose real
//    path (symlinks resolved) lies outside the root.
class StaticFiles {
public:
    // root must be an absolute, canonical directory path (plugin.cpp makes it so).
    explicit StaticFiles(std::filesystem::path root);
    StaticLookup resolve(std::string_view target) const;
    const std::filesystem::path &root() const { return root_; }

private:
    StaticLookup file_if_inside(const std::filesystem::path &candidate) const;

    std::filesystem::path root_;
    std::string root_prefix_;  // root_ + '/'
};

}  // namespace consilium::beast_transport
