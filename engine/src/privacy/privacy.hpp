// Patients' rights over their data (docs/security.md): export of everything an account holds,
// erasure of one family member's profile or of the whole account, and the background erasure of
// expired guests. Erasure first stops the live consultations concerned (nothing more is stored
// for them), then deletes the rows in one transaction; audit entries stay (they hold ids only).
#pragma once

#include "consult/consultation.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace consilium {

class Engine;

class Privacy {
public:
    explicit Privacy(Engine &engine) : engine_(engine) {}

    // Every profile, consultation and message of the account, opened, as one JSON document.
    nlohmann::json export_account(const Principal &who);
    // Erases a family member's profile and its consultations. The `self` profile cannot be
    // erased alone (erase the account). False when the profile is not the caller's.
    enum class EraseResult { erased, not_found, is_self };
    EraseResult erase_profile(const Principal &who, const std::string &profile_id);
    // Erases the account, its sessions, profiles and consultations.
    void erase_account(const Principal &who);
    // Erases guest accounts whose time is up; returns how many.
    int64_t erase_expired_guests(int64_t now_ms);

private:
    void erase_account_rows(const std::string &account_id);

    Engine &engine_;
};

}  // namespace consilium
