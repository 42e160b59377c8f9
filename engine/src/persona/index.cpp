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
    // The same term listed in several languages (or twice) counts once.
    if (!keyword_seen_.insert(std::to_string(persona) + ":" + k.display).second) return;
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
    // Dense ids for every feature, with their document frequency.
    std::vector<int> df;
    auto id_of = [&](const std::string &f) {
        auto [it, inserted] = feature_id_.try_emplace(f, static_cast<uint32_t>(df.size()));
        if (inserted) df.push_back(0);
        return it->second;
    };
    double total = 0;
    for (const auto &d : docs_) {
        total += d.length;
        for (const auto &[f, c] : d.tf) df[id_of(f)] += 1;
    }
    avg_length_ = docs_.empty() ? 1 : std::max(1.0, total / n);
    idf_.assign(df.size(), 0);
    for (size_t i = 0; i < df.size(); ++i) idf_[i] = std::log(1 + (n - df[i] + 0.5) / (df[i] + 0.5));

    postings_.assign(df.size(), {});
    for (uint32_t p = 0; p < docs_.size(); ++p) {
        const Doc &d = docs_[p];
        double norm = kK1 * (1 - kB + kB * d.length / avg_length_);
        for (const auto &[f, tf] : d.tf) {
            uint32_t id = feature_id_.at(f);
            postings_[id].emplace_back(p, static_cast<float>(idf_[id] * tf * (kK1 + 1) / (tf + norm)));
        }
    }

    // Per-example TF-IDF vectors, L2-normalised, for nearest-example similarity.
    example_postings_.assign(df.size(), {});
    for (uint32_t e = 0; e < examples_.size(); ++e) {
        std::unordered_map<uint32_t, double> v;
        for (const auto &f : examples_[e].features) v[feature_id_.at(f)] += 1;
        double norm = 0;
        for (auto &[f, w] : v) {
            w = (1 + std::log(w)) * idf_[f];
            norm += w * w;
        }
        norm = std::sqrt(norm);
        if (norm <= 0) continue;
        for (const auto &[f, w] : v) example_postings_[f].emplace_back(e, static_cast<float>(w / norm));
        examples_[e].features.clear();
        examples_[e].features.shrink_to_fit();
    }

    // Keyword weights: rarer across personas weighs more.
    std::unordered_map<std::string, std::unordered_set<uint32_t>> owners;
    auto key_of = [](const Keyword &k) {
        std::string key = k.substring;
        for (const auto &w : k.words) key += w + " ";
        return key;
    };
    for (const auto &k : keywords_) owners[key_of(k)].insert(k.persona);
    keyword_by_first_.clear();
    unspaced_keywords_.clear();
    for (uint32_t i = 0; i < keywords_.size(); ++i) {
        Keyword &k = keywords_[i];
        double owners_n = static_cast<double>(owners[key_of(k)].size());
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
    const size_t personas = docs_.size();
    std::vector<double> examples(personas, 0), nearest(personas, 0), keywords(personas, 0);
    std::vector<std::vector<std::string>> matched(personas);
    std::vector<std::vector<double>> matched_weights(personas);

    // Query features as ids, with their counts.
    std::vector<std::pair<uint32_t, double>> q;
    q.reserve(feats.size());
    for (const auto &f : feats) {
        auto it = feature_id_.find(f);
        if (it == feature_id_.end()) continue;
        q.emplace_back(it->second, 1.0);
    }
    std::sort(q.begin(), q.end());
    size_t w = 0;
    for (size_t i = 0; i < q.size(); ++i) {
        if (w > 0 && q[w - 1].first == q[i].first) q[w - 1].second += 1;
        else q[w++] = q[i];
    }
    q.resize(w);

    // BM25 of the query against each persona's document; each distinct feature counts once.
    for (const auto &[f, c] : q)
        for (const auto &[p, weight] : postings_[f]) examples[p] += static_cast<double>(weight);

    // Nearest example by cosine similarity.
    double qnorm = 0;
    for (auto &[f, c] : q) {
        c = (1 + std::log(c)) * idf_[f];
        qnorm += c * c;
    }
    qnorm = std::sqrt(qnorm);
    if (qnorm > 0) {
        std::vector<float> dots(examples_.size(), 0.0f);
        for (const auto &[f, c] : q) {
            if (c <= 0) continue;
            float cf = static_cast<float>(c);
            for (const auto &[e, ew] : example_postings_[f]) dots[e] += cf * ew;
        }
        for (uint32_t e = 0; e < dots.size(); ++e) {
            if (dots[e] <= 0) continue;
            double sim = static_cast<double>(dots[e]) / qnorm;
            uint32_t p = examples_[e].persona;
            if (sim > nearest[p]) nearest[p] = sim;
        }
    }

    // Keywords: whole-word phrase matches on stemmed tokens, substrings for unspaced scripts.
    std::vector<std::string> stems;
    stems.reserve(tokens.size());
    for (const auto &t : tokens) stems.push_back(t.unspaced ? t.text : text::stem(t.text));
    std::vector<uint32_t> found;
    for (size_t i = 0; i < stems.size(); ++i) {
        auto it = keyword_by_first_.find(stems[i]);
        if (it == keyword_by_first_.end()) continue;
        for (uint32_t ki : it->second) {
            const Keyword &k = keywords_[ki];
            if (i + k.words.size() > stems.size()) continue;
            bool ok = true;
            for (size_t j = 1; j < k.words.size() && ok; ++j) ok = stems[i + j] == k.words[j];
            if (ok) found.push_back(ki);
        }
    }
    if (!unspaced_keywords_.empty()) {
        std::string norm = text::normalize(query);
        for (uint32_t ki : unspaced_keywords_)
            if (norm.find(keywords_[ki].substring) != std::string::npos) found.push_back(ki);
    }
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    for (uint32_t ki : found) {
        const Keyword &k = keywords_[ki];
        keywords[k.persona] += k.weight;
        matched[k.persona].push_back(k.display);
        matched_weights[k.persona].push_back(k.weight);
    }

    std::vector<IndexHit> out;
    for (uint32_t p = 0; p < personas; ++p) {
        if (examples[p] <= 0 && nearest[p] <= 0 && keywords[p] <= 0) continue;
        out.push_back({p, keywords[p], examples[p], nearest[p], std::move(matched[p]), std::move(matched_weights[p])});
    }
    return out;
}

}  // namespace consilium
