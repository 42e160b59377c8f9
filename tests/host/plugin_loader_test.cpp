// The host refuses each broken plugin with a message naming the file, what is wrong and what to
// do, and keeps the good ones.
#include "plugin_loader.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace consilium::host {
namespace {

namespace fs = std::filesystem;

fs::path broken(const std::string &name) { return fs::path(CONSILIUM_BROKEN_PLUGIN_DIR) / ("provider_broken_" + name + ".so"); }

std::string refusal(const std::string &name) {
    try {
        load_plugin(broken(name));
    } catch (const PluginError &e) {
        return e.what();
    }
    return "";
}

TEST(PluginLoader, LoadsTheBuiltPlugins) {
    auto p = load_plugin(test::plugin_file("provider", "mock"));
    ASSERT_NE(p.descriptor, nullptr);
    EXPECT_STREQ(p.descriptor->id, "mock");
    EXPECT_EQ(p.descriptor->kind, static_cast<uint32_t>(CS_PLUGIN_PROVIDER));
    EXPECT_NE(std::string(p.descriptor->build_signature).find("consilium-sdk"), std::string::npos);
}

TEST(PluginLoader, RefusesAnotherMajorNamingFileVersionsAndFix) {
    std::string why = refusal("wrong_major");
    EXPECT_NE(why.find(broken("wrong_major").string()), std::string::npos) << why;
    EXPECT_NE(why.find("ABI 99.0"), std::string::npos) << why;
    EXPECT_NE(why.find("speaks ABI " + std::to_string(CS_ABI_MAJOR) + "." + std::to_string(CS_ABI_MINOR)), std::string::npos) << why;
    EXPECT_NE(why.find("rebuild"), std::string::npos) << why;
}

TEST(PluginLoader, RefusesANewerMinor) {
    std::string why = refusal("newer_minor");
    EXPECT_NE(why.find("newer than this host"), std::string::npos) << why;
    EXPECT_NE(why.find("upgrade the host"), std::string::npos) << why;
}

TEST(PluginLoader, RefusesMissingEntryPointAndNullDescriptor) {
    std::string why = refusal("no_entry");
    EXPECT_NE(why.find("has no entry point"), std::string::npos) << why;
    EXPECT_NE(why.find("CONSILIUM_PROVIDER_PLUGIN"), std::string::npos) << why;
    EXPECT_NE(refusal("null_descriptor").find("returned no descriptor"), std::string::npos);
    EXPECT_NE(refusal("small_vtable").find("function table is"), std::string::npos);
}

TEST(PluginLoader, RefusesAFileThatIsNotALibrary) {
    test::TempDir dir;
    auto f = dir.path() / "junk.so";
    std::FILE *fp = std::fopen(f.c_str(), "w");
    std::fputs("not an ELF file", fp);
    std::fclose(fp);
    try {
        load_plugin(f);
        FAIL() << "loaded junk";
    } catch (const PluginError &e) {
        EXPECT_NE(std::string(e.what()).find("cannot be loaded"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(f.string()), std::string::npos) << e.what();
    }
}

TEST(PluginLoader, InitFailureIsReportedWithThePluginsMessage) {
    auto p = load_plugin(broken("init_fails"));
    ThreadPool pool(1);
    metrics::Registry reg;
    try {
        PluginInstance inst(p.descriptor, p.library, std::make_unique<HostServices>("x", pool, reg, "/tmp"),
                            "providers.x", "{}");
        FAIL() << "create() should have failed";
    } catch (const PluginError &e) {
        std::string why = e.what();
        EXPECT_NE(why.find("providers.x"), std::string::npos) << why;
        EXPECT_NE(why.find("license server"), std::string::npos) << why;
    }
    pool.stop();
}

TEST(PluginRegistry, SkipsBrokenOnesAndKeepsTheRest) {
    // Everything broken but the twins, next to the real plugins.
    test::TempDir dir;
    for (const char *n : {"wrong_major", "newer_minor", "null_descriptor", "small_vtable", "no_entry", "init_fails"})
        fs::copy_file(broken(n), dir.path() / broken(n).filename());
    PluginRegistry reg;
    reg.scan({CONSILIUM_TEST_PLUGIN_DIR, dir.path()});
    EXPECT_EQ(reg.problems().size(), 5u) << "init_fails loads fine; it fails only when created";
    EXPECT_NE(reg.find(CS_PLUGIN_PROVIDER, "mock"), nullptr);
    EXPECT_NE(reg.find(CS_PLUGIN_STORAGE, "sqlite"), nullptr);
    EXPECT_NE(reg.find(CS_PLUGIN_TRANSPORT, "beast"), nullptr);
}

TEST(PluginRegistry, DuplicateIdsAreFatalAndNamed) {
    PluginRegistry reg;
    try {
        reg.scan({}, {broken("duplicate_a"), broken("duplicate_b")});
        FAIL() << "two plugins with one id were accepted";
    } catch (const PluginError &e) {
        std::string why = e.what();
        EXPECT_NE(why.find("two provider plugins named 'twin'"), std::string::npos) << why;
        EXPECT_NE(why.find("duplicate_a"), std::string::npos) << why;
        EXPECT_NE(why.find("duplicate_b"), std::string::npos) << why;
    }
}

}  // namespace
}  // namespace consilium::host
