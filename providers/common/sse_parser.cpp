// providers/common/sse_parser.cpp: see sse_parser.hpp.
#include "sse_parser.hpp"

namespace consilium::providers {

namespace {
constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};
}

bool SseParser::feed(std::string_view bytes) {
    size_t i = 0;
    // A BOM may itself arrive split across chunks.
    while (!bom_done_ && i < bytes.size()) {
        if (static_cast<unsigned char>(bytes[i]) == kBom[bom_seen_]) {
            ++bom_seen_;
            ++i;
            if (bom_seen_ == 3) bom_done_ = true;
        } else {
            // Not a BOM: whatever prefix matched was data after all.
            bom_done_ = true;
            for (size_t k = 0; k < bom_seen_; ++k) buf_.push_back(static_cast<char>(kBom[k]));
        }
    }
    while (i < bytes.size() && !stopped_) {
        char c = bytes[i];
        if (after_cr_) {
            after_cr_ = false;
            if (c == '\n') {
                ++i;
                continue;
            }
        }
        // Copy the run up to the next line end in one go.
        size_t j = i;
        while (j < bytes.size() && bytes[j] != '\n' && bytes[j] != '\r') ++j;
        if (buf_.size() + (j - i) > max_line_) {
            overflowed_ = stopped_ = true;
            return false;
        }
        if (j == bytes.size()) {
            buf_.append(bytes.data() + i, j - i);
            break;
        }
        if (buf_.empty()) {
            line(bytes.substr(i, j - i));
        } else {
            buf_.append(bytes.data() + i, j - i);
            std::string l;
            l.swap(buf_);
            line(l);
        }
        after_cr_ = bytes[j] == '\r';
        i = j + 1;
    }
    return !stopped_;
}

bool SseParser::finish() {
    if (stopped_) return false;
    if (!bom_done_) {
        bom_done_ = true;
        for (size_t k = 0; k < bom_seen_; ++k) buf_.push_back(static_cast<char>(kBom[k]));
    }
    if (!buf_.empty()) {
        std::string l;
        l.swap(buf_);
        line(l);
    }
    if (!stopped_ && has_data_) dispatch();
    return !stopped_;
}

void SseParser::line(std::string_view l) {
    if (stopped_) return;
    if (l.empty()) {
        dispatch();
        return;
    }
    if (l.front() == ':') return;  // comment
    std::string_view field = l, value;
    auto colon = l.find(':');
    if (colon != std::string_view::npos) {
        field = l.substr(0, colon);
        value = l.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
        if (has_data_) data_.push_back('\n');
        data_.append(value);
        has_data_ = true;
        if (data_.size() > max_line_) overflowed_ = stopped_ = true;  // one event, unbounded
    } else if (field == "event") {
        type_.assign(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
    } else if (field == "retry") {
        bool digits = !value.empty() && value.size() < 16;
        for (char c : value) digits = digits && c >= '0' && c <= '9';
        if (digits) retry_ms_ = std::stoll(std::string(value));
    }
    // Any other field is ignored.
}

void SseParser::dispatch() {
    if (!has_data_) {
        type_.clear();  // an event without data is not dispatched
        return;
    }
    SseEvent ev;
    ev.type = type_.empty() ? "message" : type_;
    ev.data.swap(data_);
    ev.id = last_id_;
    type_.clear();
    data_.clear();
    has_data_ = false;
    ++events_;
    if (!on_event_(ev)) stopped_ = true;
}

}  // namespace consilium::providers
