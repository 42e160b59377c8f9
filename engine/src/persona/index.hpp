// The routing index built at load from every persona's examples, keywords and scope. A search
// returns raw signals per persona; personas/coordinator.lua combines them into the decision, so
// the scoring stays visible and editable by authors.
#pragma once

#include "persona/text.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace consilium {

struct IndexHit {
    uint32_t persona = 0;      // index into the panel
    double keywords = 0;       // sum of IDF weights of the keywords found in the text
    double examples = 0;       // BM25 of the text against all the persona's examples and scope
    double nearest = 0;        // best cosine similarity to one of its examples (0..1)
    std::vector<std::string> matched;  // keywords found (normalised)
    std::vector<double> matched_weights;  // the weight each of them added to `keywords`
};

class TextIndex {
public:
    explicit TextIndex(size_t personas = 0) : docs_(personas) {}

    void add_example(uint32_t persona, std::string_view text);
    void add_scope(uint32_t persona, std::string_view text);
    void add_keyword(uint32_t persona, std::string_view keyword);
    // Computes weights; call once after adding everything.
    void finalize();

    // Every persona with a non-zero signal, unordered.
    std::vector<IndexHit> search(std::string_view text) const;

    size_t persona_count() const { return docs_.size(); }

private:
    struct Doc {
        std::unordered_map<std::string, double> tf;  // feature -> weighted count (examples + scope)
        double length = 0;
    };
    struct Example {
        uint32_t persona;
        std::vector<std::string> features;
    };
    struct Keyword {
        uint32_t persona;
        std::vector<std::string> words;  // normalised tokens
        std::string substring;           // for unspaced scripts
        std::string display;
        double weight = 0;
    };

    std::vector<Doc> docs_;
    std::vector<Example> examples_;
    std::vector<Keyword> keywords_;
    std::unordered_set<std::string> keyword_seen_;  // "persona:normalised keyword"
    // Built by finalize(): features get dense ids; everything after the lookup is arrays.
    std::unordered_map<std::string, uint32_t> feature_id_;
    std::vector<double> idf_;                                               // by feature id
    std::vector<std::vector<std::pair<uint32_t, float>>> postings_;         // feature -> (persona, bm25 part)
    std::vector<std::vector<std::pair<uint32_t, float>>> example_postings_; // feature -> (example, weight)
    std::unordered_map<std::string, std::vector<uint32_t>> keyword_by_first_;  // first word -> keywords
    std::vector<uint32_t> unspaced_keywords_;
    double avg_length_ = 1;
};

}  // namespace consilium
