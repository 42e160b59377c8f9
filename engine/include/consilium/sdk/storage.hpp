// consilium/sdk/storage.hpp: writing a storage plugin in C++.
//
// A storage plugin executes the operations of consilium/storage_ops.h. The SDK gives typed
// access to parameters and a way to emit rows; the plugin maps each op to its store.
//
//   class MyStorage : public consilium::sdk::Storage { ... };
//   CONSILIUM_STORAGE_PLUGIN(MyStorage, "mystore", "1.0.0", "What it stores in")
#pragma once

#include <consilium/sdk/options.hpp>
#include <consilium/storage_ops.h>

#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace consilium::sdk {

// Typed, checked access to one op's parameters.
class Params {
public:
    Params(const cs_storage_op &op) : op_(op) {}
    size_t size() const { return op_.param_count; }
    uint32_t op() const { return op_.op; }
    const cs_value &at(size_t i) const {
        if (i >= op_.param_count)
            throw Error(CS_E_INVALID, "op " + std::to_string(op_.op) + ": missing parameter " +
                                          std::to_string(i + 1));
        return op_.params[i];
    }
    bool is_null(size_t i) const { return at(i).type == CS_VAL_NULL; }
    int64_t integer(size_t i) const {
        const cs_value &v = at(i);
        if (v.type != CS_VAL_INT)
            throw Error(CS_E_INVALID, "op " + std::to_string(op_.op) + ": parameter " +
                                          std::to_string(i + 1) + " must be an integer");
        return v.i;
    }
    std::string_view text(size_t i) const {
        const cs_value &v = at(i);
        if (v.type != CS_VAL_TEXT && v.type != CS_VAL_BLOB)
            throw Error(CS_E_INVALID, "op " + std::to_string(op_.op) + ": parameter " +
                                          std::to_string(i + 1) + " must be text");
        return to_sv(v.s);
    }

private:
    const cs_storage_op &op_;
};

// Builds one result row and hands it to the op's sink.
class RowWriter {
public:
    explicit RowWriter(const cs_row_sink *sink) : sink_(sink) {}
    bool wanted() const { return sink_ != nullptr; }
    // Returns false when the caller asked to stop.
    bool emit(const std::vector<cs_value> &cols) const {
        if (!sink_) return true;
        return sink_->row(sink_->ctx, cols.data(), cols.size()) == 0;
    }

private:
    const cs_row_sink *sink_;
};

inline cs_value null_value() { return cs_value{CS_VAL_NULL, 0, {nullptr, 0}}; }
inline cs_value int_value(int64_t i) { return cs_value{CS_VAL_INT, i, {nullptr, 0}}; }
inline cs_value text_value(std::string_view s) { return cs_value{CS_VAL_TEXT, 0, to_cs(s)}; }
inline cs_value blob_value(std::string_view s) { return cs_value{CS_VAL_BLOB, 0, to_cs(s)}; }

class Storage {
public:
    virtual ~Storage() = default;
    // Executes ops as one transaction; throw sdk::Error (with CS_E_CONFLICT, CS_E_NOT_FOUND...)
    // and nothing of the batch may remain.
    virtual void exec(std::span<const cs_storage_op> ops) = 0;
};

template <class T>
struct StorageThunks {
    struct Instance {
        Host host;
        std::unique_ptr<T> impl;
    };

    static cs_status create(const cs_host_api *host, cs_str path, cs_str options, void **out,
                            cs_error *err) {
        return guard(err, [&] {
            std::string p(to_sv(path));
            json opts = parse_options(path, options, T::defaults());
            auto inst = std::make_unique<Instance>(Instance{Host(host), nullptr});
            inst->impl = std::make_unique<T>(inst->host, p, opts);
            *out = inst.release();
        });
    }
    static void destroy(void *instance) {
        auto *inst = static_cast<Instance *>(instance);
        guard_void(inst->host.api(), [&] { delete inst; });
    }
    static cs_status exec(void *instance, const cs_storage_op *ops, size_t n, cs_error *err) {
        auto *inst = static_cast<Instance *>(instance);
        return guard(err, [&] { inst->impl->exec(std::span<const cs_storage_op>(ops, n)); });
    }

    static constexpr cs_storage_vtable vtable{sizeof(cs_storage_vtable), &exec};
};

}  // namespace consilium::sdk

#define CONSILIUM_STORAGE_PLUGIN(Type, id, version, description)                           \
    static const cs_plugin_descriptor consilium_descriptor_ = {                             \
        CS_ABI_MAJOR,                                                                       \
        CS_ABI_MINOR,                                                                       \
        sizeof(cs_plugin_descriptor),                                                       \
        CS_PLUGIN_STORAGE,                                                                  \
        id,                                                                                 \
        version,                                                                            \
        CONSILIUM_BUILD_SIGNATURE,                                                          \
        description,                                                                        \
        &::consilium::sdk::StorageThunks<Type>::create,                                     \
        &::consilium::sdk::StorageThunks<Type>::destroy,                                    \
        &::consilium::sdk::StorageThunks<Type>::vtable};                                    \
    CONSILIUM_EXPORT_DESCRIPTOR(consilium_descriptor_)
