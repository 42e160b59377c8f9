// Locales (locales/<tag>.yaml): text direction, emergency numbers and the emergency message,
// UI strings and persona display names per language. Lookups fall back from "pt-BR" to "pt" to
// "en".
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace consilium {

struct EmergencyNumber {
    std::string number;
    std::string label;
};

struct Locale {
    std::string tag;
    std::string name;         // English name
    std::string native_name;
    std::string direction = "ltr";
    std::vector<EmergencyNumber> emergency_numbers;
    std::string emergency_message;  // shown with every emergency frame
    std::string refusal_message;    // shown when a model declines
    nlohmann::json strings = nlohmann::json::object();
    nlohmann::json personas = nlohmann::json::object();  // id -> {name, title}
};

class LocaleCatalog {
public:
    // Loads every <tag>.yaml in dir. Problems are returned as "FILE:LINE:COL: message".
    static LocaleCatalog load(const std::filesystem::path &dir, std::vector<std::string> &problems);
    // The best locale for a tag ("pt-BR" -> "pt-BR", "pt", then "en"); never null once "en" exists.
    const Locale *find(const std::string &tag) const;
    std::vector<std::string> tags() const;
    bool empty() const { return locales_.empty(); }

private:
    std::map<std::string, Locale> locales_;
};

}  // namespace consilium
