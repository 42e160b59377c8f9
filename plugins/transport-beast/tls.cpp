// The server's TLS context (Boost.Asio SSL on OpenSSL), loaded once from tls_cert_file and
// tls_key_file. The configuration follows Mozilla's "intermediate" profile: TLS 1.2 and 1.3
// only, forward-secret AEAD suites, the client's preference among them, no compression, no
// renegotiation. Sessions resume from OpenSSL's in-process cache (clients on bad networks
// reconnect often); tickets are off, so there is no long-lived ticket key to rotate.
#include "core.hpp"

#include <consilium/sdk/options.hpp>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>

namespace consilium::beast_transport {

namespace {

// TLS 1.2 suites of Mozilla's intermediate profile (TLS 1.3 uses OpenSSL's defaults, all AEAD).
constexpr const char *kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

// The most recent OpenSSL error of this thread, or what the error code says.
std::string openssl_reason(const beast::error_code &ec) {
    unsigned long e = ERR_peek_last_error();
    std::string out;
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out = buf;
    } else if (ec) {
        out = ec.message();
    } else {
        out = "unknown error";
    }
    ERR_clear_error();
    return out;
}

}  // namespace

std::unique_ptr<ssl::context> make_tls_context(const ServerOptions &opt) {
    auto refuse = [&](const char *key, const std::string &file, const std::string &why) {
        throw sdk::Error(CS_E_INVALID, sdk::join_path(opt.config_path, key) + ": cannot load \"" +
                                           file + "\": " + why);
    };
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX *native = ctx->native_handle();
    ERR_clear_error();
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use | ssl::context::no_compression);
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1)
        throw sdk::Error(CS_E_INTERNAL, "TLS: the OpenSSL library refused the cipher configuration: " +
                                            openssl_reason({}));
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_clear_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_dh_auto(native, 1);

    beast::error_code ec;
    ctx->use_certificate_chain_file(opt.tls_cert_file, ec);
    if (ec) refuse("tls_cert_file", opt.tls_cert_file, openssl_reason(ec) + " (expected a PEM certificate chain)");
    ctx->use_private_key_file(opt.tls_key_file, ssl::context::pem, ec);
    // OpenSSL 3 already compares the key with the certificate while loading it.
    if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
        refuse("tls_key_file", opt.tls_key_file,
               "the key does not match the certificate of tls_cert_file (" + openssl_reason(ec) + ")");
    if (ec) refuse("tls_key_file", opt.tls_key_file, openssl_reason(ec) + " (expected a PEM private key)");
    if (SSL_CTX_check_private_key(native) != 1)
        refuse("tls_key_file", opt.tls_key_file,
               "the key does not match the certificate of tls_cert_file (" + openssl_reason({}) + ")");
    return ctx;
}

}  // namespace consilium::beast_transport
