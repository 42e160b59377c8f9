// Password hashing with Argon2id (libsodium crypto_pwhash_str): the stored string carries its
// own salt and parameters, so they can be raised later (needs_rehash). Hashing is deliberately
// slow and memory-hard; at most `max_concurrent` hashes run at once so that a burst of logins
// cannot exhaust memory.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace consilium {

struct PasswordSettings {
    uint64_t ops_limit = 2;           // Argon2id passes (libsodium's INTERACTIVE)
    uint64_t mem_limit_kib = 65536;   // 64 MiB (INTERACTIVE)
    int max_concurrent = 2;
};

class PasswordHasher {
public:
    explicit PasswordHasher(PasswordSettings settings);

    std::string hash(std::string_view password);
    bool verify(std::string_view stored, std::string_view password);
    // Spends the same time as a verify against a real hash: for unknown e-mail addresses, so
    // that the answer's timing does not tell whether an account exists.
    void verify_dummy(std::string_view password);
    bool needs_rehash(std::string_view stored) const;

private:
    class Slot;
    PasswordSettings settings_;
    std::mutex mu_;
    std::condition_variable cv_;
    int running_ = 0;
    std::string dummy_;
};

}  // namespace consilium
