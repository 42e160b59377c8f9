// Named 32-byte secret keys with one current key: data-encryption keys and token-signing keys.
// Keys live in a key file (JSON {"current": id, "keys": {id: base64}}, mode 0600) or in an
// environment variable with the same JSON; never in the database. Rotating = adding a key and
// making it current: older keys stay to open what they sealed or verify what they signed.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace consilium {

class KeyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class KeyRing {
public:
    static constexpr size_t kKeyBytes = 32;

    // From `env_var` when set and non-empty, else from `file`; when neither exists and
    // create_if_missing, makes a file with one fresh key. Throws KeyError naming the source.
    static KeyRing load(const std::filesystem::path &file, const char *env_var, bool create_if_missing);
    static KeyRing parse(const std::string &json_text, const std::string &source);
    static KeyRing generate(const std::string &id_prefix);

    const std::string &current_id() const { return current_; }
    const std::string &current_key() const { return keys_.at(current_); }
    const std::string *key(const std::string &id) const;
    const std::map<std::string, std::string> &keys() const { return keys_; }

    // Adds a fresh key and makes it current; returns its id.
    std::string rotate();
    // Removes a key that is not current (retiring it). Throws KeyError for the current one.
    void remove(const std::string &id);
    std::string to_json() const;
    void save(const std::filesystem::path &file) const;

private:
    std::string prefix_ = "k";
    std::string current_;
    std::map<std::string, std::string> keys_;  // id -> raw key bytes
};

}  // namespace consilium
