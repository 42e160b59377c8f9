// ops.hpp: the op catalogue of consilium/storage_ops.h as the sqlite plugin runs it. One table
// row per op: its name (for error messages), whether it writes, its parameters, and its SQL (or,
// for the few ops one fixed statement cannot express, a function that picks it or runs the op).
// The schema those statements run against is in sqlite_storage.cpp (kMigrations).
#pragma once

#include "connection.hpp"

#include <consilium/storage_ops.h>

#include <span>
#include <string_view>

namespace consilium::sqlite {

enum class ParamKind : uint8_t {
    text,     // CS_VAL_TEXT
    integer,  // CS_VAL_INT
    count,    // CS_VAL_INT, >= 0 (limits)
    sealed,   // CS_VAL_BLOB (CS_VAL_TEXT accepted too), stored as a blob byte for byte
};

struct ParamSpec {
    const char *name;
    ParamKind kind;
    bool nullable;
};

struct OpSpec;
// Picks the statement for these parameters (SEALED_* by kind, AUDIT_LIST by the filters given).
// Also called by check_params: throws CS_E_INVALID for parameters it has no statement for.
// LIFETIME: the returned SQL has static storage duration (Connection::prepare caches on it).
using PickSql = std::string_view (*)(const OpSpec &spec, const cs_storage_op &op);
// Runs a checked op whose steps depend on what an earlier statement did (REFRESH_USE).
using RunOp = void (*)(Connection &conn, const OpSpec &spec, const cs_storage_op &op);

struct OpSpec {
    uint32_t id;
    const char *name;  // "MESSAGE_INSERT": what error messages say
    bool write;
    std::span<const ParamSpec> params;
    // Runs with the parameters bound as ?1..?N; a SELECT's rows go to the op's sink.
    std::string_view sql;
    // When set: a second statement run after sql with the same parameters (EVENT_INSERT).
    std::string_view then_sql;
    // When set: the op fails with CS_E_NOT_FOUND and this message if sql changed no row.
    const char *missing;
    // When set: used instead of sql.
    PickSql pick = nullptr;
    // When set: runs the op instead of everything above.
    RunOp run = nullptr;
};

// The spec of an op, or nullptr when this plugin does not know it.
const OpSpec *find_op(uint32_t id);

// Throws CS_E_INVALID naming the parameter (1-based) when the count or a type is wrong, or when
// the op has no statement for a value (an unknown SEALED_* kind). Never puts a parameter's value
// in the message.
void check_params(const OpSpec &spec, const cs_storage_op &op);

// Runs one checked op on conn, inside the transaction the caller opened. Rows (of reads, and of
// writes that return some, like REFRESH_USE) go to the op's sink when it has one.
void run_op(Connection &conn, const OpSpec &spec, const cs_storage_op &op);

}  // namespace consilium::sqlite
