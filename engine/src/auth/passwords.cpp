#include "auth/passwords.hpp"

#include <sodium.h>

#include <stdexcept>

namespace consilium {

// Holds one of the max_concurrent hashing slots for its lifetime.
class PasswordHasher::Slot {
public:
    explicit Slot(PasswordHasher &h) : h_(h) {
        std::unique_lock<std::mutex> lock(h_.mu_);
        h_.cv_.wait(lock, [this] { return h_.running_ < h_.settings_.max_concurrent; });
        ++h_.running_;
    }
    ~Slot() {
        {
            std::lock_guard<std::mutex> lock(h_.mu_);
            --h_.running_;
        }
        h_.cv_.notify_one();
    }

private:
    PasswordHasher &h_;
};

PasswordHasher::PasswordHasher(PasswordSettings settings) : settings_(settings) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    if (settings_.max_concurrent < 1) settings_.max_concurrent = 1;
    dummy_ = hash("a password nobody has, to spend the time of a real check");
}

std::string PasswordHasher::hash(std::string_view password) {
    Slot slot(*this);
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), settings_.ops_limit,
                              static_cast<size_t>(settings_.mem_limit_kib) * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0)
        throw std::runtime_error("password hashing ran out of memory");
    return out;
}

bool PasswordHasher::verify(std::string_view stored, std::string_view password) {
    if (stored.empty() || stored.size() >= crypto_pwhash_STRBYTES) return false;
    std::string s(stored);  // NUL-terminated copy
    Slot slot(*this);
    return crypto_pwhash_str_verify(s.c_str(), password.data(), password.size()) == 0;
}

void PasswordHasher::verify_dummy(std::string_view password) { (void)verify(dummy_, password); }

bool PasswordHasher::needs_rehash(std::string_view stored) const {
    std::string s(stored);
    return crypto_pwhash_str_needs_rehash(s.c_str(), settings_.ops_limit,
                                          static_cast<size_t>(settings_.mem_limit_kib) * 1024) != 0;
}

}  // namespace consilium
