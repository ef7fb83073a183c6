/*
 * AEAD and MAC kernels over bytes, on the OpenSSL that Node links: HMAC-SHA256 over parts, and AES-256-GCM under a
 * key derived per salt, sealing from parts or opening in place. No N-API, no vault format: the key-derivation label
 * and the associated data's leading bytes are given by the caller (src/crypto/envelope.ts owns them).
 *
 *   key    = HKDF-Expand(root, label ‖ salt, 32) = HMAC-SHA256(root, label ‖ salt ‖ 0x01)   (RFC 5869 §2.3)
 *   aad    = prefix ‖ salt ‖ id
 *   sealed = salt ‖ AES-256-GCM(key, nonce 0¹², aad, plaintext) ‖ tag
 *
 * Every function is safe to call from any thread at once.
 */
#ifndef VAULTPATH_KERNELS_AEAD_H
#define VAULTPATH_KERNELS_AEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VP_KEY_BYTES 32
#define VP_SALT_BYTES 32
#define VP_TAG_BYTES 16
#define VP_ID_BYTES 32
#define VP_LABEL_MAX 64
#define VP_PREFIX_MAX 16

/* What a sealed message carries besides its ciphertext. */
#define VP_SEAL_OVERHEAD (VP_SALT_BYTES + VP_TAG_BYTES)

/* Returned by vp_open_in_place for a tag that does not verify, and by the open kernels as an outcome. */
#define VP_OPEN_AUTH (-2)
/* Returned when the crypto library itself failed (not a refusal of the bytes). */
#define VP_CRYPTO_FAILED (-100)

/* The caller's format: the key-derivation label and the associated data's prefix (copied, fixed size). */
typedef struct {
  uint8_t label[VP_LABEL_MAX];
  size_t label_len;
  uint8_t prefix[VP_PREFIX_MAX];
  size_t prefix_len;
} vp_aead_ctx_t;

/* HMAC-SHA256(key, parts in order) into `mac`. 1 on success. */
int vp_hmac_sha256(const uint8_t key[VP_KEY_BYTES], const struct iovec *parts, size_t count, uint8_t mac[VP_ID_BYTES]);

/* Seals the parts under (root, ctx, salt, id) into `out`, which receives salt ‖ ciphertext ‖ tag (VP_SEAL_OVERHEAD
 * bytes more than the parts). A single part may lie at out + VP_SALT_BYTES (sealed in place). 1 on success. */
int vp_seal(const uint8_t root[VP_KEY_BYTES], const vp_aead_ctx_t *ctx, const uint8_t salt[VP_SALT_BYTES], const uint8_t id[VP_ID_BYTES],
            const struct iovec *parts, size_t count, uint8_t *out);

/* Authenticates and decrypts `sealed` (salt ‖ ciphertext ‖ tag, `length` >= VP_SEAL_OVERHEAD bytes) in place: the
 * plaintext is then at sealed + VP_SALT_BYTES. 0, VP_OPEN_AUTH, or VP_CRYPTO_FAILED. */
int vp_open_in_place(const uint8_t root[VP_KEY_BYTES], const vp_aead_ctx_t *ctx, const uint8_t id[VP_ID_BYTES], uint8_t *sealed, size_t length);

#endif
