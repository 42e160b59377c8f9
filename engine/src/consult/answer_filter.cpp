#include "consult/answer_filter.hpp"

#include "persona/text.hpp"

#include <algorithm>
#include <cstring>
#include <set>

namespace consilium {

using json = nlohmann::json;

namespace {

// Never split a UTF-8 sequence when releasing text.
size_t utf8_safe_cut(const std::string &s, size_t cut) {
    while (cut > 0 && cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return cut;
}

}  // namespace

std::string AnswerFilter::feed(std::string_view delta) {
    if (in_tail_) {
        tail_.append(delta);
        return {};
    }
    pending_.append(delta);
    const std::string marker = kFollowUpMarker;
    auto pos = pending_.find(marker);
    if (pos != std::string::npos) {
        std::string out = pending_.substr(0, pos);
        // Trailing whitespace before the marker is not part of the answer.
        while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) out.pop_back();
        tail_ = pending_.substr(pos + marker.size());
        pending_.clear();
        in_tail_ = true;
        shown_ += out;
        return out;
    }
    // Hold back the longest suffix that is a prefix of the marker (and whitespace before it).
    size_t keep = 0;
    for (size_t k = std::min(marker.size() - 1, pending_.size()); k > 0; --k) {
        if (pending_.compare(pending_.size() - k, k, marker, 0, k) == 0) {
            keep = k;
            break;
        }
    }
    size_t cut = pending_.size() - keep;
    while (cut > 0 && (pending_[cut - 1] == '\n' || pending_[cut - 1] == ' ' || pending_[cut - 1] == '\r') && keep > 0) --cut;
    cut = utf8_safe_cut(pending_, cut);
    std::string out = pending_.substr(0, cut);
    pending_.erase(0, cut);
    shown_ += out;
    return out;
}

std::string AnswerFilter::flush() {
    if (in_tail_) return {};
    std::string out;
    out.swap(pending_);
    shown_ += out;
    return out;
}

void AnswerFilter::reset() {
    pending_.clear();
    shown_.clear();
    tail_.clear();
    in_tail_ = false;
}

std::vector<std::string> AnswerFilter::follow_ups(size_t max) const {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= tail_.size() && out.size() < max) {
        size_t nl = tail_.find('\n', start);
        std::string line = tail_.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        start = nl == std::string::npos ? tail_.size() + 1 : nl + 1;
        // Strip list markers and whitespace.
        size_t b = 0;
        while (b < line.size() && (std::strchr(" \t\r-*•", line[b]) || std::isdigit(static_cast<unsigned char>(line[b])) ||
                                   (b > 0 && (line[b] == '.' || line[b] == ')') && std::isdigit(static_cast<unsigned char>(line[b - 1])))))
            ++b;
        size_t e = line.size();
        while (e > b && std::strchr(" \t\r", line[e - 1])) --e;
        std::string item = line.substr(b, e - b);
        if (item.size() >= 3 && text::valid_utf8(item)) out.push_back(item);
    }
    return out;
}

json AnswerFilter::citations(const std::vector<Source> &sources, const json &provider_citations) const {
    json out = json::array();
    std::set<size_t> seen;
    const std::string &a = shown_;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] != '[') continue;
        size_t j = i + 1;
        size_t n = 0;
        while (j < a.size() && j < i + 4 && std::isdigit(static_cast<unsigned char>(a[j]))) n = n * 10 + static_cast<size_t>(a[j++] - '0');
        if (j == i + 1 || j >= a.size() || a[j] != ']') continue;
        if (n >= 1 && n <= sources.size() && seen.insert(n).second)
            out.push_back({{"n", n}, {"title", sources[n - 1].title}, {"url", sources[n - 1].url}});
    }
    if (provider_citations.is_array())
        for (const auto &c : provider_citations) out.push_back(c);
    return out;
}

}  // namespace consilium
