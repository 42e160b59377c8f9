#include "crypto/reencrypt.hpp"

#include "util/ids.hpp"
#include "util/log.hpp"

#include <thread>

namespace consilium {

std::string Reencryptor::associated(const std::string &kind, const SealedItem &item) {
    if (kind == "account") return "account-email:" + item.id;
    if (kind == "profile") return "profile:" + item.id;
    return kind + ":" + item.id + ":" + std::to_string(item.seq.value_or(0));  // message, event
}

bool Reencryptor::needed() const { return store_.meta(kDoneMeta).value_or("") != sealer_.current_key_id(); }

ReencryptStats Reencryptor::run(const std::atomic<bool> &stop, std::chrono::milliseconds pause, int64_t page) {
    ReencryptStats st;
    const std::string target = sealer_.current_key_id();
    log::info("encryption", "re-encryption under the current key started", {{"key", target}});
    auto &resealed = metrics_.counter("reencrypted_values_total", "Sealed values re-encrypted under the current key");
    for (const char *kind : {"account", "profile", "message", "event"}) {
        int64_t cursor = 0;
        for (;;) {
            if (stop) return st;
            auto items = store_.sealed_scan(kind, cursor, page);
            if (items.empty()) break;
            Batch b;
            for (const auto &item : items) {
                ++st.scanned;
                cursor = item.cursor;
                if (Sealer::key_id_of(item.sealed) == target) continue;
                std::string ad = associated(kind, item);
                auto plain = sealer_.open(item.sealed, ad);
                if (!plain) {
                    ++st.unreadable;
                    continue;
                }
                Store::sealed_rewrite(b, kind, item, sealer_.seal(*plain, ad));
                ++st.resealed;
            }
            if (!b.empty()) {
                store_.write(b);
                resealed.add(static_cast<double>(b.size()));
            }
            if (static_cast<int64_t>(items.size()) < page) break;
            std::this_thread::sleep_for(pause);
        }
    }
    for (const char *name : kSealedMetaKeys) {
        auto value = store_.meta(name);
        auto sealed = value ? base64url_decode(*value) : std::nullopt;
        if (!sealed || Sealer::key_id_of(*sealed) == target) continue;
        ++st.scanned;
        auto plain = sealer_.open(*sealed, name);
        if (!plain) {
            ++st.unreadable;
            continue;
        }
        Batch b;
        Store::meta_set(b, name, base64url_encode(sealer_.seal(*plain, name)));
        store_.write(b);
        ++st.resealed;
    }
    if (sealer_.current_key_id() != target) return st;  // rotated again meanwhile: walk again
    Batch done;
    Store::meta_set(done, kDoneMeta, target);
    store_.write(done);
    st.completed = true;
    log::info("encryption", "re-encryption complete",
              {{"key", target}, {"scanned", st.scanned}, {"resealed", st.resealed}, {"unreadable", st.unreadable}});
    if (st.unreadable > 0)
        log::warn("encryption", "some values could not be opened with any key and were left as they are",
                  {{"count", st.unreadable}});
    return st;
}

}  // namespace consilium
