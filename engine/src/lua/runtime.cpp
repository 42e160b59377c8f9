#include "lua/runtime.hpp"

#include <lua.hpp>
#include <luajit.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

namespace consilium::lua {

std::string ScriptError::format() const {
    std::string s = file.empty() ? "<script>" : file;
    if (line > 0) s += ":" + std::to_string(line);
    return s + ": " + code + ": " + message;
}

struct Runtime::Alloc {
    size_t used = 0;
    size_t limit = 0;  // 0 = unlimited
    bool refused = false;
};

struct Runtime::Budget {
    uint64_t steps = 0;
    uint64_t max_steps = 0;
    std::chrono::steady_clock::time_point deadline;
    bool armed = false;
    bool killed = false;
};

namespace {

constexpr int kHookEvery = 1000;  // instructions between budget checks

void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    auto *a = static_cast<Runtime::Alloc *>(ud);
    if (nsize == 0) {
        a->used -= osize;
        std::free(ptr);
        return nullptr;
    }
    size_t old = ptr ? osize : 0;
    if (nsize > old && a->limit != 0 && a->used - old + nsize > a->limit) {
        a->refused = true;
        return nullptr;  // Lua raises a memory error: the script fails, the host lives
    }
    void *p = std::realloc(ptr, nsize);
    if (p) a->used = a->used - old + nsize;
    return p;
}

// The current call's budget and engine functions, per thread.
thread_local Runtime::Budget *t_budget = nullptr;
thread_local const FunctionTable *t_api = nullptr;

void count_hook(lua_State *L, lua_Debug *) {
    Runtime::Budget *b = t_budget;
    if (!b || !b->armed) return;
    b->steps += kHookEvery;
    if (b->killed || b->steps > b->max_steps || std::chrono::steady_clock::now() > b->deadline) {
        // From now on the hook fires on every instruction: a pcall may catch the error once,
        // but the very next instruction outside it raises again, so the kill always escapes.
        if (!b->killed) {
            b->killed = true;
            lua_sethook(L, &count_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
        }
        // Name the line the script was running (luaL_error inside a hook cannot).
        lua_Debug ar{};
        if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
            lua_pushfstring(L, "%s:%d: script budget exceeded (instructions or time)", ar.short_src, ar.currentline);
        else
            lua_pushstring(L, "script budget exceeded (instructions or time)");
        lua_error(L);
    }
}

// json <-> Lua (plain values only).
void push_json(lua_State *L, const json &v, int depth = 0) {
    if (depth > 32) {
        lua_pushnil(L);
        return;
    }
    switch (v.type()) {
    case json::value_t::null: lua_pushnil(L); break;
    case json::value_t::boolean: lua_pushboolean(L, v.get<bool>()); break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: lua_pushnumber(L, static_cast<lua_Number>(v.get<int64_t>())); break;
    case json::value_t::number_float: lua_pushnumber(L, v.get<double>()); break;
    case json::value_t::string: {
        const auto &s = v.get_ref<const std::string &>();
        lua_pushlstring(L, s.data(), s.size());
        break;
    }
    case json::value_t::array: {
        lua_createtable(L, static_cast<int>(v.size()), 0);
        int i = 1;
        for (const auto &item : v) {
            push_json(L, item, depth + 1);
            lua_rawseti(L, -2, i++);
        }
        break;
    }
    case json::value_t::object: {
        lua_createtable(L, 0, static_cast<int>(v.size()));
        for (auto it = v.begin(); it != v.end(); ++it) {
            lua_pushlstring(L, it.key().data(), it.key().size());
            push_json(L, it.value(), depth + 1);
            lua_rawset(L, -3);
        }
        break;
    }
    default: lua_pushnil(L); break;
    }
}

bool to_json(lua_State *L, int idx, json &out, int depth, size_t &budget, std::string &err) {
    if (budget-- == 0) {
        err = "result too large";
        return false;
    }
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: out = nullptr; return true;
    case LUA_TBOOLEAN: out = lua_toboolean(L, idx) != 0; return true;
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) out = static_cast<int64_t>(d);
        else if (std::isfinite(d)) out = d;
        else out = nullptr;
        return true;
    }
    case LUA_TSTRING: {
        size_t n = 0;
        const char *s = lua_tolstring(L, idx, &n);
        out = std::string(s, n);
        return true;
    }
    case LUA_TTABLE: {
        if (depth > 32) {
            err = "result nested too deeply (or a table refers to itself)";
            return false;
        }
        size_t n = lua_objlen(L, idx);
        bool is_array = true;
        size_t count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            ++count;
            if (lua_type(L, -2) != LUA_TNUMBER) is_array = false;
            lua_pop(L, 1);
        }
        if (is_array && count == n) {
            out = json::array();
            for (size_t i = 1; i <= n; ++i) {
                lua_rawgeti(L, idx, static_cast<int>(i));
                json item;
                bool ok = to_json(L, -1, item, depth + 1, budget, err);
                lua_pop(L, 1);
                if (!ok) return false;
                out.push_back(std::move(item));
            }
            return true;
        }
        out = json::object();
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            std::string key;
            if (lua_type(L, -2) == LUA_TSTRING) {
                size_t kn = 0;
                const char *ks = lua_tolstring(L, -2, &kn);
                key.assign(ks, kn);
            } else if (lua_type(L, -2) == LUA_TNUMBER) {
                lua_pushvalue(L, -2);
                key = lua_tostring(L, -1);
                lua_pop(L, 1);
            } else {
                lua_pop(L, 1);
                continue;
            }
            json item;
            bool ok = to_json(L, -1, item, depth + 1, budget, err);
            lua_pop(L, 1);
            if (!ok) {
                lua_pop(L, 1);
                return false;
            }
            out[key] = std::move(item);
        }
        return true;
    }
    default:
        out = nullptr;  // functions, userdata: not plain values
        return true;
    }
}

// consilium.<name>(...) -> the engine function of the same name.
int call_engine(lua_State *L) {
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    std::string error;
    {
        json args = json::array();
        int n = lua_gettop(L);
        for (int i = 1; i <= n; ++i) {
            json a;
            size_t budget = 10000;
            std::string e;
            if (!to_json(L, i, a, 0, budget, e)) {
                error = std::string("consilium.") + name + ": " + e;
                break;
            }
            args.push_back(std::move(a));
        }
        if (error.empty()) {
            const FunctionTable *api = t_api;
            auto it = api ? api->find(name) : decltype(api->end()){};
            if (!api || it == api->end()) {
                error = std::string("consilium.") + name + " is not available here";
            } else {
                try {
                    json r = it->second(args);
                    push_json(L, r);
                    return 1;
                } catch (const std::exception &e) {
                    error = std::string("consilium.") + name + ": " + e.what();
                }
            }
        }
    }
    return luaL_error(L, "%s", error.c_str());
}

// Runs with full privileges once per state; returns a function that makes sandbox environments.
const char *kBootstrap = R"lua(
local api_names = ...
local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error("cannot modify " .. name .. "." .. tostring(k), 2) end,
    __metatable = false,
  })
end
local function copy(t, without)
  local out = {}
  for k, v in pairs(t) do if not without[k] then out[k] = v end end
  return out
end
local api = {}
for _, name in ipairs(api_names) do api[name] = __consilium_bind(name) end
local safe = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  xpcall = xpcall, setmetatable = setmetatable, getmetatable = getmetatable, _VERSION = _VERSION,
  string = readonly(copy(string, {dump = true}), "string"),
  table = readonly(copy(table, {}), "table"),
  math = readonly(copy(math, {random = true, randomseed = true}), "math"),
  bit = readonly(copy(bit, {}), "bit"),
  consilium = readonly(api, "consilium"),
}
getmetatable("").__metatable = false
local env_mt = {
  __index = function(_, k)
    local v = safe[k]
    if v == nil then error("unknown global '" .. tostring(k) .. "'", 2) end
    return v
  end,
  __metatable = false,
}
return function() return setmetatable({}, env_mt) end
)lua";

int bind_engine(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, &call_engine, 1);
    return 1;
}

// The engine functions every script may call. Listed here so the sandbox is built once.
const char *const kApiNames[] = {"search", "red_flags", "persona", "personas", "exists",
                                 "normalize", "tokens", "log", nullptr};

std::string parse_location(const std::string &msg, std::string &file, int &line) {
    // "file:LINE: message"
    auto c1 = msg.find(':');
    while (c1 != std::string::npos) {
        auto c2 = msg.find(':', c1 + 1);
        if (c2 == std::string::npos) break;
        std::string num = msg.substr(c1 + 1, c2 - c1 - 1);
        if (!num.empty() && num.find_first_not_of("0123456789") == std::string::npos) {
            file = msg.substr(0, c1);
            line = std::atoi(num.c_str());
            std::string rest = msg.substr(c2 + 1);
            if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
            return rest;
        }
        c1 = msg.find(':', c1 + 1);
    }
    return msg;
}

}  // namespace

Runtime::Runtime(Limits limits)
    : limits_(limits), alloc_(std::make_unique<Alloc>()), budget_(std::make_unique<Budget>()) {
    reset_state();
}

Runtime::~Runtime() {
    if (L_) lua_close(L_);
}

size_t Runtime::memory_in_use() const { return alloc_->used; }

void Runtime::reset_state() {
    if (L_) lua_close(L_);
    chunks_.clear();
    alloc_->limit = 0;
    L_ = lua_newstate(&capped_alloc, alloc_.get());
    if (!L_) throw std::runtime_error("cannot create a LuaJIT state");
    luaL_openlibs(L_);
    // Script code runs in the interpreter: hooks do not fire inside compiled traces. (After
    // openlibs: opening the jit library switches the compiler on.)
    luaJIT_setmode(L_, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_pushcfunction(L_, &bind_engine);
    lua_setglobal(L_, "__consilium_bind");
    if (luaL_loadbuffer(L_, kBootstrap, std::strlen(kBootstrap), "=sandbox") != 0)
        throw std::runtime_error(std::string("sandbox bootstrap: ") + lua_tostring(L_, -1));
    lua_newtable(L_);
    for (int i = 0; kApiNames[i]; ++i) {
        lua_pushstring(L_, kApiNames[i]);
        lua_rawseti(L_, -2, i + 1);
    }
    if (lua_pcall(L_, 1, 1, 0) != 0) throw std::runtime_error(std::string("sandbox bootstrap: ") + lua_tostring(L_, -1));
    lua_setfield(L_, LUA_REGISTRYINDEX, "consilium.make_env");
    // Nothing privileged stays reachable from the main state's globals either.
    for (const char *g : {"io", "os", "package", "debug", "ffi", "jit", "require", "dofile", "loadfile",
                          "load", "loadstring", "module", "collectgarbage", "newproxy", "__consilium_bind"}) {
        lua_pushnil(L_);
        lua_setglobal(L_, g);
    }
    lua_gc(L_, LUA_GCCOLLECT, 0);
}

std::string Runtime::check_syntax(const std::string &source, const std::string &file) {
    lua_State *L = luaL_newstate();
    if (!L) return "0: cannot create a LuaJIT state";
    std::string chunk = "@" + file;
    std::string out;
    if (luaL_loadbuffer(L, source.data(), source.size(), chunk.c_str()) != 0) {
        std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "syntax error";
        std::string f;
        int line = 0;
        std::string rest = parse_location(msg, f, line);
        out = std::to_string(line) + ": " + rest;
    }
    lua_close(L);
    return out;
}

bool Runtime::load_chunk(const std::string &file, const std::string &source, ScriptError &err) {
    size_t h = std::hash<std::string>{}(source);
    auto it = chunks_.find(file);
    if (it != chunks_.end() && it->second.first == h) {
        lua_rawgeti(L_, LUA_REGISTRYINDEX, it->second.second);
        return true;
    }
    if (it != chunks_.end()) {
        luaL_unref(L_, LUA_REGISTRYINDEX, it->second.second);
        chunks_.erase(it);
    }
    // Text only: a binary chunk (bytecode) is refused.
    if (!source.empty() && source[0] == LUA_SIGNATURE[0]) {
        err = {"syntax", file, 0, "binary chunks are not allowed"};
        return false;
    }
    std::string chunk = "@" + file;
    if (luaL_loadbuffer(L_, source.data(), source.size(), chunk.c_str()) != 0) {
        std::string msg = lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "syntax error";
        lua_pop(L_, 1);
        err.code = "syntax";
        err.message = parse_location(msg, err.file, err.line);
        if (err.file.empty()) err.file = file;
        return false;
    }
    lua_pushvalue(L_, -1);
    chunks_[file] = {h, luaL_ref(L_, LUA_REGISTRYINDEX)};
    return true;
}

// Leaves [chunk env] on the stack with the chunk already run in env and the budget armed.
bool Runtime::prepare(const std::string &file, const std::string &source, const FunctionTable &api,
                      ScriptError &err) {
    if (!load_chunk(file, source, err)) return false;
    lua_getfield(L_, LUA_REGISTRYINDEX, "consilium.make_env");
    lua_call(L_, 0, 1);     // chunk env
    lua_pushvalue(L_, -1);  // chunk env env
    lua_setfenv(L_, -3);    // chunk env

    Budget &b = *budget_;
    b = Budget{};
    b.max_steps = limits_.instructions;
    b.deadline = std::chrono::steady_clock::now() + limits_.time;
    b.armed = true;
    t_budget = &b;
    t_api = &api;
    alloc_->refused = false;
    alloc_->limit = alloc_->used + limits_.memory_bytes;
    lua_sethook(L_, &count_hook, LUA_MASKCOUNT, kHookEvery);

    lua_pushvalue(L_, -2);  // chunk env chunk
    int st = lua_pcall(L_, 0, 0, 0);
    if (st != 0) {
        err = error_from_stack(st, file);
        return false;
    }
    return true;
}

ScriptError Runtime::error_from_stack(int status, const std::string &file) {
    std::string msg = lua_isstring(L_, -1) ? lua_tostring(L_, -1) : "error object is not a string";
    ScriptError e;
    if (budget_->killed) e.code = "timeout";
    else if (status == LUA_ERRMEM || alloc_->refused) e.code = "memory";
    else e.code = "runtime";
    e.message = parse_location(msg, e.file, e.line);
    if (e.file.empty()) e.file = file;
    if (e.code == "memory") e.message = "script memory limit exceeded";
    if (e.code == "timeout") e.message = "script budget exceeded (instructions or time)";
    return e;
}

void Runtime::finish(int base, bool collect) {
    lua_sethook(L_, nullptr, 0, 0);
    budget_->armed = false;
    t_budget = nullptr;
    t_api = nullptr;
    alloc_->limit = 0;
    lua_settop(L_, base);
    lua_gc(L_, collect ? LUA_GCCOLLECT : LUA_GCSTEP, 0);
}

CallResult Runtime::call(const std::string &file, const std::string &source, const std::string &function_name,
                         const std::vector<json> &args, const FunctionTable &api, bool optional) {
    CallResult result;
    const int base = lua_gettop(L_);
    ScriptError err;
    if (!prepare(file, source, api, err)) {
        result.error = err;
        finish(base, true);
        return result;
    }
    lua_pushlstring(L_, function_name.data(), function_name.size());
    lua_rawget(L_, -2);  // chunk env fn
    if (!lua_isfunction(L_, -1)) {
        if (!optional) result.error = ScriptError{"missing_function", file, 0, "defines no function '" + function_name + "'"};
        finish(base, false);
        return result;
    }
    for (const auto &a : args) push_json(L_, a);
    int st = lua_pcall(L_, static_cast<int>(args.size()), 1, 0);
    if (st != 0) {
        result.error = error_from_stack(st, file);
    } else {
        json out;
        size_t budget = 100000;
        std::string e;
        if (to_json(L_, -1, out, 0, budget, e)) result.value = std::move(out);
        else result.error = ScriptError{"bad_result", file, 0, e};
    }
    bool heavy = result.error && (result.error->code == "memory" || result.error->code == "timeout");
    finish(base, heavy);
    return result;
}

bool Runtime::defines(const std::string &file, const std::string &source, const std::string &function_name,
                      const FunctionTable &api) {
    const int base = lua_gettop(L_);
    ScriptError err;
    bool found = false;
    if (prepare(file, source, api, err)) {
        lua_pushlstring(L_, function_name.data(), function_name.size());
        lua_rawget(L_, -2);
        found = lua_isfunction(L_, -1);
    }
    finish(base, false);
    return found;
}

Runtime &thread_runtime() {
    thread_local Runtime runtime;
    return runtime;
}

}  // namespace consilium::lua
