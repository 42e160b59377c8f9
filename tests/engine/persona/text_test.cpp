#include "persona/patterns.hpp"
#include "persona/text.hpp"

#include <gtest/gtest.h>

namespace consilium {
namespace {

TEST(Text, FoldsCaseAccentsAndApostrophes) {
    EXPECT_EQ(text::normalize("Can't BREATHE, Mañana: Ça va? Ğüş"), "cant breathe manana ca va gus");
    EXPECT_EQ(text::normalize("ÖSOPHAGUS Übelkeit straße"), "osophagus ubelkeit strasse");
    EXPECT_EQ(text::normalize("Ёлка БОЛЬ"), "елка боль");
    EXPECT_EQ(text::normalize("Άσθμα ΠΟΝΟΣ πόνος"), "ασθμα πονοσ πονοσ");  // final sigma folds too
}

TEST(Text, ArabicHebrewAndDigits) {
    // Harakat dropped, alef forms unified, Arabic-Indic digits to ASCII.
    EXPECT_EQ(text::normalize("أَلَمٌ ١٨٠"), "الم 180");
    EXPECT_EQ(text::normalize("שָׁלוֹם"), "שלום");
    EXPECT_EQ(text::normalize("बुखार १०२"), "बुखार 102");
}

TEST(Text, UnspacedScriptsBecomeCharacterFeatures) {
    auto toks = text::tokenize("我头疼, fever");
    ASSERT_EQ(toks.size(), 2u);
    EXPECT_TRUE(toks[0].unspaced);
    EXPECT_FALSE(toks[1].unspaced);
    auto f = text::features(toks);
    EXPECT_NE(std::find(f.begin(), f.end(), "b:头疼"), f.end());
    EXPECT_NE(std::find(f.begin(), f.end(), "w:fever"), f.end());
}

TEST(Text, StemsAndPrefixes) {
    EXPECT_EQ(text::stem("allergies"), "allergy");
    EXPECT_EQ(text::stem("running"), "run");
    EXPECT_EQ(text::stem("swollen"), "swollen");
    EXPECT_EQ(text::stem("rashes"), "rashe");
    auto f = text::features(text::tokenize("dolores abdominales"));
    EXPECT_NE(std::find(f.begin(), f.end(), "p:abdom"), f.end());
}

TEST(Text, Utf8Validation) {
    EXPECT_TRUE(text::valid_utf8("héllo 🙂"));
    EXPECT_FALSE(text::valid_utf8("\xff"));
    EXPECT_FALSE(text::valid_utf8("\xc0\xaf"));        // overlong
    EXPECT_FALSE(text::valid_utf8("\xed\xa0\x80"));    // surrogate
    EXPECT_EQ(text::count_code_points("héllo"), 5u);
}

TEST(Patterns, AllGroupsMustMatchWithPrefixesAndPhrases) {
    Pattern p({"chest", "crushing|squeezing|tight*"});
    auto m = [&](const char *s) {
        PreparedText t(s);
        return p.matches(t);
    };
    EXPECT_TRUE(m("Crushing pain in my CHEST"));
    EXPECT_TRUE(m("my chest feels tighter and tighter"));
    EXPECT_FALSE(m("crushing headache"));
    EXPECT_FALSE(m("chest infection"));
    Pattern phrase({"can t breathe|cannot breathe|cant breathe"});
    PreparedText t("I can't breathe properly");
    EXPECT_TRUE(phrase.matches(t));
    Pattern zh({"胸痛|胸口痛"});
    PreparedText z("我胸口痛得厉害");
    EXPECT_TRUE(zh.matches(z));
    EXPECT_THROW(Pattern({"  |  "}), std::invalid_argument);
}

TEST(Patterns, DenialsKeepTermsOutOfReachUpToAClauseBreak) {
    Pattern heart({"chest pain|chest", "faint*|sweat*"});
    auto m = [&](const Pattern &p, const char *s) { return p.matches(PreparedText(s)); };
    EXPECT_FALSE(m(heart, "palpitations after coffee, no chest pain or fainting"));
    EXPECT_FALSE(m(heart, "I have chest pain without sweating or fainting"));
    EXPECT_TRUE(m(heart, "no fever. chest pain and I am sweating"));
    EXPECT_TRUE(m(heart, "no idea why but chest pain and fainting"));
    EXPECT_TRUE(m(heart, "chest pain with sweating, no history of heart disease"));
    // "not" and "can't" carry emergencies; denial phrases are matched as written.
    Pattern breathing({"baby", "not breathing|breathing"});
    EXPECT_TRUE(m(breathing, "the baby is not breathing"));
    Pattern reason({"no reason to live"});
    EXPECT_TRUE(m(reason, "there is no reason to live anymore"));
}

TEST(PatternIndex, FindsTheSameMatchesAsCheckingEveryPattern) {
    std::vector<Pattern> patterns = {Pattern({"chest", "crush*|tight*"}), Pattern({"bleed*", "won t stop|wont stop"}),
                                     Pattern({"can t breathe|cannot breathe"}), Pattern({"胸痛"}),
                                     Pattern({"lips|face", "blue"})};
    PatternIndex index;
    for (uint32_t i = 0; i < patterns.size(); ++i) index.add(&patterns[i], i * 10);
    const char *texts[] = {"my chest is tight", "bleeding that wont stop", "I can't breathe", "我胸痛", "lips are blue",
                           "tight chest and blue lips, bleeding won't stop", "nothing here", "chest infection"};
    for (const char *t : texts) {
        PreparedText p(t);
        std::vector<uint32_t> expected;
        for (uint32_t i = 0; i < patterns.size(); ++i)
            if (patterns[i].matches(p)) expected.push_back(i * 10);
        EXPECT_EQ(index.match(p), expected) << t;
    }
}

}  // namespace
}  // namespace consilium
