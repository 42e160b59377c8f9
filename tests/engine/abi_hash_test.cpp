// The plugin ABI cannot change unnoticed: the headers' hash is recorded per ABI version. A change
// to abi.h or storage_ops.h without a new CS_ABI_MINOR (or MAJOR) fails here.
#include <consilium/abi.h>

#include "util/ids.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace {

std::string read(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// One line per released ABI version: its headers' SHA-256. Never edit a line; add one.
const std::map<std::pair<int, int>, std::string> kReleased = {
    {{1, 0}, "50db7df0e8737d62b16da1d08ff24e51363bf67759e2a8f712cadeafc6dac945"},
    {{1, 1}, "4f3b85ac28a006465239122110a878928da1e7ac392a4fc7ca586a0ba5341c68"},  // provider voice
    {{1, 2}, "94d20d1ad765ce61ec9397d8233c6583f29db6e4cc4261add2c0e056f9756022"},  // sessions, audit, re-encryption ops
};

TEST(Abi, HeadersMatchTheRecordedHashOfThisVersion) {
    std::string dir = std::string(CONSILIUM_TEST_SOURCE_DIR) + "/engine/include/consilium/";
    std::string text = read(dir + "abi.h") + read(dir + "storage_ops.h");
    ASSERT_GT(text.size(), 1000u);
    std::string hash = consilium::hex_encode(consilium::sha256(text));
    auto it = kReleased.find({CS_ABI_MAJOR, CS_ABI_MINOR});
    ASSERT_NE(it, kReleased.end()) << "ABI " << CS_ABI_MAJOR << "." << CS_ABI_MINOR
                                   << " is new: add {{" << CS_ABI_MAJOR << ", " << CS_ABI_MINOR << "}, \"" << hash
                                   << "\"} to kReleased in " << __FILE__;
    EXPECT_EQ(it->second, hash) << "consilium/abi.h or storage_ops.h changed but CS_ABI_MINOR did not: bump it (or "
                                   "CS_ABI_MAJOR for an incompatible change), note it in docs/plugins.md, and record "
                                   "the new hash as a new line";
}

TEST(Abi, StructsStartWithTheirSize) {
    // Growable structs keep struct_size first so readers can check it before newer fields.
    EXPECT_EQ(offsetof(cs_host_api, struct_size), 0u);
    EXPECT_EQ(offsetof(cs_provider_vtable, struct_size), 0u);
    EXPECT_EQ(offsetof(cs_transport_vtable, struct_size), 0u);
    EXPECT_EQ(offsetof(cs_storage_vtable, struct_size), 0u);
    EXPECT_EQ(offsetof(cs_stream_event, struct_size), 0u);
    EXPECT_EQ(offsetof(cs_front_api, struct_size), 0u);
}

}  // namespace
