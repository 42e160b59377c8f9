// Encryption at rest: XChaCha20-Poly1305 (libsodium) under the current data key. A sealed value
// carries its key id, so values sealed under an older key still open after rotation. The
// associated data binds a value to its place (e.g. "event:<consultation>:<seq>"): moving
// ciphertext to another row makes it fail to open.
#pragma once

#include "crypto/keyring.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace consilium {

// Meta entries whose values are sealed (base64url of the sealed bytes, associated data = the
// entry's name): secrets the engine makes for itself. The re-encryption reseals them too, so
// retiring an old data key never loses them.
inline constexpr const char *kSealedMetaKeys[] = {
    "auth.email_index_key",  // the e-mail blind index's HMAC key (auth/accounts.cpp)
};

class Sealer {
public:
    explicit Sealer(KeyRing ring);

    std::string seal(std::string_view plaintext, std::string_view associated) const;
    // nullopt when the value was tampered with, sealed for another place, or under a key we lack.
    std::optional<std::string> open(std::string_view sealed, std::string_view associated) const;
    // The key id a sealed value was made with ("" when it is not a sealed value).
    static std::string key_id_of(std::string_view sealed);
    std::string current_key_id() const;
    // Swaps in a new ring (rotation); values sealed before stay readable if their key remains.
    void replace(KeyRing ring);

private:
    mutable std::mutex mu_;
    std::shared_ptr<const KeyRing> ring_;
};

}  // namespace consilium
