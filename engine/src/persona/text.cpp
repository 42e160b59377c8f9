#include "persona/text.hpp"

#include <algorithm>
#include <unordered_set>

namespace consilium::text {

std::vector<uint32_t> decode_utf8(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        uint32_t cp;
        size_t len;
        if (c < 0x80) {
            cp = c;
            len = 1;
        } else if ((c >> 5) == 6) {
            cp = c & 0x1F;
            len = 2;
        } else if ((c >> 4) == 14) {
            cp = c & 0x0F;
            len = 3;
        } else if ((c >> 3) == 30) {
            cp = c & 0x07;
            len = 4;
        } else {
            out.push_back(0xFFFD);
            ++i;
            continue;
        }
        if (i + len > s.size()) {
            out.push_back(0xFFFD);
            break;
        }
        bool ok = true;
        for (size_t k = 1; k < len; ++k) {
            unsigned char cc = static_cast<unsigned char>(s[i + k]);
            if ((cc >> 6) != 2) {
                ok = false;
                break;
            }
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (!ok) {
            out.push_back(0xFFFD);
            ++i;
            continue;
        }
        out.push_back(cp);
        i += len;
    }
    return out;
}

void append_utf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t len;
        uint32_t min;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c >> 5) == 6) {
            len = 2;
            min = 0x80;
        } else if ((c >> 4) == 14) {
            len = 3;
            min = 0x800;
        } else if ((c >> 3) == 30) {
            len = 4;
            min = 0x10000;
        } else {
            return false;
        }
        if (i + len > s.size()) return false;
        uint32_t cp = c & (0x7F >> len);
        for (size_t k = 1; k < len; ++k) {
            unsigned char cc = static_cast<unsigned char>(s[i + k]);
            if ((cc >> 6) != 2) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

size_t count_code_points(std::string_view s) {
    size_t n = 0;
    for (char c : s)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    return n;
}

namespace {

// Latin-1 and Latin Extended-A folded to ASCII (lowercase); 0 = keep.
const char *latin_fold(uint32_t cp) {
    static const char *const l1[64] = {
        "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",  // C0-CF
        "d", "n", "o", "o", "o", "o", "o", nullptr, "o", "u", "u", "u", "u", "y", "th", "ss",  // D0-DF
        "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",  // E0-EF
        "d", "n", "o", "o", "o", "o", "o", nullptr, "o", "u", "u", "u", "u", "y", "th", "y"};  // F0-FF
    if (cp >= 0xC0 && cp <= 0xFF) return l1[cp - 0xC0];
    if (cp >= 0x100 && cp <= 0x17F) {
        static const char *const ext[128] = {
            "a", "a", "a", "a", "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d",  // 100
            "d", "d", "e", "e", "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g",  // 110
            "g", "g", "g", "g", "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i",  // 120
            "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l", "l", "l", "l",  // 130
            "l", "l", "l", "n", "n", "n", "n", "n", "n", "n", "n", "n", "o", "o", "o", "o",  // 140
            "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r", "s", "s", "s", "s", "s", "s",  // 150
            "s", "s", "t", "t", "t", "t", "t", "t", "u", "u", "u", "u", "u", "u", "u", "u",  // 160
            "u", "u", "u", "u", "w", "w", "y", "y", "y", "z", "z", "z", "z", "z", "z", "s"};  // 170
        return ext[cp - 0x100];
    }
    // Latin Extended Additional (Vietnamese): fold by base letter ranges.
    if (cp >= 0x1EA0 && cp <= 0x1EF9) {
        if (cp <= 0x1EB7) return "a";
        if (cp <= 0x1EC7) return "e";
        if (cp <= 0x1ECB) return "i";
        if (cp <= 0x1EE3) return "o";
        if (cp <= 0x1EF1) return "u";
        return "y";
    }
    if (cp == 0x1A1 || cp == 0x1A0) return "o";
    if (cp == 0x1B0 || cp == 0x1AF) return "u";
    if (cp == 0x219 || cp == 0x218) return "s";  // Romanian s-comma
    if (cp == 0x21B || cp == 0x21A) return "t";
    return nullptr;
}

uint32_t fold_other(uint32_t cp) {
    // Greek capitals and tonos.
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) cp += 0x20;
    switch (cp) {
    case 0x386: return 0x3B1;
    case 0x388: return 0x3B5;
    case 0x389: return 0x3B7;
    case 0x38A: case 0x3AA: return 0x3B9;
    case 0x38C: return 0x3BF;
    case 0x38E: case 0x3AB: return 0x3C5;
    case 0x38F: return 0x3C9;
    case 0x3AC: return 0x3B1;
    case 0x3AD: return 0x3B5;
    case 0x3AE: return 0x3B7;
    case 0x3AF: case 0x3CA: case 0x390: return 0x3B9;
    case 0x3CC: return 0x3BF;
    case 0x3CD: case 0x3CB: case 0x3B0: return 0x3C5;
    case 0x3CE: return 0x3C9;
    case 0x3C2: return 0x3C3;  // final sigma
    default: break;
    }
    // Cyrillic capitals; ё -> е.
    if (cp >= 0x410 && cp <= 0x42F) cp += 0x20;
    else if (cp >= 0x400 && cp <= 0x40F) cp += 0x50;
    if (cp == 0x451) cp = 0x435;
    // Arabic letter variants (Arabic, Persian, Urdu).
    switch (cp) {
    case 0x622: case 0x623: case 0x625: case 0x671: return 0x627;  // alef forms
    case 0x649: case 0x6CC: case 0x6D2: return 0x64A;  // ya forms
    case 0x629: case 0x6C1: case 0x6BE: return 0x647;  // ta marbuta, heh forms
    case 0x6A9: return 0x643;  // keheh -> kaf
    default: break;
    }
    // Native digits.
    if (cp >= 0x660 && cp <= 0x669) return '0' + (cp - 0x660);
    if (cp >= 0x6F0 && cp <= 0x6F9) return '0' + (cp - 0x6F0);
    if (cp >= 0x966 && cp <= 0x96F) return '0' + (cp - 0x966);
    if (cp >= 0x9E6 && cp <= 0x9EF) return '0' + (cp - 0x9E6);
    if (cp >= 0xFF10 && cp <= 0xFF19) return '0' + (cp - 0xFF10);  // fullwidth
    if (cp >= 0xFF21 && cp <= 0xFF3A) return 'a' + (cp - 0xFF21);
    if (cp >= 0xFF41 && cp <= 0xFF5A) return 'a' + (cp - 0xFF41);
    return cp;
}

bool is_dropped_mark(uint32_t cp) {
    return (cp >= 0x64B && cp <= 0x652) || cp == 0x670 || cp == 0x640 ||  // Arabic harakat, tatweel
           (cp >= 0x591 && cp <= 0x5C7 && cp != 0x5BE) ||                   // Hebrew niqqud
           (cp >= 0x300 && cp <= 0x36F) ||                                  // combining diacritics
           cp == 0x200C || cp == 0x200D || cp == 0x200E || cp == 0x200F ||  // ZWNJ, ZWJ, marks
           cp == 0xFE0F;
}

bool is_apostrophe(uint32_t cp) { return cp == '\'' || cp == 0x2019 || cp == 0x2018 || cp == 0x2BC; }

bool is_unspaced(uint32_t cp) {
    return (cp >= 0x3040 && cp <= 0x30FF) ||  // kana
           (cp >= 0x3400 && cp <= 0x9FFF) ||  // Han
           (cp >= 0xF900 && cp <= 0xFAFF) ||  // compatibility ideographs
           (cp >= 0x0E00 && cp <= 0x0EFF) ||  // Thai, Lao
           (cp >= 0x1780 && cp <= 0x17FF) ||  // Khmer
           (cp >= 0x1000 && cp <= 0x109F);    // Myanmar
}

bool is_word_char(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    if (cp >= 0x80 && cp <= 0xBF) return cp == 0xAA || cp == 0xB5 || cp == 0xBA;  // Latin-1 symbols
    if (cp == 0xD7 || cp == 0xF7) return false;
    if (cp >= 0x2000 && cp <= 0x2BFF) return false;  // punctuation, symbols, arrows
    if (cp >= 0x3000 && cp <= 0x303F) return false;  // CJK punctuation
    if (cp >= 0xFF00 && cp <= 0xFF0F) return false;
    if (cp >= 0xFF1A && cp <= 0xFF20) return false;
    if (cp >= 0xFE30 && cp <= 0xFE4F) return false;
    if (cp >= 0x1F000) return false;  // emoji
    switch (cp) {
    case 0x60C: case 0x61B: case 0x61F: case 0x6D4: case 0x66A: case 0x66B: case 0x66C:  // Arabic punct
    case 0x964: case 0x965:  // danda
    case 0x5BE: case 0x5C0: case 0x5C3: case 0x5F3: case 0x5F4:  // Hebrew punct
    case 0x37E: case 0x387:  // Greek punct
    case 0x55D: case 0x589:
        return false;
    default: return true;
    }
}

}  // namespace

std::vector<Token> tokenize(std::string_view utf8) {
    std::vector<Token> out;
    std::string cur;
    bool cur_unspaced = false;
    bool pending_break = false;
    auto flush = [&] {
        if (!cur.empty()) {
            out.push_back({cur, cur_unspaced, pending_break});
            pending_break = false;
        }
        cur.clear();
    };
    auto cps = decode_utf8(utf8);
    for (size_t i = 0; i < cps.size(); ++i) {
        uint32_t cp = cps[i];
        if (is_dropped_mark(cp)) continue;
        if (is_apostrophe(cp)) continue;  // "can't" -> "cant"
        if (cp >= 'A' && cp <= 'Z') cp += 32;
        if (cp == 0x130) cp = 'i';  // Turkish dotted capital I
        if (const char *f = latin_fold(cp)) {
            if (cur_unspaced) flush();
            cur_unspaced = false;
            cur += f;
            continue;
        }
        cp = fold_other(cp);
        if (!is_word_char(cp)) {
            flush();
            if (cp == '.' || cp == ',' || cp == ';' || cp == ':' || cp == '!' || cp == '?' || cp == 0x060C ||
                cp == 0x061B || cp == 0x061F || cp == 0x06D4 || cp == 0x3002 || cp == 0xFF0C || cp == 0x0964 ||
                cp == '\n')
                pending_break = true;
            continue;
        }
        bool u = is_unspaced(cp);
        if (!cur.empty() && u != cur_unspaced) flush();
        cur_unspaced = u;
        append_utf8(cur, cp);
    }
    flush();
    return out;
}

std::string normalize(std::string_view utf8) {
    std::string out;
    for (const auto &t : tokenize(utf8)) {
        if (!out.empty()) out += ' ';
        out += t.text;
    }
    return out;
}

bool is_stopword(std::string_view t) {
    static const std::unordered_set<std::string_view> stop = {
        "a", "an", "the", "and", "or", "but", "i", "im", "ive", "id", "me", "my", "mine", "we", "our",
        "you", "your", "he", "she", "his", "her", "it", "its", "they", "them", "their", "is", "am",
        "are", "was", "were", "be", "been", "being", "do", "does", "did", "have", "has", "had", "of",
        "to", "in", "on", "at", "for", "with", "from", "by", "about", "as", "so", "if", "then", "than",
        "that", "this", "these", "those", "what", "which", "who", "whom", "how", "when", "where",
        "why", "can", "could", "should", "would", "will", "just", "also", "very", "really", "some",
        "any", "all", "there", "here", "up", "out", "into", "over", "again", "too", "get", "got",
        "bit", "lot", "like", "know", "think", "thing", "things", "want", "need", "please", "hi",
        "hello", "thanks", "thank", "ok", "okay", "yes", "well", "still", "now", "one", "much",
        "more", "most", "other", "after", "before", "since", "ago", "day", "days", "week", "weeks",
        "month", "months", "year", "years", "time", "times", "today", "yesterday", "last", "few",
        "doctor", "doc", "help", "anyone", "someone", "something", "anything", "normal", "worried",
        "worry", "should", "is", "it", "going", "go", "been", "feel", "feeling", "feels", "see"};
    return stop.count(t) > 0;
}

std::string stem(std::string_view t) {
    std::string s(t);
    bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (!ascii || s.size() <= 3) return s;
    auto ends = [&](std::string_view suf) {
        return s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (ends("ies") && s.size() > 4) return s.substr(0, s.size() - 3) + "y";
    if (ends("sses")) return s.substr(0, s.size() - 2);
    if (ends("ing") && s.size() > 5) {
        s.resize(s.size() - 3);
        if (s.size() >= 2 && s[s.size() - 1] == s[s.size() - 2] && s.back() != 'l' && s.back() != 's')
            s.pop_back();  // "running" -> "run"
        return s;
    }
    if (ends("ed") && s.size() > 4) {
        s.resize(s.size() - 2);
        if (s.size() >= 2 && s[s.size() - 1] == s[s.size() - 2] && s.back() != 'l' && s.back() != 's')
            s.pop_back();
        return s;
    }
    if (ends("s") && !ends("ss") && !ends("us") && !ends("is") && s.size() > 3) return s.substr(0, s.size() - 1);
    return s;
}

std::vector<std::string> features(const std::vector<Token> &tokens) {
    std::vector<std::string> out;
    out.reserve(tokens.size() * 3);
    std::string prev;
    for (const auto &tok : tokens) {
        if (tok.unspaced) {
            auto cps = decode_utf8(tok.text);
            for (size_t i = 0; i < cps.size(); ++i) {
                std::string uni = "c:";
                append_utf8(uni, cps[i]);
                out.push_back(uni);
                if (i + 1 < cps.size()) {
                    std::string bi = "b:";
                    append_utf8(bi, cps[i]);
                    append_utf8(bi, cps[i + 1]);
                    out.push_back(bi);
                }
            }
            prev.clear();
            continue;
        }
        if (is_stopword(tok.text)) {
            prev.clear();
            continue;
        }
        std::string st = stem(tok.text);
        out.push_back("w:" + st);
        size_t n = count_code_points(tok.text);
        if (n >= 7) {
            // First five code points: a cheap stem for inflected languages.
            auto cps = decode_utf8(tok.text);
            std::string p = "p:";
            for (size_t i = 0; i < 5; ++i) append_utf8(p, cps[i]);
            out.push_back(p);
        }
        if (!prev.empty()) out.push_back("ww:" + prev + "_" + st);
        prev = st;
    }
    return out;
}

}  // namespace consilium::text
