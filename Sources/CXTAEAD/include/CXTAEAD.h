// In-place ChaCha20-Poly1305 for xtransport data packets.
//
// swift-crypto's ChaChaPoly API allocates a context and several Data buffers, and copies the
// message in and out, on every call. At hundreds of thousands of packets per second that is
// most of the cost of sealing. The same BoringSSL AEAD that swift-crypto links is used here
// directly: one context per key, sealing in place and opening into a caller's buffer.
#ifndef CXTAEAD_H
#define CXTAEAD_H

#include <stddef.h>
#include <stdint.h>

/// An opaque ChaCha20-Poly1305 key schedule (BoringSSL's EVP_AEAD_CTX).
typedef struct xt_aead xt_aead;

/// Key length (32), nonce length (12) and tag length (16) in bytes.
enum { XT_AEAD_KEY_BYTES = 32, XT_AEAD_NONCE_BYTES = 12, XT_AEAD_TAG_BYTES = 16 };

/// A context for `key` (32 bytes), or NULL if out of memory. Free with `xt_aead_free`.
xt_aead *xt_aead_new(const uint8_t *key);
void xt_aead_free(xt_aead *aead);

/// Encrypts `length` bytes at `text` in place and writes the 16-byte tag right after them.
/// Returns 1 on success.
int xt_aead_seal(const xt_aead *aead, const uint8_t *nonce, uint8_t *text, size_t length,
                 const uint8_t *ad, size_t ad_length);

/// Authenticates and decrypts `sealed_length` bytes (ciphertext then 16-byte tag) into `out`,
/// which has room for `sealed_length - 16` bytes (it may equal `sealed`). Returns 1 if the
/// packet is authentic; on 0 the contents of `out` are undefined.
int xt_aead_open(const xt_aead *aead, const uint8_t *nonce, const uint8_t *sealed, size_t sealed_length,
                 const uint8_t *ad, size_t ad_length, uint8_t *out);

#endif
