// storage_conformance.hpp: the conformance suite every storage plugin must pass.
//
// The tests (storage_conformance.cpp) are value-parameterised over a StorageBackend: a name and
// a factory that makes a plugin instance over an empty store. A plugin's own test instantiates
// them, e.g. for SQLite:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StorageConformance,
//                            testing::Values(StorageBackend{"sqlite", make_sqlite}), backend_name);
//
// They check what consilium/storage_ops.h and cs_storage_vtable promise: every op and its result
// columns, conflicts, NOT_FOUND, cascading deletes, all-or-nothing batches, sealed bytes kept as
// they are, error messages that name the op and carry no parameter value, and exec() from many
// threads at once. The StorageClient and op builders here are for plugin-specific tests too.
#pragma once

#include "test_support.hpp"

#include <consilium/abi.h>
#include <consilium/storage_ops.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace consilium::test::storage {

// One value as a test writes or reads it: an owning cs_value.
struct Val {
    uint32_t type = CS_VAL_NULL;  // cs_value_type
    int64_t i = 0;
    std::string s;
    bool operator==(const Val &) const = default;
};
Val null();
Val integer(int64_t i);
Val text(std::string s);
Val blob(std::string s);
void PrintTo(const Val &v, std::ostream *os);

using Row = std::vector<Val>;
using Rows = std::vector<Row>;

struct Op {
    uint32_t op;  // cs_storage_op_id
    std::vector<Val> params;
    bool want_rows = true;  // false: exec gets a NULL row sink for this op
};

struct Outcome {
    cs_status status = CS_OK;
    std::string message;     // cs_error's message when status is not CS_OK
    std::vector<Rows> rows;  // one entry per op, in batch order
};

// The name storage_ops.h gives an op ("MESSAGE_INSERT"), for failure messages.
std::string op_name(uint32_t op);

// Talks to a storage plugin instance through its vtable, as the engine does.
// LIFETIME: borrows the harness, which must outlive the client.
class StorageClient {
public:
    explicit StorageClient(PluginHarness &harness);

    // One exec() call: the ops as one batch. A sink asks to stop after stop_after rows (0: never).
    Outcome exec(const std::vector<Op> &ops, size_t stop_after = 0) const;
    // A batch of one op.
    Outcome one(uint32_t op, std::vector<Val> params) const { return exec({Op{op, std::move(params)}}); }
    // A batch of one op that must succeed; throws std::runtime_error (failing the test) otherwise.
    Rows must(uint32_t op, std::vector<Val> params) const;
    void must(const std::vector<Op> &batch) const;

private:
    PluginHarness &harness_;
};

// Builders for the write ops, with plausible values for the columns a test does not care about.
namespace op {
Op account(const std::string &id, const std::string &kind = "patient", Val email_index = null(),
           Val email_sealed = null(), Val password_hash = null(), int64_t created_ms = 1000,
           Val expires_ms = null());
Op profile(const std::string &id, const std::string &account_id, int64_t created_ms = 1000,
           Val details_sealed = blob(std::string("sealed\0details", 14)), const std::string &relation = "self");
Op consultation(const std::string &id, const std::string &account_id, const std::string &profile_id,
                int64_t created_ms = 1000);
Op message(const std::string &consultation_id, int64_t seq, const std::string &account_id,
           Val client_id = null(), Val body_sealed = blob(std::string("\x01sealed\0body", 12)),
           const std::string &role = "patient", Val specialist = null(), int64_t created_ms = 2000,
           const std::string &meta = "{}");
Op event(const std::string &consultation_id, int64_t seq, Val body_sealed = blob(std::string("ev\0t", 4)),
         int64_t created_ms = 3000, const std::string &type = "chunk");
Op session(const std::string &id, const std::string &account_id, int64_t created_ms = 1000,
           int64_t expires_ms = 1000 + 30LL * 24 * 3600 * 1000);
Op refresh(const std::string &token_hash, const std::string &session_id, int64_t created_ms = 1000);
// An audit entry; hashes made up from seq. Its row as AUDIT_LAST / AUDIT_LIST return it is audit_row().
struct AuditEntry {
    int64_t seq = 1;
    int64_t at_ms = 1000;
    Val actor_account = null();
    std::string actor_role = "patient";
    Val profile_id = null();
    std::string action = "consultation.open";
    Val target = null();
    std::string outcome = "ok";
    Val peer = null();
    std::string detail = "{}";
};
Op audit(const AuditEntry &e);
Row audit_row(const AuditEntry &e);
}  // namespace op

// What the suite runs against.
struct StorageBackend {
    std::string name;  // a test-name suffix: letters, digits, '_'
    // Makes an instance over an empty store. data_dir is a fresh directory that outlives the
    // instance; a server-backed store may ignore it and use a fresh database or schema instead.
    std::function<std::unique_ptr<PluginHarness>(const std::string &data_dir)> make;
};
void PrintTo(const StorageBackend &b, std::ostream *os);
std::string backend_name(const testing::TestParamInfo<StorageBackend> &info);

class StorageConformance : public testing::TestWithParam<StorageBackend> {
protected:
    void SetUp() override;
    void TearDown() override;

    const StorageClient &db() const { return *client_; }
    // Account `account` with profile `profile` and consultation `consultation` (created_ms 1000).
    void seed(const std::string &account, const std::string &profile, const std::string &consultation) const;
    size_t count(uint32_t list_op, std::vector<Val> params) const { return db().must(list_op, std::move(params)).size(); }

    TempDir dir_;
    std::unique_ptr<PluginHarness> harness_;
    std::unique_ptr<StorageClient> client_;
};

}  // namespace consilium::test::storage
