// Metrics in Prometheus text format (GET /metrics). Names carry no health data; labels are
// fixed vocabularies (stop reasons, error codes, plugin ids), never ids of patients.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace consilium::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Kind { counter, gauge, histogram };

class Metric {
public:
    Metric(Kind kind, std::vector<double> buckets);
    Kind kind() const { return kind_; }
    void add(double v);      // counter, gauge
    void set(double v);      // gauge
    void observe(double v);  // histogram
    double value() const { return value_.load(); }
    // Histogram state.
    std::vector<uint64_t> bucket_counts() const;
    const std::vector<double> &buckets() const { return buckets_; }
    uint64_t count() const { return count_.load(); }
    double sum() const { return sum_.load(); }

private:
    Kind kind_;
    std::atomic<double> value_{0};
    std::vector<double> buckets_;
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;
    std::atomic<uint64_t> count_{0};
    std::atomic<double> sum_{0};
};

class Registry {
public:
    // Returns the metric for (name, labels), creating it on first use. All metrics of one name
    // share kind and help. Names get the "consilium_" prefix when rendered.
    Metric &get(Kind kind, std::string_view name, std::string_view help, const Labels &labels = {});
    Metric &counter(std::string_view name, std::string_view help, const Labels &labels = {}) {
        return get(Kind::counter, name, help, labels);
    }
    Metric &gauge(std::string_view name, std::string_view help, const Labels &labels = {}) {
        return get(Kind::gauge, name, help, labels);
    }
    Metric &histogram(std::string_view name, std::string_view help, const Labels &labels = {}) {
        return get(Kind::histogram, name, help, labels);
    }
    std::string render() const;

private:
    struct Family {
        Kind kind;
        std::string help;
        std::map<std::string, std::unique_ptr<Metric>> series;  // rendered labels -> metric
    };
    mutable std::mutex mu_;
    std::map<std::string, Family> families_;
};

// Latency buckets in seconds, from 100 us to 60 s.
const std::vector<double> &default_buckets();

}  // namespace consilium::metrics
