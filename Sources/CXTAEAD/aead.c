// Thin wrappers over the BoringSSL EVP_AEAD functions that swift-crypto builds and links
// (its copy carries the CCryptoBoringSSL_ symbol prefix). Only declarations are needed here:
// the definitions come from swift-crypto's CCryptoBoringSSL target in the same link.
#include "CXTAEAD.h"

typedef struct evp_aead_st EVP_AEAD;
typedef struct evp_aead_ctx_st EVP_AEAD_CTX;

extern const EVP_AEAD *CCryptoBoringSSL_EVP_aead_chacha20_poly1305(void);
extern const EVP_AEAD *CCryptoBoringSSL_EVP_aead_aes_256_gcm(void);
extern int CCryptoBoringSSL_EVP_has_aes_hardware(void);
extern EVP_AEAD_CTX *CCryptoBoringSSL_EVP_AEAD_CTX_new(const EVP_AEAD *aead, const uint8_t *key, size_t key_len,
                                                       size_t tag_len);
extern void CCryptoBoringSSL_EVP_AEAD_CTX_free(EVP_AEAD_CTX *ctx);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter(const EVP_AEAD_CTX *ctx, uint8_t *out, uint8_t *out_tag,
                                                      size_t *out_tag_len, size_t max_out_tag_len,
                                                      const uint8_t *nonce, size_t nonce_len, const uint8_t *in,
                                                      size_t in_len, const uint8_t *extra_in, size_t extra_in_len,
                                                      const uint8_t *ad, size_t ad_len);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_open_gather(const EVP_AEAD_CTX *ctx, uint8_t *out, const uint8_t *nonce,
                                                     size_t nonce_len, const uint8_t *in, size_t in_len,
                                                     const uint8_t *in_tag, size_t in_tag_len, const uint8_t *ad,
                                                     size_t ad_len);

xt_aead *xt_aead_new(int cipher, const uint8_t *key) {
    const EVP_AEAD *aead;
    switch (cipher) {
    case XT_AEAD_CHACHA20_POLY1305: aead = CCryptoBoringSSL_EVP_aead_chacha20_poly1305(); break;
    case XT_AEAD_AES_256_GCM: aead = CCryptoBoringSSL_EVP_aead_aes_256_gcm(); break;
    default: return 0;
    }
    return (xt_aead *)CCryptoBoringSSL_EVP_AEAD_CTX_new(aead, key, XT_AEAD_KEY_BYTES, XT_AEAD_TAG_BYTES);
}

int xt_aead_has_aes_hardware(void) { return CCryptoBoringSSL_EVP_has_aes_hardware(); }

void xt_aead_free(xt_aead *aead) { CCryptoBoringSSL_EVP_AEAD_CTX_free((EVP_AEAD_CTX *)aead); }

int xt_aead_seal(const xt_aead *aead, const uint8_t *nonce, uint8_t *text, size_t length, const uint8_t *ad,
                 size_t ad_length) {
    size_t tag_length = 0;
    return CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter((const EVP_AEAD_CTX *)aead, text, text + length, &tag_length,
                                                      XT_AEAD_TAG_BYTES, nonce, XT_AEAD_NONCE_BYTES, text, length,
                                                      NULL, 0, ad, ad_length) == 1 &&
           tag_length == XT_AEAD_TAG_BYTES;
}

int xt_aead_open(const xt_aead *aead, const uint8_t *nonce, const uint8_t *sealed, size_t sealed_length,
                 const uint8_t *ad, size_t ad_length, uint8_t *out) {
    if (sealed_length < XT_AEAD_TAG_BYTES) return 0;
    size_t length = sealed_length - XT_AEAD_TAG_BYTES;
    return CCryptoBoringSSL_EVP_AEAD_CTX_open_gather((const EVP_AEAD_CTX *)aead, out, nonce, XT_AEAD_NONCE_BYTES,
                                                     sealed, length, sealed + length, XT_AEAD_TAG_BYTES, ad,
                                                     ad_length);
}
