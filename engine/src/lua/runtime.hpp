// Running persona and coordinator scripts in LuaJIT, sandboxed (STYLE.md, Lua):
//  - one state per worker thread (thread_runtime()); each call runs the chunk in a fresh
//    environment that reads through to a frozen engine API, so nothing leaks between calls;
//  - an allow-list of libraries (base subset, string, table, math, bit); no io, os, package,
//    debug, ffi, load, coroutines; unknown globals are errors;
//  - budgets: an instruction/time count hook that keeps firing once it fired (pcall cannot
//    swallow the kill), with the JIT off for script code (compiled traces ignore hooks), and a
//    capped allocator (out of memory fails the script, never the host);
//  - only plain values (JSON-like) cross in and out.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct lua_State;

namespace consilium::lua {

using json = nlohmann::json;

struct ScriptError {
    std::string code;     // syntax | runtime | timeout | memory | missing_function | bad_result
    std::string file;
    int line = 0;
    std::string message;
    std::string format() const;  // "file:line: code: message"
};

struct Limits {
    uint64_t instructions = 5'000'000;
    std::chrono::milliseconds time{100};
    size_t memory_bytes = 16u << 20;  // per call, above what the state already holds
};

// Engine functions a script may call as consilium.<name>(...): JSON arguments in, JSON out.
// They must not throw; a thrown exception becomes a Lua error.
using Function = std::function<json(const json &args)>;
using FunctionTable = std::map<std::string, Function>;

struct CallResult {
    std::optional<json> value;   // set on success (null when the function returned nothing)
    std::optional<ScriptError> error;
    bool ok() const { return !error; }
};

class Runtime {
public:
    explicit Runtime(Limits limits = {});
    ~Runtime();
    Runtime(const Runtime &) = delete;
    Runtime &operator=(const Runtime &) = delete;

    // Runs `source` (named `file` in errors) in a fresh environment, then calls the global
    // function `function_name` it defined with `args`. A missing function is an error of code
    // missing_function unless optional, when the result has no value and no error.
    CallResult call(const std::string &file, const std::string &source, const std::string &function_name,
                    const std::vector<json> &args, const FunctionTable &api, bool optional = false);

    // Does `function_name` exist after running the chunk? (lint's dry run)
    bool defines(const std::string &file, const std::string &source, const std::string &function_name,
                 const FunctionTable &api);

    const Limits &limits() const { return limits_; }
    void set_limits(const Limits &l) { limits_ = l; }
    size_t memory_in_use() const;

    // "" or "LINE: message" (for the persona loader's syntax check).
    static std::string check_syntax(const std::string &source, const std::string &file);

    // Internal state, public only so the C callbacks in runtime.cpp can reach it.
    struct Alloc;
    struct Budget;

private:
    bool load_chunk(const std::string &file, const std::string &source, ScriptError &err);
    bool prepare(const std::string &file, const std::string &source, const FunctionTable &api, ScriptError &err);
    ScriptError error_from_stack(int status, const std::string &file);
    void finish(int base, bool collect);
    void reset_state();

    Limits limits_;
    std::unique_ptr<Alloc> alloc_;
    std::unique_ptr<Budget> budget_;
    lua_State *L_ = nullptr;
    std::map<std::string, std::pair<size_t, int>> chunks_;  // file -> (source hash, registry ref)
};

// The calling thread's runtime (one LuaJIT state per worker thread).
Runtime &thread_runtime();

}  // namespace consilium::lua
