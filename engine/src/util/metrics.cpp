#include "util/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace consilium::metrics {
namespace {

void atomic_add(std::atomic<double> &a, double v) {
    double cur = a.load(std::memory_order_relaxed);
    while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
}

std::string render_labels(const Labels &labels) {
    if (labels.empty()) return {};
    std::string s = "{";
    bool first = true;
    for (const auto &[k, v] : labels) {
        if (!first) s += ',';
        first = false;
        s += k;
        s += "=\"";
        for (char c : v) {
            if (c == '\\' || c == '"') s += '\\';
            if (c == '\n') {
                s += "\\n";
                continue;
            }
            s += c;
        }
        s += '"';
    }
    s += '}';
    return s;
}

std::string fmt(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// Inserts an extra label into rendered labels: {a="b"} + le -> {a="b",le="x"}.
std::string with_label(const std::string &rendered, const std::string &k, const std::string &v) {
    std::string extra = k + "=\"" + v + "\"";
    if (rendered.empty()) return "{" + extra + "}";
    return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

const std::vector<double> &default_buckets() {
    static const std::vector<double> b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
                                       30,     60};
    return b;
}

Metric::Metric(Kind kind, std::vector<double> buckets) : kind_(kind), buckets_(std::move(buckets)) {
    if (kind_ == Kind::histogram) {
        counts_ = std::make_unique<std::atomic<uint64_t>[]>(buckets_.size());
        for (size_t i = 0; i < buckets_.size(); ++i) counts_[i] = 0;
    }
}

void Metric::add(double v) { atomic_add(value_, v); }
void Metric::set(double v) { value_.store(v); }
void Metric::observe(double v) {
    if (kind_ != Kind::histogram) return;
    for (size_t i = 0; i < buckets_.size(); ++i)
        if (v <= buckets_[i]) counts_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    atomic_add(sum_, v);
}
std::vector<uint64_t> Metric::bucket_counts() const {
    std::vector<uint64_t> out(buckets_.size());
    for (size_t i = 0; i < buckets_.size(); ++i) out[i] = counts_[i].load();
    return out;
}

Metric &Registry::get(Kind kind, std::string_view name, std::string_view help, const Labels &labels) {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = families_.try_emplace(std::string(name));
    Family &fam = it->second;
    if (inserted) {
        fam.kind = kind;
        fam.help = std::string(help);
    } else if (fam.kind != kind) {
        throw std::logic_error("metric " + std::string(name) + " registered with two kinds");
    }
    std::string key = render_labels(labels);
    auto s = fam.series.find(key);
    if (s == fam.series.end()) {
        s = fam.series
                .emplace(key, std::make_unique<Metric>(kind, kind == Kind::histogram
                                                                 ? default_buckets()
                                                                 : std::vector<double>{}))
                .first;
    }
    return *s->second;
}

std::string Registry::render() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto &[name, fam] : families_) {
        std::string full = "consilium_" + name;
        const char *type = fam.kind == Kind::counter ? "counter"
                           : fam.kind == Kind::gauge ? "gauge"
                                                     : "histogram";
        out += "# HELP " + full + " " + fam.help + "\n";
        out += "# TYPE " + full + " " + type + "\n";
        for (const auto &[labels, m] : fam.series) {
            if (fam.kind != Kind::histogram) {
                out += full + labels + " " + fmt(m->value()) + "\n";
                continue;
            }
            auto counts = m->bucket_counts();
            for (size_t i = 0; i < counts.size(); ++i)
                out += full + "_bucket" + with_label(labels, "le", fmt(m->buckets()[i])) + " " +
                       std::to_string(counts[i]) + "\n";
            out += full + "_bucket" + with_label(labels, "le", "+Inf") + " " +
                   std::to_string(m->count()) + "\n";
            out += full + "_sum" + labels + " " + fmt(m->sum()) + "\n";
            out += full + "_count" + labels + " " + std::to_string(m->count()) + "\n";
        }
    }
    return out;
}

}  // namespace consilium::metrics
