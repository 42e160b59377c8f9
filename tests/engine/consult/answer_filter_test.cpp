#include "consult/answer_filter.hpp"

#include <gtest/gtest.h>

namespace consilium {
namespace {

std::string feed_all(AnswerFilter &f, const std::vector<std::string> &deltas) {
    std::string out;
    for (const auto &d : deltas) out += f.feed(d);
    out += f.flush();
    return out;
}

TEST(AnswerFilter, StripsTheFollowUpBlockEvenWhenTheMarkerIsSplit) {
    AnswerFilter f;
    std::string shown = feed_all(f, {"Rest and fluids [1]. See a doctor ", "if it persists [2].\n\n[[fol", "low-",
                                     "ups]]\n- How long will it last?\n2. Should I take ibuprofen?\n\n"});
    EXPECT_EQ(shown, "Rest and fluids [1]. See a doctor if it persists [2].");
    EXPECT_EQ(f.answer(), shown);
    auto fu = f.follow_ups();
    ASSERT_EQ(fu.size(), 2u);
    EXPECT_EQ(fu[0], "How long will it last?");
    EXPECT_EQ(fu[1], "Should I take ibuprofen?");
}

TEST(AnswerFilter, ReleasesTextThatOnlyLooksLikeTheMarkerStart) {
    AnswerFilter f;
    std::string shown = feed_all(f, {"see [", "1] and [[not a marker]] ok"});
    EXPECT_EQ(shown, "see [1] and [[not a marker]] ok");
    EXPECT_TRUE(f.follow_ups().empty());
}

TEST(AnswerFilter, NeverSplitsUtf8) {
    AnswerFilter f;
    std::string out;
    std::string s = "douleur à l'épaule [";
    for (char c : s) out += f.feed(std::string(1, c));
    out += f.flush();
    EXPECT_EQ(out, s);
}

TEST(AnswerFilter, CitationsAreTheSourcesActuallyCited) {
    AnswerFilter f;
    feed_all(f, {"A [2], B [1], again [2], out of range [9], not [x]."});
    std::vector<Source> sources = {{"NHS", "https://www.nhs.uk/a"}, {"CDC", "https://www.cdc.gov/b"}};
    auto c = f.citations(sources, nlohmann::json::array({{{"title", "doc"}, {"cited_text", "q"}}}));
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0]["n"], 2);
    EXPECT_EQ(c[0]["url"], "https://www.cdc.gov/b");
    EXPECT_EQ(c[1]["n"], 1);
    EXPECT_EQ(c[2]["title"], "doc");
}

TEST(AnswerFilter, ResetStartsOver) {
    AnswerFilter f;
    f.feed("partial answer");
    f.reset();
    EXPECT_EQ(feed_all(f, {"new"}), "new");
    EXPECT_EQ(f.answer(), "new");
}

}  // namespace
}  // namespace consilium
