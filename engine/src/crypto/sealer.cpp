#include "crypto/sealer.hpp"

#include "util/ids.hpp"

#include <sodium.h>

namespace consilium {

namespace {
constexpr char kMagic[3] = {'C', 'S', '1'};
}

Sealer::Sealer(KeyRing ring) : ring_(std::make_shared<const KeyRing>(std::move(ring))) { crypto_init(); }

void Sealer::replace(KeyRing ring) {
    auto next = std::make_shared<const KeyRing>(std::move(ring));
    std::lock_guard<std::mutex> lock(mu_);
    ring_ = next;
}

std::string Sealer::current_key_id() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ring_->current_id();
}

std::string Sealer::seal(std::string_view plaintext, std::string_view associated) const {
    std::shared_ptr<const KeyRing> ring;
    {
        std::lock_guard<std::mutex> lock(mu_);
        ring = ring_;
    }
    const std::string &id = ring->current_id();
    const std::string &key = ring->current_key();
    std::string out(kMagic, sizeof kMagic);
    out += static_cast<char>(id.size());
    out += id;
    std::string nonce = random_bytes(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    out += nonce;
    size_t header = out.size();
    out.resize(header + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        reinterpret_cast<unsigned char *>(out.data() + header), &clen,
        reinterpret_cast<const unsigned char *>(plaintext.data()), plaintext.size(),
        reinterpret_cast<const unsigned char *>(associated.data()), associated.size(), nullptr,
        reinterpret_cast<const unsigned char *>(nonce.data()),
        reinterpret_cast<const unsigned char *>(key.data()));
    out.resize(header + clen);
    return out;
}

std::string Sealer::key_id_of(std::string_view sealed) {
    if (sealed.size() < 4 || sealed.substr(0, 3) != std::string_view(kMagic, 3)) return {};
    size_t n = static_cast<unsigned char>(sealed[3]);
    if (sealed.size() < 4 + n) return {};
    return std::string(sealed.substr(4, n));
}

std::optional<std::string> Sealer::open(std::string_view sealed, std::string_view associated) const {
    std::string id = key_id_of(sealed);
    if (id.empty()) return std::nullopt;
    std::shared_ptr<const KeyRing> ring;
    {
        std::lock_guard<std::mutex> lock(mu_);
        ring = ring_;
    }
    const std::string *key = ring->key(id);
    if (!key) return std::nullopt;
    size_t header = 4 + id.size();
    constexpr size_t nonce_len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    if (sealed.size() < header + nonce_len + crypto_aead_xchacha20poly1305_ietf_ABYTES) return std::nullopt;
    const unsigned char *nonce = reinterpret_cast<const unsigned char *>(sealed.data() + header);
    const unsigned char *c = nonce + nonce_len;
    size_t clen = sealed.size() - header - nonce_len;
    std::string out(clen, '\0');
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<unsigned char *>(out.data()), &mlen, nullptr, c, clen,
            reinterpret_cast<const unsigned char *>(associated.data()), associated.size(), nonce,
            reinterpret_cast<const unsigned char *>(key->data())) != 0)
        return std::nullopt;
    out.resize(mlen);
    return out;
}

}  // namespace consilium
