#include "persona/index.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace consilium {

namespace {
constexpr double kScopeWeight = 0.5;
constexpr double kK1 = 1.2;
constexpr double kB = 0.5;
}  // namespace

void TextIndex::add_example(uint32_t persona, std::string_view text) {
    auto f = text::features(text::tokenize(text));
    for (const auto &x : f) docs_[persona].tf[x] += 1;
    docs_[persona].length += static_cast<double>(f.size());
    examples_.push_back({persona, std::move(f)});
}

void TextIndex::add_scope(uint32_t persona, std::string_view text) {
    auto f = text::features(text::tokenize(text));
    for (const auto &x : f) docs_[persona].tf[x] += kScopeWeight;
    docs_[persona].length += kScopeWeight * static_cast<double>(f.size());
}

void TextIndex::add_keyword(uint32_t persona, std::string_view keyword) {
    auto toks = text::tokenize(keyword);
    if (toks.empty()) return;
    Keyword k;
    k.persona = persona;
    k.display = text::normalize(keyword);
    bool unspaced = std::all_of(toks.begin(), toks.end(), [](const text::Token &t) { return t.unspaced; });
    if (unspaced) {
        k.substring = k.display;
    } else {
        for (const auto &t : toks) k.words.push_back(text::stem(t.text));
    }
    keywords_.push_back(std::move(k));
    // Keywords also count as (short) example text.
    auto f = text::features(toks);
    for (const auto &x : f) docs_[persona].tf[x] += 1;
    docs_[persona].length += static_cast<double>(f.size());
}

void TextIndex::finalize() {
    const double n = static_cast<double>(std::max<size_t>(docs_.size(), 1));
    std::unordered_map<std::string, int> df;
    double total = 0;
    for (const auto &d : docs_) {
        total += d.length;
        for (const auto &[f, c] : d.tf) df[f] += 1;
    }
    avg_length_ = docs_.empty() ? 1 : std::max(1.0, total / n);
    for (const auto &[f, c] : df) idf_[f] = std::log(1 + (n - c + 0.5) / (c + 0.5));

    postings_.clear();
    for (uint32_t p = 0; p < docs_.size(); ++p) {
        const Doc &d = docs_[p];
        double norm = kK1 * (1 - kB + kB * d.length / avg_length_);
        for (const auto &[f, tf] : d.tf) postings_[f].emplace_back(p, idf_[f] * tf * (kK1 + 1) / (tf + norm));
    }

    // Per-example TF-IDF vectors, L2-normalised, for nearest-example similarity.
    example_postings_.clear();
    for (uint32_t e = 0; e < examples_.size(); ++e) {
        std::unordered_map<std::string, double> v;
        for (const auto &f : examples_[e].features) v[f] += 1;
        double norm = 0;
        for (auto &[f, w] : v) {
            w = (1 + std::log(w)) * idf_[f];
            norm += w * w;
        }
        norm = std::sqrt(norm);
        if (norm <= 0) continue;
        for (const auto &[f, w] : v) example_postings_[f].emplace_back(e, w / norm);
    }

    // Keyword weights: rarer across personas weighs more.
    std::unordered_map<std::string, std::unordered_set<uint32_t>> owners;
    for (const auto &k : keywords_) {
        std::string key = k.substring.empty() ? "" : k.substring;
        for (const auto &w : k.words) key += w + " ";
        owners[key].insert(k.persona);
    }
    keyword_by_first_.clear();
    unspaced_keywords_.clear();
    for (uint32_t i = 0; i < keywords_.size(); ++i) {
        Keyword &k = keywords_[i];
        std::string key = k.substring.empty() ? "" : k.substring;
        for (const auto &w : k.words) key += w + " ";
        double owners_n = static_cast<double>(owners[key].size());
        double length_bonus = 1.0 + 0.5 * static_cast<double>(std::max<size_t>(k.words.size(), 1) - 1);
        if (!k.substring.empty()) length_bonus = 1.0 + 0.25 * static_cast<double>(text::count_code_points(k.substring) - 1);
        k.weight = std::log(1 + n / owners_n) * length_bonus;
        if (k.substring.empty()) keyword_by_first_[k.words[0]].push_back(i);
        else unspaced_keywords_.push_back(i);
    }
}

std::vector<IndexHit> TextIndex::search(std::string_view query) const {
    auto tokens = text::tokenize(query);
    auto feats = text::features(tokens);
    std::unordered_map<uint32_t, IndexHit> hits;
    auto hit = [&](uint32_t p) -> IndexHit & {
        auto [it, inserted] = hits.try_emplace(p);
        if (inserted) it->second.persona = p;
        return it->second;
    };

    // BM25 of the query against each persona's document; each distinct feature counts once.
    std::unordered_set<std::string> seen;
    std::unordered_map<std::string, double> qv;
    for (const auto &f : feats) {
        qv[f] += 1;
        if (!seen.insert(f).second) continue;
        auto it = postings_.find(f);
        if (it == postings_.end()) continue;
        for (const auto &[p, w] : it->second) hit(p).examples += w;
    }

    // Nearest example by cosine similarity.
    double qnorm = 0;
    for (auto &[f, w] : qv) {
        auto idf = idf_.find(f);
        w = idf == idf_.end() ? 0 : (1 + std::log(w)) * idf->second;
        qnorm += w * w;
    }
    qnorm = std::sqrt(qnorm);
    if (qnorm > 0) {
        std::unordered_map<uint32_t, double> dots;
        for (const auto &[f, w] : qv) {
            if (w <= 0) continue;
            auto it = example_postings_.find(f);
            if (it == example_postings_.end()) continue;
            for (const auto &[e, ew] : it->second) dots[e] += w * ew;
        }
        for (const auto &[e, dot] : dots) {
            IndexHit &h = hit(examples_[e].persona);
            h.nearest = std::max(h.nearest, dot / qnorm);
        }
    }

    // Keywords: whole-word phrase matches on stemmed tokens, substrings for unspaced scripts.
    std::vector<std::string> stems;
    stems.reserve(tokens.size());
    for (const auto &t : tokens) stems.push_back(t.unspaced ? t.text : text::stem(t.text));
    std::unordered_set<uint32_t> found;
    for (size_t i = 0; i < stems.size(); ++i) {
        auto it = keyword_by_first_.find(stems[i]);
        if (it == keyword_by_first_.end()) continue;
        for (uint32_t ki : it->second) {
            const Keyword &k = keywords_[ki];
            if (i + k.words.size() > stems.size()) continue;
            bool ok = true;
            for (size_t j = 1; j < k.words.size() && ok; ++j) ok = stems[i + j] == k.words[j];
            if (ok) found.insert(ki);
        }
    }
    if (!unspaced_keywords_.empty()) {
        std::string norm = text::normalize(query);
        for (uint32_t ki : unspaced_keywords_)
            if (norm.find(keywords_[ki].substring) != std::string::npos) found.insert(ki);
    }
    for (uint32_t ki : found) {
        const Keyword &k = keywords_[ki];
        IndexHit &h = hit(k.persona);
        h.keywords += k.weight;
        h.matched.push_back(k.display);
    }

    std::vector<IndexHit> out;
    out.reserve(hits.size());
    for (auto &[p, h] : hits) out.push_back(std::move(h));
    return out;
}

}  // namespace consilium
