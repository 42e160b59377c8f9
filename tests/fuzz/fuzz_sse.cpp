// Fuzzes the SSE parser (providers/common/sse_parser.hpp) differentially: the same stream fed in
// one piece, byte by byte, and in chunks chosen by the input must give exactly the same events
// (type, data, id), retry value, and stop/overflow state, through finish().
//
// Input layout: byte 0 picks the largest chunk (1..64) and, in its high bit, whether the callback
// stops after some event; byte 1 seeds the chunk sizes; byte 2 picks a small max_line_bytes
// (1..64) for a second round that reaches the overflow paths. The rest is the stream.
#include "sse_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

using consilium::providers::SseEvent;
using consilium::providers::SseParser;

void check(bool ok, const char *what) {
    if (ok) return;
    std::fprintf(stderr, "fuzz_sse: invariant violated: %s\n", what);
    __builtin_trap();
}

struct Outcome {
    std::vector<SseEvent> events;
    int64_t retry_ms = -1;
    bool finished = false;  // finish()'s result
    bool stopped = false;
    bool overflowed = false;
    size_t counted = 0;  // events()
};

bool same(const Outcome &a, const Outcome &b) {
    if (a.events.size() != b.events.size()) return false;
    for (size_t i = 0; i < a.events.size(); ++i) {
        const auto &x = a.events[i], &y = b.events[i];
        if (x.type != y.type || x.data != y.data || x.id != y.id) return false;
    }
    return a.retry_ms == b.retry_ms && a.finished == b.finished && a.stopped == b.stopped &&
           a.overflowed == b.overflowed && a.counted == b.counted;
}

// chunks: the sizes to feed, cycled; 0 feeds an empty chunk (which must change nothing).
Outcome run(std::string_view stream, size_t max_line, size_t stop_after, const std::vector<size_t> &chunks) {
    Outcome o;
    SseParser p(
        [&](const SseEvent &ev) {
            o.events.push_back(ev);
            return stop_after == 0 || o.events.size() < stop_after;
        },
        max_line);
    size_t pos = 0, k = 0;
    bool fed = true;
    while (pos < stream.size()) {
        size_t n = chunks.empty() ? stream.size() : chunks[k++ % chunks.size()];
        if (n > stream.size() - pos) n = stream.size() - pos;
        bool r = p.feed(stream.substr(pos, n));
        check(r == !p.stopped(), "feed() returns false exactly when stopped");
        check(fed || !r, "once stopped, feed() stays stopped");
        fed = r;
        pos += n;
    }
    o.finished = p.finish();
    o.retry_ms = p.retry_ms();
    o.stopped = p.stopped();
    o.overflowed = p.overflowed();
    o.counted = p.events();
    check(o.finished == !o.stopped, "finish() returns false exactly when stopped");
    check(o.counted == o.events.size(), "events() counts the dispatched events");
    for (const auto &ev : o.events) {
        check(!ev.type.empty(), "an event has a type");
        check(ev.type.find_first_of("\r\n") == std::string::npos, "a type holds no line end");
        check(ev.id.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos, "an id holds no line end or NUL");
        check(ev.data.find('\r') == std::string::npos, "data holds no CR");
        check(ev.data.size() <= max_line, "data within max_line_bytes");
    }
    if (stop_after != 0 && !o.overflowed) check(o.events.size() <= stop_after, "the callback's stop is honoured");
    return o;
}

void differential(std::string_view stream, size_t max_line, size_t stop_after, const std::vector<size_t> &chunks) {
    const Outcome whole = run(stream, max_line, stop_after, {});
    check(same(whole, run(stream, max_line, stop_after, {1})), "byte by byte == one piece");
    check(same(whole, run(stream, max_line, stop_after, chunks)), "chosen chunks == one piece");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const size_t max_chunk = (data[0] & 0x3F) + 1;
    const size_t stop_after = (data[0] & 0x80) ? (data[1] & 7) + 1 : 0;
    const size_t small_line = (data[2] & 0x3F) + 1;
    const std::string_view stream(reinterpret_cast<const char *>(data) + 3, size - 3);

    // Chunk sizes from a small xorshift seeded by byte 1: 0 (an empty feed) to max_chunk.
    std::vector<size_t> chunks;
    uint32_t x = 0x9E3779B9u ^ (uint32_t{data[1]} << 8 | data[0]);
    for (int i = 0; i < 61; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        chunks.push_back(x % (max_chunk + 1));
    }
    chunks.push_back(1);  // never a cycle of empty chunks only

    differential(stream, 16u << 20, stop_after, chunks);
    differential(stream, small_line, stop_after, chunks);
    return 0;
}
