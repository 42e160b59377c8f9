#include "crypto/sealer.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace consilium {
namespace {

TEST(Sealer, RoundTripAndPlaceBinding) {
    Sealer s(KeyRing::generate("k"));
    std::string sealed = s.seal("patient text", "event:c1:5");
    EXPECT_EQ(sealed.find("patient text"), std::string::npos);
    EXPECT_EQ(s.open(sealed, "event:c1:5"), "patient text");
    EXPECT_FALSE(s.open(sealed, "event:c1:6")) << "ciphertext moved to another row must not open";
    std::string tampered = sealed;
    tampered[tampered.size() - 1] ^= 1;
    EXPECT_FALSE(s.open(tampered, "event:c1:5"));
    EXPECT_FALSE(s.open("garbage", "x"));
    EXPECT_NE(s.seal("same", "a"), s.seal("same", "a")) << "fresh nonce every time";
}

TEST(Sealer, RotationKeepsOldValuesReadable) {
    KeyRing ring = KeyRing::generate("k");
    Sealer s(ring);
    std::string old = s.seal("v1", "x");
    ring.rotate();
    s.replace(ring);
    std::string fresh = s.seal("v2", "x");
    EXPECT_NE(Sealer::key_id_of(old), Sealer::key_id_of(fresh));
    EXPECT_EQ(s.open(old, "x"), "v1");
    EXPECT_EQ(s.open(fresh, "x"), "v2");
}

TEST(KeyRing, FileIsCreatedPrivateAndReloaded) {
    test::TempDir dir;
    auto path = dir.path() / "keys" / "data.keys";
    KeyRing a = KeyRing::load(path, nullptr, true);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    KeyRing b = KeyRing::load(path, nullptr, false);
    EXPECT_EQ(a.current_id(), b.current_id());
    EXPECT_EQ(a.current_key(), b.current_key());
    EXPECT_THROW(KeyRing::load(dir.path() / "missing", nullptr, false), KeyError);
    EXPECT_THROW(KeyRing::parse("{\"current\": \"k1\", \"keys\": {\"k1\": \"c2hvcnQ=\"}}", "t"), KeyError);
}

}  // namespace
}  // namespace consilium
