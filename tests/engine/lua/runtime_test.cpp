// The Lua sandbox: allow-listed libraries only, unknown globals are errors, budgets stop loops
// (even through pcall), memory bombs fail the script and not the host, errors carry file:line.
#include "lua/runtime.hpp"

#include <gtest/gtest.h>

namespace consilium::lua {
namespace {

CallResult run(Runtime &rt, const std::string &src, const std::vector<json> &args = {}, const FunctionTable &api = {}) {
    return rt.call("test.lua", src, "f", args, api);
}

TEST(LuaRuntime, CallsAFunctionWithPlainValues) {
    Runtime rt;
    auto r = run(rt, "function f(t) return {sum = t.a + t.b, list = {t.a, t.b}, s = string.upper(t.name)} end",
                 {json{{"a", 2}, {"b", 3}, {"name", "x"}}});
    ASSERT_TRUE(r.ok()) << r.error->format();
    EXPECT_EQ((*r.value)["sum"], 5);
    EXPECT_EQ((*r.value)["list"], json::array({2, 3}));
    EXPECT_EQ((*r.value)["s"], "X");
}

TEST(LuaRuntime, EngineFunctionsAreReachableThroughConsilium) {
    Runtime rt;
    FunctionTable api;
    api["search"] = [](const json &args) { return json::array({args[0].get<std::string>() + "!"}); };
    auto r = run(rt, "function f() return consilium.search('hi') end", {}, api);
    ASSERT_TRUE(r.ok()) << r.error->format();
    EXPECT_EQ(*r.value, json::array({"hi!"}));
}

class Escape : public ::testing::TestWithParam<const char *> {};

TEST_P(Escape, IsRefused) {
    Runtime rt;
    auto r = run(rt, std::string("function f() ") + GetParam() + " end");
    ASSERT_FALSE(r.ok()) << "escaped with: " << GetParam();
    EXPECT_EQ(r.error->code, "runtime") << r.error->format();
}

INSTANTIATE_TEST_SUITE_P(
    Sandbox, Escape,
    ::testing::Values("return io.open('/etc/passwd')", "return os.execute('true')", "return os.getenv('HOME')",
                      "return require('ffi')", "return package.loaded", "return debug.getinfo(1)",
                      "return load('return 1')()", "return loadstring('return 1')()", "return dofile('/etc/passwd')",
                      "return loadfile('/etc/passwd')", "return jit.off()", "return collectgarbage('count')",
                      "return string.dump(f)", "return math.random()", "return getfenv(0)",
                      "return coroutine.create(f)", "return newproxy(true)", "return _G.io",
                      "string.upper = nil", "consilium.search = nil", "return rawset(string, 'upper', nil)",
                      "return setmetatable(string, {})", "return getmetatable('').__index.upper",
                      "return undefined_global_name"));

TEST(LuaRuntime, GlobalsDoNotLeakBetweenCalls) {
    Runtime rt;
    auto r1 = run(rt, "counter = (counter or 0) + 1\nfunction f() return counter end");
    ASSERT_FALSE(r1.ok()) << "reading an unknown global must fail";
    auto r2 = run(rt, "function f() leaked = 42; return 1 end");
    ASSERT_TRUE(r2.ok());
    auto r3 = rt.call("other.lua", "function f() return leaked end", "f", {}, {});
    ASSERT_FALSE(r3.ok()) << "a global set in one call must not be visible in another";
}

TEST(LuaRuntime, InfiniteLoopsAreStoppedEvenInsidePcall) {
    Runtime rt(Limits{2'000'000, std::chrono::milliseconds(200), 8u << 20});
    auto start = std::chrono::steady_clock::now();
    auto r = run(rt, "function f() while true do end end");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->code, "timeout");
    auto r2 = run(rt, "function f() while true do pcall(function() while true do end end) end end");
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error->code, "timeout");
    auto r3 = run(rt, "function f() local function g() return g() end while true do pcall(g) end end");
    ASSERT_FALSE(r3.ok());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    // The runtime is still usable afterwards.
    auto ok = run(rt, "function f() return 1 end");
    EXPECT_TRUE(ok.ok());
}

TEST(LuaRuntime, TightNumericLoopsThatWouldBeJitCompiledAreStopped) {
    Runtime rt(Limits{1'000'000, std::chrono::milliseconds(200), 8u << 20});
    auto r = run(rt, "function f() local x = 0 for i = 1, 1e12 do x = x + i end return x end");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->code, "timeout");
}

TEST(LuaRuntime, AllocationBombsFailTheScriptNotTheHost) {
    Runtime rt(Limits{50'000'000, std::chrono::seconds(5), 4u << 20});
    auto r = run(rt, "function f() local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 1024) .. i end end");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->code, "memory") << r.error->format();
    auto r2 = run(rt, "function f() return string.rep('x', 1e9) end");
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error->code, "memory") << r2.error->format();
    auto r3 = run(rt, "function f() local s = 'x' while true do s = s .. s end end");
    ASSERT_FALSE(r3.ok());
    EXPECT_LT(rt.memory_in_use(), 8u << 20) << "memory must be given back";
    EXPECT_TRUE(run(rt, "function f() return 2 end").ok());
}

TEST(LuaRuntime, ErrorsNameFileAndLine) {
    Runtime rt;
    auto r = rt.call("personas/x.lua", "\n\nfunction f()\n  error('boom')\nend", "f", {}, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->file, "personas/x.lua");
    EXPECT_EQ(r.error->line, 4);
    EXPECT_NE(r.error->message.find("boom"), std::string::npos);
    auto syntax = rt.call("personas/y.lua", "function f(\n  return\n", "f", {}, {});
    ASSERT_FALSE(syntax.ok());
    EXPECT_EQ(syntax.error->code, "syntax");
    EXPECT_GT(syntax.error->line, 0);
    EXPECT_EQ(Runtime::check_syntax("function f() end", "ok.lua"), "");
    EXPECT_NE(Runtime::check_syntax("x = = 1", "bad.lua"), "");
}

TEST(LuaRuntime, MissingFunctionAndBadResults) {
    Runtime rt;
    auto r = rt.call("t.lua", "function g() end", "f", {}, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->code, "missing_function");
    auto opt = rt.call("t.lua", "function g() end", "f", {}, {}, true);
    EXPECT_TRUE(opt.ok());
    EXPECT_FALSE(opt.value.has_value());
    auto cyc = run(rt, "function f() local t = {} t.self = t return t end");
    ASSERT_FALSE(cyc.ok());
    EXPECT_EQ(cyc.error->code, "bad_result");
}

TEST(LuaRuntime, BytecodeIsRefused) {
    Runtime rt;
    auto r = rt.call("b.lua", std::string("\x1bLJ\x02", 4) + "garbage", "f", {}, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->code, "syntax");
}

}  // namespace
}  // namespace consilium::lua
