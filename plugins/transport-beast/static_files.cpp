// Static files of the web app: target to file mapping without traversal, and MIME types.
#include "static_files.hpp"

#include <array>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace consilium::beast_transport {

namespace fs = std::filesystem;

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes a path; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return std::nullopt;
        int hi = hex_value(in[i + 1]);
        int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

bool has_extension(std::string_view segment) {
    return segment.find('.') != std::string_view::npos;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string_view target_path(std::string_view target) {
    size_t end = target.find_first_of("?#");
    return end == std::string_view::npos ? target : target.substr(0, end);
}

bool is_static_path(std::string_view path) {
    if (path == "/v1" || starts_with(path, "/v1/")) return false;
    return path != "/healthz" && path != "/readyz" && path != "/metrics";
}

std::string_view mime_type(std::string_view file_name) {
    size_t dot = file_name.rfind('.');
    if (dot == std::string_view::npos) return "application/octet-stream";
    std::string ext(file_name.substr(dot + 1));
    for (auto &c : ext)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 31> types{{
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"webmanifest", "application/manifest+json"},
        {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"ico", "image/x-icon"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"ttf", "font/ttf"},
        {"otf", "font/otf"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
        {"mp3", "audio/mpeg"},
        {"wav", "audio/wav"},
        {"ogg", "audio/ogg"},
        {"mp4", "video/mp4"},
        {"webm", "video/webm"},
        {"zip", "application/zip"},
    }};
    for (const auto &[e, type] : types)
        if (e == ext) return type;
    return "application/octet-stream";
}

StaticFiles::StaticFiles(fs::path root) : root_(std::move(root)), root_prefix_(root_.string()) {
    if (root_prefix_.empty() || root_prefix_.back() != '/') root_prefix_.push_back('/');
}

StaticLookup StaticFiles::file_if_inside(const fs::path &candidate) const {
    std::error_code ec;
    fs::path real = fs::canonical(candidate, ec);
    if (ec) return {};
    if (!starts_with(real.string(), root_prefix_)) return {};  // a symlink out of the root
    if (!fs::is_regular_file(real, ec)) return {};
    StaticLookup out;
    out.kind = StaticLookup::Kind::file;
    out.file = std::move(real);
    return out;
}

StaticLookup StaticFiles::resolve(std::string_view target) const {
    StaticLookup bad;
    bad.kind = StaticLookup::Kind::bad_request;

    std::string_view raw = target_path(target);
    if (raw.empty() || raw.front() != '/') return bad;
    auto decoded = percent_decode(raw);
    if (!decoded) return bad;
    const std::string &path = *decoded;

    // Split into segments; only the last may be empty (a trailing slash).
    std::vector<std::string_view> segments;
    std::string_view rest = std::string_view(path).substr(1);
    for (;;) {
        size_t slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        bool last = slash == std::string_view::npos;
        if (seg.empty() && !last) return bad;
        if (seg == "." || seg == "..") return bad;
        if (seg.find('\0') != std::string_view::npos || seg.find('\\') != std::string_view::npos)
            return bad;
        if (!seg.empty()) {
            if (seg.front() == '.') return {};  // hidden files are never served
            segments.push_back(seg);
        }
        if (last) break;
        rest = rest.substr(slash + 1);
    }

    fs::path candidate = root_;
    for (auto seg : segments) candidate /= fs::path(std::string(seg));

    std::error_code ec;
    if (segments.empty() || fs::is_directory(candidate, ec)) return file_if_inside(candidate / "index.html");
    if (fs::exists(candidate, ec)) return file_if_inside(candidate);
    if (!has_extension(segments.back())) {
        StaticLookup index = file_if_inside(root_ / "index.html");
        index.fallback = index.kind == StaticLookup::Kind::file;
        return index;
    }
    return {};
}

}  // namespace consilium::beast_transport
