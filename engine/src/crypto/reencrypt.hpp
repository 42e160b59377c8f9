// Re-encryption after a data key rotation (docs/security.md, "Key rotation"): walks every sealed
// value (e-mail addresses, profile details, messages, events) and seals again, under the current
// key, each one made under another key. It runs in the background while the host serves: each
// value is replaced only if it did not change meanwhile (CS_OP_SEALED_REWRITE compares), and a
// value written during the walk is already under the current key. When a walk completes, meta
// `encryption.reencrypted_to` names the key; older keys can then be retired.
#pragma once

#include "crypto/sealer.hpp"
#include "storage/store.hpp"
#include "util/metrics.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace consilium {

struct ReencryptStats {
    int64_t scanned = 0;
    int64_t resealed = 0;
    int64_t unreadable = 0;  // sealed under a key the ring lacks, or damaged: left as they are
    bool completed = false;
};

class Reencryptor {
public:
    static constexpr const char *kDoneMeta = "encryption.reencrypted_to";

    Reencryptor(Store &store, const Sealer &sealer, metrics::Registry &metrics)
        : store_(store), sealer_(sealer), metrics_(metrics) {}

    // True when values may still be sealed under an older key.
    bool needed() const;
    // Walks everything once; returns early (completed = false) when `stop` becomes true.
    // `pause` between pages keeps the walk from crowding out patients' requests.
    ReencryptStats run(const std::atomic<bool> &stop, std::chrono::milliseconds pause = std::chrono::milliseconds(2),
                       int64_t page = 200);

    // The associated data a sealed value of this kind was made with (see Sealer).
    static std::string associated(const std::string &kind, const SealedItem &item);

private:
    Store &store_;
    const Sealer &sealer_;
    metrics::Registry &metrics_;
};

}  // namespace consilium
