// The chat channel refuses bad frames with an error frame and a code, and stays usable.
#include "chat_client.hpp"

#include <gtest/gtest.h>

namespace consilium::test {
namespace {

class ChatProtocol : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        host_ = new HostProcess({"providers.mock.tokens_per_second=0", "providers.mock.first_token_ms=0",
                                 "chat.max_frame_bytes=4096", "chat.max_text_chars=500", "chat.auth_timeout_ms=1500"});
        ASSERT_TRUE(host_->start()) << host_->log();
        token_ = new_guest(host_->port()).access_token;
        ASSERT_FALSE(token_.empty());
    }
    static void TearDownTestSuite() {
        EXPECT_EQ(host_->stop(), 0);
        delete host_;
    }
    // Sends raw text and expects an error frame with `code`; then checks the connection still
    // answers a ping.
    void expect_error(ChatClient &chat, const std::string &raw, const std::string &code) {
        ASSERT_TRUE(chat.send_raw(raw));
        auto f = chat.next();
        ASSERT_TRUE(f) << "no answer to " << raw << "\n" << host_->log();
        EXPECT_EQ(f->value("type", ""), "error") << f->dump();
        EXPECT_EQ(f->value("code", ""), code) << "for " << raw.substr(0, 80) << ": " << f->dump();
        EXPECT_FALSE(f->value("message", "").empty());
        ASSERT_TRUE(chat.send({{"type", "ping"}}));
        auto pong = chat.next();
        ASSERT_TRUE(pong);
        EXPECT_EQ(pong->value("type", ""), "pong");
    }
    static HostProcess *host_;
    static std::string token_;
};
HostProcess *ChatProtocol::host_ = nullptr;
std::string ChatProtocol::token_;

TEST_F(ChatProtocol, MalformedFramesGetErrorsAndTheConnectionLives) {
    ChatClient chat(host_->port());
    ASSERT_TRUE(chat.connect(token_));
    expect_error(chat, "this is not json", "bad_json");
    expect_error(chat, "{\"type\": \"message\", ", "bad_json");
    expect_error(chat, "[1, 2, 3]", "bad_frame");
    expect_error(chat, "{}", "missing_field");
    expect_error(chat, R"({"type": 42})", "missing_field");
    expect_error(chat, R"({"type": "dance"})", "unknown_type");
    expect_error(chat, R"({"type": "message", "text": "hi"})", "missing_field");
    expect_error(chat, R"({"type": "message", "id": "a"})", "missing_field");
    expect_error(chat, R"({"type": "message", "id": "a", "text": "   "})", "invalid_field");
    expect_error(chat, R"({"type": "message", "id": "a", "text": "x", "consultation_id": 7})", "invalid_field");
    expect_error(chat, R"({"type": "message", "id": "", "text": "x"})", "invalid_field");
    expect_error(chat, R"({"type": "message", "id": "a", "text": "x", "attachments": [{"type": "exe"}]})", "invalid_field");
    expect_error(chat, R"({"type": "cancel"})", "missing_field");
    expect_error(chat, R"({"type": "resume"})", "missing_field");
    expect_error(chat, R"({"type": "resume", "consultation_id": "c_x", "after_seq": -1})", "invalid_field");
    expect_error(chat, R"({"type": "auth"})", "missing_field");
    expect_error(chat, R"({"type": "message", "id": "big", "text": ")" + std::string(600, 'a') + "\"}", "too_large");
    expect_error(chat, std::string(5000, ' ') + "{}", "too_large");
    expect_error(chat, R"({"type": "cancel", "stream_id": "s_nope"})", "not_found");
    expect_error(chat, R"({"type": "resume", "consultation_id": "c_nope", "after_seq": 0})", "not_found");

    // Still a working consultation channel after all that.
    ASSERT_TRUE(chat.send({{"type", "message"}, {"id", "ok-1"}, {"text", "I keep getting headaches in the afternoon"}}));
    auto frames = chat.until_stream_end();
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().value("type", ""), "stream_end");
    EXPECT_EQ(frames.back().value("stop_reason", ""), "end_turn");
}

TEST_F(ChatProtocol, BinaryFramesAreRefused) {
    ChatClient chat(host_->port());
    ASSERT_TRUE(chat.connect(token_));
    ASSERT_TRUE(chat.ws().send_binary(std::string("\x00\x01\x02", 3)));
    auto f = chat.next();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->value("type", ""), "error");
    EXPECT_EQ(f->value("code", ""), "bad_json");
    // Invalid UTF-8 inside JSON, in a binary frame (a text frame would break RFC 6455).
    ASSERT_TRUE(chat.ws().send_binary("{\"type\": \"message\", \"id\": \"u\", \"text\": \"\xff\xfe\"}"));
    f = chat.next();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->value("code", ""), "bad_json");
    ASSERT_TRUE(chat.send({{"type", "ping"}}));
    EXPECT_EQ(chat.next()->value("type", ""), "pong");
}

TEST_F(ChatProtocol, InvalidUtf8InATextFrameClosesWith1007) {
    // RFC 6455: text frames are UTF-8; the transport fails the connection with 1007.
    ChatClient chat(host_->port());
    ASSERT_TRUE(chat.connect(token_));
    ASSERT_TRUE(chat.send_raw("{\"type\": \"ping\", \"x\": \"\xff\xfe\"}"));
    ASSERT_TRUE(chat.ws().wait_closed(std::chrono::seconds(5)));
    ASSERT_TRUE(chat.ws().close_info());
    EXPECT_EQ(chat.ws().close_info()->code, 1007);
    // The server is fine: a new connection works.
    ChatClient again(host_->port());
    ASSERT_TRUE(again.connect(token_));
}

TEST_F(ChatProtocol, AuthFrameAndRefusals) {
    ChatClient chat(host_->port());
    ASSERT_TRUE(chat.connect_anonymous());
    // Before auth, only ping and auth are accepted.
    expect_error(chat, R"({"type": "message", "id": "a", "text": "hello"})", "unauthorized");
    expect_error(chat, R"({"type": "auth", "token": "not.a.token"})", "unauthorized");
    // A forged token (signature of another key) is refused.
    std::string forged = token_.substr(0, token_.rfind('.') + 1) + "AAAA";
    expect_error(chat, json{{"type", "auth"}, {"token", forged}}.dump(), "unauthorized");
    ASSERT_TRUE(chat.send({{"type", "auth"}, {"token", token_}}));
    auto ready = chat.next();
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->value("type", ""), "ready") << ready->dump();
}

TEST_F(ChatProtocol, UnauthenticatedConnectionsAreClosed) {
    ChatClient chat(host_->port());
    ASSERT_TRUE(chat.connect_anonymous());
    ASSERT_TRUE(chat.ws().wait_closed(std::chrono::seconds(5)));
    ASSERT_TRUE(chat.ws().close_info());
    EXPECT_EQ(chat.ws().close_info()->code, 4001);
}

}  // namespace
}  // namespace consilium::test
