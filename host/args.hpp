// Command-line arguments: flags (--name VALUE or --name=VALUE), repeated flags and positionals.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace consilium::host {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::vector<std::string>> flags;  // name without "--" -> values

    // `valued`: flags that take a value; `switches`: flags that do not. Others are refused.
    static Args parse(const std::vector<std::string> &argv, const std::set<std::string> &valued,
                      const std::set<std::string> &switches = {});
    std::optional<std::string> get(const std::string &name) const;
    std::vector<std::string> all(const std::string &name) const;
    bool has(const std::string &name) const { return flags.count(name) > 0; }
};

}  // namespace consilium::host
