// providers/common/sse_parser.hpp: an incremental Server-Sent Events parser (the WHATWG
// "event stream interpretation"): `event:`, `data:`, `id:`, `retry:` fields, comment lines
// starting with ':', CRLF / LF / CR line ends, multi-line data joined with "\n", events split
// across arbitrary chunk boundaries, and a UTF-8 BOM at stream start.
//
// One deliberate leniency: at end of input, finish() also dispatches an event whose final blank
// line never came (several recorded SDK fixtures end that way). A cut-off JSON payload is then
// still caught by the JSON parser of the protocol above.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace consilium::providers {

struct SseEvent {
    std::string type = "message";  // the `event:` field, "message" when absent
    std::string data;              // `data:` lines joined with "\n"
    std::string id;                // the last event id seen so far
};

// LIFETIME: one per response body; feed() and finish() from one thread.
class SseParser {
public:
    // Returns false to stop: the parser then ignores all further input.
    using Callback = std::function<bool(const SseEvent &)>;

    explicit SseParser(Callback on_event, size_t max_line_bytes = 16u << 20)
        : on_event_(std::move(on_event)), max_line_(max_line_bytes) {}

    // Parses bytes; dispatches each event completed by them. Returns false once stopped (by the
    // callback, or because a line or one event's data exceeded max_line_bytes: overflowed()).
    bool feed(std::string_view bytes);
    // End of input: completes a pending line and dispatches a pending event (see above).
    bool finish();

    bool stopped() const { return stopped_; }
    bool overflowed() const { return overflowed_; }
    // The last `retry:` value in ms, or -1.
    int64_t retry_ms() const { return retry_ms_; }
    size_t events() const { return events_; }

private:
    void line(std::string_view l);
    void dispatch();

    Callback on_event_;
    size_t max_line_;
    std::string buf_;        // the current, unterminated line
    std::string type_;       // event type buffer
    std::string data_;       // data buffer
    bool has_data_ = false;  // at least one data: line
    std::string last_id_;
    int64_t retry_ms_ = -1;
    size_t bom_seen_ = 0;    // BOM bytes matched at stream start (0..3)
    bool bom_done_ = false;
    bool after_cr_ = false;  // the previous byte ended a line with CR: skip a following LF
    bool stopped_ = false;
    bool overflowed_ = false;
    size_t events_ = 0;
};

}  // namespace consilium::providers
