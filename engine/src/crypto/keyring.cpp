#include "crypto/keyring.hpp"

#include "util/ids.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace consilium {

const std::string *KeyRing::key(const std::string &id) const {
    auto it = keys_.find(id);
    return it == keys_.end() ? nullptr : &it->second;
}

KeyRing KeyRing::parse(const std::string &text, const std::string &source) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw KeyError(source + ": not a key file (expected JSON {\"current\", \"keys\"})");
    KeyRing ring;
    if (!j.contains("current") || !j["current"].is_string())
        throw KeyError(source + ": `current` key id missing");
    if (!j.contains("keys") || !j["keys"].is_object() || j["keys"].empty())
        throw KeyError(source + ": `keys` missing or empty");
    for (auto it = j["keys"].begin(); it != j["keys"].end(); ++it) {
        if (!it->is_string()) throw KeyError(source + ": key " + it.key() + " is not a base64 string");
        auto raw = base64_decode(it->get<std::string>());
        if (!raw || raw->size() != kKeyBytes)
            throw KeyError(source + ": key " + it.key() + " must be 32 bytes in base64");
        ring.keys_[it.key()] = *raw;
    }
    ring.current_ = j["current"];
    if (!ring.keys_.count(ring.current_))
        throw KeyError(source + ": current key '" + ring.current_ + "' is not among the keys");
    if (j.contains("prefix") && j["prefix"].is_string()) ring.prefix_ = j["prefix"];
    return ring;
}

KeyRing KeyRing::generate(const std::string &prefix) {
    KeyRing ring;
    ring.prefix_ = prefix;
    ring.rotate();
    return ring;
}

std::string KeyRing::rotate() {
    std::string id;
    for (int n = static_cast<int>(keys_.size()) + 1;; ++n) {
        id = prefix_ + std::to_string(n);
        if (!keys_.count(id)) break;
    }
    keys_[id] = random_bytes(kKeyBytes);
    current_ = id;
    return id;
}

std::string KeyRing::to_json() const {
    nlohmann::json j;
    j["current"] = current_;
    j["prefix"] = prefix_;
    j["keys"] = nlohmann::json::object();
    for (const auto &[id, k] : keys_) j["keys"][id] = base64_encode(k);
    return j.dump(2) + "\n";
}

void KeyRing::save(const std::filesystem::path &file) const {
    std::filesystem::create_directories(file.parent_path());
    std::filesystem::path tmp = file;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw KeyError(file.string() + ": cannot be written");
    std::string text = to_json();
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) throw KeyError(file.string() + ": cannot be written");
    std::filesystem::rename(tmp, file);
}

KeyRing KeyRing::load(const std::filesystem::path &file, const char *env_var, bool create_if_missing) {
    if (env_var) {
        const char *v = std::getenv(env_var);
        if (v && *v) return parse(v, std::string("environment variable ") + env_var);
    }
    std::error_code ec;
    if (std::filesystem::exists(file, ec)) {
        std::ifstream in(file);
        std::stringstream ss;
        ss << in.rdbuf();
        if (!in) throw KeyError(file.string() + ": cannot be read");
        struct stat st{};
        if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 0077))
            ::chmod(file.c_str(), 0600);  // tighten a key file others could read
        return parse(ss.str(), file.string());
    }
    if (!create_if_missing)
        throw KeyError(file.string() + ": no such key file (and " + (env_var ? env_var : "no variable") + " is not set)");
    KeyRing ring = generate(file.stem().string().substr(0, 1));
    ring.save(file);
    return ring;
}

}  // namespace consilium

namespace consilium {

void KeyRing::remove(const std::string &id) {
    if (id == current_) throw KeyError("key " + id + " is current and cannot be removed");
    keys_.erase(id);
}

}  // namespace consilium
