#include "args.hpp"

namespace consilium::host {

Args Args::parse(const std::vector<std::string> &argv, const std::set<std::string> &valued,
                 const std::set<std::string> &switches) {
    Args a;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string &s = argv[i];
        if (s.size() > 2 && s.compare(0, 2, "--") == 0) {
            std::string name = s.substr(2), value;
            auto eq = name.find('=');
            bool has_value = eq != std::string::npos;
            if (has_value) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            if (switches.count(name)) {
                if (has_value) throw UsageError("--" + name + " takes no value");
                a.flags[name].push_back("");
                continue;
            }
            if (!valued.count(name)) throw UsageError("unknown option --" + name);
            if (!has_value) {
                if (i + 1 >= argv.size()) throw UsageError("--" + name + " needs a value");
                value = argv[++i];
            }
            a.flags[name].push_back(value);
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

std::optional<std::string> Args::get(const std::string &name) const {
    auto it = flags.find(name);
    if (it == flags.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
}

std::vector<std::string> Args::all(const std::string &name) const {
    auto it = flags.find(name);
    return it == flags.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace consilium::host
