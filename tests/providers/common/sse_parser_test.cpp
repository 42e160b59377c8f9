// The SSE parser of providers/common: every recorded stream gives the same events however its
// bytes are split, with LF, CRLF or CR line ends and with a BOM; and the fine print of the
// format (comments, multi-line data, id, retry, fields without a value, events without data).
#include "sse_parser.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace consilium::providers {
namespace {

namespace fs = std::filesystem;

struct Got {
    std::string type, data, id;
    bool operator==(const Got &o) const { return type == o.type && data == o.data && id == o.id; }
};

std::vector<Got> parse_chunks(const std::vector<std::string_view> &chunks, bool finish = true) {
    std::vector<Got> out;
    SseParser p([&](const SseEvent &e) {
        out.push_back({e.type, e.data, e.id});
        return true;
    });
    for (auto c : chunks) p.feed(c);
    if (finish) p.finish();
    return out;
}

std::vector<Got> parse_all(std::string_view s) { return parse_chunks({s}); }

std::string read(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<fs::path> recorded_streams() {
    std::vector<fs::path> out;
    fs::path root = fs::path(CONSILIUM_TEST_SHARED_DIR) / "protocols";
    for (const char *sub : {"anthropic", "openai_chat"})
        for (const auto &e : fs::recursive_directory_iterator(root / sub))
            if (e.is_regular_file() && e.path().extension() == ".sse") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

std::string with_line_ends(const std::string &lf, const std::string &eol) {
    std::string out;
    for (char c : lf) {
        if (c == '\n') out += eol;
        else out += c;
    }
    return out;
}

TEST(SseParser, FindsTheRecordings) { EXPECT_GE(recorded_streams().size(), 20u); }

TEST(SseParser, RecordedStreamsParseIntoTheirEvents) {
    for (const auto &path : recorded_streams()) {
        SCOPED_TRACE(path.string());
        std::string bytes = read(path);
        auto events = parse_all(bytes);
        // One event per data: line in these recordings (single-line JSON payloads).
        size_t data_lines = 0;
        std::istringstream lines(bytes);
        for (std::string l; std::getline(lines, l);)
            if (l.rfind("data:", 0) == 0) ++data_lines;
        EXPECT_EQ(events.size(), data_lines);
        bool anthropic = path.string().find("/anthropic/") != std::string::npos;
        for (const auto &e : events) {
            if (anthropic) {
                EXPECT_NE(e.type, "message");
                EXPECT_NE(e.data.find("\"type\""), std::string::npos);
            } else {
                EXPECT_EQ(e.type, "message");
            }
            EXPECT_FALSE(e.data.empty());
            EXPECT_NE(e.data.back(), '\n');
        }
    }
}

TEST(SseParser, EverySplitPointGivesTheSameEvents) {
    for (const auto &path : recorded_streams()) {
        SCOPED_TRACE(path.string());
        std::string bytes = read(path);
        auto whole = parse_all(bytes);
        for (size_t cut = 0; cut <= bytes.size(); ++cut) {
            std::string_view v(bytes);
            auto split = parse_chunks({v.substr(0, cut), v.substr(cut)});
            ASSERT_EQ(split, whole) << "split at byte " << cut;
        }
    }
}

TEST(SseParser, ByteByByteAndOtherLineEndsGiveTheSameEvents) {
    for (const auto &path : recorded_streams()) {
        SCOPED_TRACE(path.string());
        std::string bytes = read(path);
        auto whole = parse_all(bytes);
        std::vector<std::string_view> singles;
        for (size_t i = 0; i < bytes.size(); ++i) singles.push_back(std::string_view(bytes).substr(i, 1));
        EXPECT_EQ(parse_chunks(singles), whole);
        for (const char *eol : {"\r\n", "\r"}) {
            std::string converted = with_line_ends(bytes, eol);
            EXPECT_EQ(parse_all(converted), whole) << "line end " << (eol[1] ? "CRLF" : "CR");
            // CR then LF in separate chunks must not make an extra blank line.
            for (size_t cut = 0; cut <= converted.size(); cut += 7) {
                std::string_view v(converted);
                ASSERT_EQ(parse_chunks({v.substr(0, cut), v.substr(cut)}), whole) << "split at " << cut;
            }
        }
    }
}

TEST(SseParser, ABomAtStreamStartIsSkippedEvenWhenSplit) {
    std::string s = "\xEF\xBB\xBF" "data: {\"a\":1}\n\n";
    for (size_t cut = 0; cut <= 4; ++cut) {
        std::string_view v(s);
        auto got = parse_chunks({v.substr(0, cut), v.substr(cut)});
        ASSERT_EQ(got.size(), 1u) << cut;
        EXPECT_EQ(got[0].data, "{\"a\":1}");
    }
    // A BOM later in the stream is data, and a lone 0xEF is not eaten.
    auto got = parse_all("data: x\n\n\xEF\xBB\xBF" "data: y\n\n");
    ASSERT_EQ(got.size(), 1u);  // the second "field" is named "\xEF\xBB\xBF" "data": ignored
    EXPECT_EQ(parse_all("\xEF" "data: z\n\n").size(), 0u);
}

TEST(SseParser, CommentsMultiLineDataIdAndRetry) {
    std::vector<Got> out;
    SseParser p([&](const SseEvent &e) {
        out.push_back({e.type, e.data, e.id});
        return true;
    });
    p.feed(": this is a comment\n"
           "retry: 2500\n"
           "id: 7\n"
           "event: update\n"
           "data: first\n"
           "data:second\n"
           "data\n"
           "unknown: field\n"
           "\n"
           "data: after\n\n");
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].type, "update");
    EXPECT_EQ(out[0].data, "first\nsecond\n");
    EXPECT_EQ(out[0].id, "7");
    EXPECT_EQ(out[1].type, "message") << "the event type resets after each event";
    EXPECT_EQ(out[1].id, "7") << "the last event id persists";
    EXPECT_EQ(p.retry_ms(), 2500);
    p.feed("retry: soon\n\n");
    EXPECT_EQ(p.retry_ms(), 2500) << "a non-numeric retry is ignored";
}

TEST(SseParser, EventsWithoutDataAreNotDispatched) {
    auto got = parse_all("event: ping\n\nevent: x\ndata:\n\n");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].type, "x");
    EXPECT_EQ(got[0].data, "");
}

TEST(SseParser, OnlyOneLeadingSpaceIsRemoved) {
    auto got = parse_all("data:  two spaces\n\n");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, " two spaces");
}

TEST(SseParser, FinishDispatchesAnEventWithoutItsBlankLine) {
    EXPECT_EQ(parse_chunks({"data: {\"type\":\"message_stop\"}"}, false).size(), 0u);
    auto got = parse_chunks({"data: {\"type\":\"message_stop\"}"}, true);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, "{\"type\":\"message_stop\"}");
    EXPECT_EQ(parse_chunks({"data: a\n"}, true).size(), 1u);
    EXPECT_EQ(parse_chunks({"event: only\n"}, true).size(), 0u);
}

TEST(SseParser, TheCallbackCanStopParsing) {
    int n = 0;
    SseParser p([&](const SseEvent &) { return ++n < 2; });
    EXPECT_FALSE(p.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n"));
    EXPECT_EQ(n, 2);
    EXPECT_TRUE(p.stopped());
    EXPECT_FALSE(p.feed("data: 4\n\n"));
    EXPECT_EQ(n, 2);
}

TEST(SseParser, AnOverlongLineStopsTheParser) {
    SseParser p([](const SseEvent &) { return true; }, 64);
    EXPECT_TRUE(p.feed("data: " + std::string(40, 'x')));
    EXPECT_FALSE(p.feed(std::string(40, 'y')));
    EXPECT_TRUE(p.overflowed());
    // Many short data lines that never end their event are bounded too.
    SseParser q([](const SseEvent &) { return true; }, 64);
    for (int i = 0; i < 20 && !q.stopped(); ++i) q.feed("data: 0123456789\n");
    EXPECT_TRUE(q.overflowed());
}

}  // namespace
}  // namespace consilium::providers
