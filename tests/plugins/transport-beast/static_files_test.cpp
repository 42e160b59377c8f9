// The Beast transport's static files: MIME types, index and single-page-app fallback, what goes
// to the engine instead, and path traversal attempts.
#include "fake_front.hpp"

#include <filesystem>
#include <fstream>

namespace consilium::test {
namespace {

using net::HttpClient;
namespace fs = std::filesystem;

void write_file(const fs::path &p, const std::string &content) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
}

class BeastStatic : public TransportTest {
protected:
    void SetUp() override {
        web_ = dir_.path() / "web";
        write_file(web_ / "index.html", "<html>index</html>");
        write_file(web_ / "app.js", "console.log(1);");
        write_file(web_ / "style.css", "body{}");
        write_file(web_ / "data.json", "{}");
        write_file(web_ / "img" / "logo.png", std::string("\x89PNG\r\n\x1a\n", 8));
        write_file(web_ / "fonts" / "a.woff2", "woff2");
        write_file(web_ / "docs" / "index.html", "<html>docs</html>");
        write_file(web_ / ".env", "SECRET=1");
        write_file(dir_.path() / "secret.txt", "TOP-SECRET");
        fs::create_symlink(dir_.path() / "secret.txt", web_ / "link.txt");
        fs::create_directory_symlink(dir_.path(), web_ / "outside");
        ASSERT_TRUE(start({{"static_dir", web_.string()}}));
    }
    fs::path web_;
};

TEST_F(BeastStatic, ServesFilesWithTheirMimeTypes) {
    HttpClient http(host(), port());
    struct Case {
        const char *target, *type, *body;
    } cases[] = {
        {"/", "text/html; charset=utf-8", "<html>index</html>"},
        {"/index.html", "text/html; charset=utf-8", "<html>index</html>"},
        {"/app.js", "text/javascript; charset=utf-8", "console.log(1);"},
        {"/app.js?v=3", "text/javascript; charset=utf-8", "console.log(1);"},
        {"/style.css", "text/css; charset=utf-8", "body{}"},
        {"/data.json", "application/json", "{}"},
        {"/fonts/a.woff2", "font/woff2", "woff2"},
        {"/docs/", "text/html; charset=utf-8", "<html>docs</html>"},
        {"/docs", "text/html; charset=utf-8", "<html>docs</html>"},
    };
    for (const auto &c : cases) {
        auto r = http.get(c.target);
        EXPECT_EQ(r.status, 200) << c.target << " " << r.error;
        EXPECT_EQ(r.header("content-type"), c.type) << c.target;
        EXPECT_EQ(r.body, c.body) << c.target;
    }
    auto png = http.get("/img/logo.png");
    EXPECT_EQ(png.header("content-type"), "image/png");
    EXPECT_EQ(png.body.size(), 8u);
    EXPECT_TRUE(front_.http_calls().empty()) << "static files went to the engine";
}

TEST_F(BeastStatic, HeadGivesTheLengthWithoutTheBody) {
    HttpClient http(host(), port());
    auto r = http.request("HEAD", "/app.js");
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.header("content-length"), "15");
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(http.get("/style.css").body, "body{}") << "the connection survived the HEAD";
}

TEST_F(BeastStatic, UnknownPagesFallBackToIndexButMissingFilesAre404) {
    HttpClient http(host(), port());
    auto page = http.get("/consultations/42");
    EXPECT_EQ(page.status, 200);
    EXPECT_EQ(page.body, "<html>index</html>");
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");

    auto missing = http.get("/missing.js");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.header("content-type"), "application/json");
    EXPECT_NE(missing.body.find("\"not_found\""), std::string::npos) << missing.body;
}

TEST_F(BeastStatic, ApiHealthAndOtherMethodsGoToTheEngine) {
    HttpClient http(host(), port());
    for (const char *t : {"/v1/specialists", "/v1", "/healthz", "/readyz", "/metrics"}) {
        auto r = http.get(t);
        EXPECT_EQ(r.status, 200) << t;
        EXPECT_EQ(r.header("x-fake"), "yes") << t;
    }
    auto post = http.request("POST", "/app.js", "x");
    EXPECT_EQ(post.header("x-fake"), "yes");
    EXPECT_EQ(front_.http_calls().size(), 6u);
}

TEST_F(BeastStatic, TraversalAttemptsAreRefused) {
    const char *attacks[] = {
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/img/../../secret.txt",
        "/img/%2e%2e/%2e%2e/secret.txt",
        "//etc/passwd",
        "/%2fetc/passwd",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/img/%00.png",
        "/link.txt",
        "/outside/secret.txt",
        "/.env",
        "/%zz",
        "/./index.html",
    };
    for (const char *target : attacks) {
        HttpClient http(host(), port());
        auto r = http.get(target);
        EXPECT_TRUE(r.status == 400 || r.status == 404) << target << " -> " << r.status;
        EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos) << target;
        EXPECT_EQ(r.body.find("SECRET=1"), std::string::npos) << target;
        EXPECT_EQ(r.body.find("root:"), std::string::npos) << target;
    }
    EXPECT_TRUE(front_.http_calls().empty());
}

}  // namespace
}  // namespace consilium::test
