// In-place AEAD for xtransport data packets: ChaCha20-Poly1305, or AES-256-GCM where both
// ends have AES hardware.
//
// swift-crypto's ChaChaPoly API allocates a context and several Data buffers, and copies the
// message in and out, on every call. At hundreds of thousands of packets per second that is
// most of the cost of sealing. The same BoringSSL AEAD that swift-crypto links is used here
// directly: one context per key, sealing in place and opening into a caller's buffer.
#ifndef CXTAEAD_H
#define CXTAEAD_H

#include <stddef.h>
#include <stdint.h>

/// An opaque key schedule (BoringSSL's EVP_AEAD_CTX).
typedef struct xt_aead xt_aead;

/// The packet ciphers, numbered as on the wire.
enum { XT_AEAD_CHACHA20_POLY1305 = 1, XT_AEAD_AES_256_GCM = 2 };

/// Key length (32), nonce length (12) and tag length (16) in bytes.
enum { XT_AEAD_KEY_BYTES = 32, XT_AEAD_NONCE_BYTES = 12, XT_AEAD_TAG_BYTES = 16 };

/// A context for `cipher` (XT_AEAD_…) and `key` (32 bytes), or NULL if out of memory or the
/// cipher is unknown. Free with `xt_aead_free`.
xt_aead *xt_aead_new(int cipher, const uint8_t *key);

/// 1 if this CPU runs AES-GCM in hardware (AES-NI and CLMUL, or the ARMv8 crypto extension).
int xt_aead_has_aes_hardware(void);
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
