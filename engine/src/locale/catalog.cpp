#include "locale/catalog.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

namespace consilium {

namespace {

nlohmann::json to_json(const YAML::Node &n) {
    switch (n.Type()) {
    case YAML::NodeType::Scalar: return n.Scalar();
    case YAML::NodeType::Sequence: {
        nlohmann::json a = nlohmann::json::array();
        for (const auto &i : n) a.push_back(to_json(i));
        return a;
    }
    case YAML::NodeType::Map: {
        nlohmann::json o = nlohmann::json::object();
        for (const auto &kv : n) o[kv.first.Scalar()] = to_json(kv.second);
        return o;
    }
    default: return nullptr;
    }
}

std::string lower(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

LocaleCatalog LocaleCatalog::load(const std::filesystem::path &dir, std::vector<std::string> &problems) {
    LocaleCatalog cat;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        problems.push_back(dir.string() + ": not a directory of locales");
        return cat;
    }
    std::vector<std::filesystem::path> files;
    for (const auto &e : std::filesystem::directory_iterator(dir, ec))
        if (e.path().extension() == ".yaml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto &f : files) {
        YAML::Node doc;
        try {
            doc = YAML::LoadFile(f.string());
        } catch (const YAML::Exception &e) {
            problems.push_back(f.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                               std::to_string(e.mark.column + 1) + ": " + e.msg);
            continue;
        }
        auto where = [&](const YAML::Node &n) {
            return f.string() + ":" + std::to_string(n.Mark().line + 1) + ":" + std::to_string(n.Mark().column + 1);
        };
        if (!doc.IsMap()) {
            problems.push_back(f.string() + ": a locale file is a mapping");
            continue;
        }
        Locale l;
        l.tag = f.stem().string();
        if (doc["tag"] && doc["tag"].Scalar() != l.tag)
            problems.push_back(where(doc["tag"]) + ": tag '" + doc["tag"].Scalar() + "' does not match the file name");
        l.name = doc["name"] ? doc["name"].Scalar() : l.tag;
        l.native_name = doc["native_name"] ? doc["native_name"].Scalar() : l.name;
        l.direction = doc["direction"] ? doc["direction"].Scalar() : "ltr";
        if (l.direction != "ltr" && l.direction != "rtl")
            problems.push_back(where(doc["direction"]) + ": direction must be ltr or rtl");
        if (YAML::Node e = doc["emergency"]) {
            if (e["message"]) l.emergency_message = e["message"].Scalar();
            if (YAML::Node nums = e["numbers"]) {
                for (const auto &n : nums) {
                    if (!n.IsMap() || !n["number"]) {
                        problems.push_back(where(n) + ": an emergency number is {number, label}");
                        continue;
                    }
                    l.emergency_numbers.push_back({n["number"].Scalar(), n["label"] ? n["label"].Scalar() : ""});
                }
            }
        }
        if (doc["refusal_message"]) l.refusal_message = doc["refusal_message"].Scalar();
        if (doc["strings"]) l.strings = to_json(doc["strings"]);
        if (doc["personas"]) l.personas = to_json(doc["personas"]);
        if (l.emergency_numbers.empty()) problems.push_back(f.string() + ": no emergency numbers");
        if (l.emergency_message.empty()) problems.push_back(f.string() + ": no emergency message");
        cat.locales_[lower(l.tag)] = std::move(l);
    }
    return cat;
}

const Locale *LocaleCatalog::find(const std::string &tag) const {
    std::string t = lower(tag);
    for (;;) {
        auto it = locales_.find(t);
        if (it != locales_.end()) return &it->second;
        auto dash = t.rfind('-');
        if (dash == std::string::npos) break;
        t.resize(dash);
    }
    auto en = locales_.find("en");
    return en == locales_.end() ? nullptr : &en->second;
}

std::vector<std::string> LocaleCatalog::tags() const {
    std::vector<std::string> out;
    for (const auto &[k, v] : locales_) out.push_back(v.tag);
    return out;
}

}  // namespace consilium
