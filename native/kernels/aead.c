/*
 * AEAD and MAC kernels (aead.h): HMAC-SHA256 over parts and AES-256-GCM under a per-salt key, through the OpenSSL
 * that Node links (its symbols and headers are Node's, as for any addon).
 */
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <pthread.h>
#include <string.h>

#include "aead.h"

static const uint8_t zero_nonce[12] = {0};

/* HMAC through OpenSSL 3's EVP_MAC (the HMAC_CTX calls are deprecated): the algorithm is fetched once for the
 * process and shared by every thread (a fetched EVP_MAC is reference-counted and safe to share); each call has its
 * own context. */
static EVP_MAC *hmac_fetched;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static void hmac_fetch(void) { hmac_fetched = EVP_MAC_fetch(NULL, "HMAC", NULL); }
static EVP_MAC *hmac_algorithm(void) {
  pthread_once(&hmac_once, hmac_fetch);
  return hmac_fetched;
}
static const OSSL_PARAM *hmac_sha256_params(void) {
  static char digest[] = "SHA256";
  static const OSSL_PARAM params[] = {
    {OSSL_MAC_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING, digest, sizeof digest - 1, 0},
    OSSL_PARAM_END,
  };
  return params;
}

int vp_hmac_sha256(const uint8_t key[VP_KEY_BYTES], const struct iovec *parts, size_t count, uint8_t mac[VP_ID_BYTES]) {
  size_t mac_len = 0;
  EVP_MAC *hmac = hmac_algorithm();
  EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
  int ok = ctx && EVP_MAC_init(ctx, key, VP_KEY_BYTES, hmac_sha256_params()) == 1;
  for (size_t i = 0; ok && i < count; i++) ok = EVP_MAC_update(ctx, parts[i].iov_base, parts[i].iov_len) == 1;
  ok = ok && EVP_MAC_final(ctx, mac, &mac_len, VP_ID_BYTES) == 1 && mac_len == VP_ID_BYTES;
  EVP_MAC_CTX_free(ctx);
  return ok;
}

/* The per-salt key, HKDF-Expand(root, label ‖ salt, 32): one HMAC block. 1 on success. */
static int derive_key(const uint8_t *root, const vp_aead_ctx_t *ctx, const uint8_t *salt, uint8_t key[VP_KEY_BYTES]) {
  uint8_t info[VP_LABEL_MAX + VP_SALT_BYTES + 1];
  size_t n = ctx->label_len;
  unsigned int mac_len = 0;
  memcpy(info, ctx->label, n);
  memcpy(info + n, salt, VP_SALT_BYTES);
  n += VP_SALT_BYTES;
  info[n++] = 1;
  return HMAC(EVP_sha256(), root, VP_KEY_BYTES, info, n, key, &mac_len) && mac_len == VP_KEY_BYTES;
}

/* prefix ‖ salt ‖ id into `aad`; its length. */
static size_t build_aad(uint8_t aad[VP_PREFIX_MAX + VP_SALT_BYTES + VP_ID_BYTES], const vp_aead_ctx_t *ctx, const uint8_t *salt, const uint8_t *id) {
  memcpy(aad, ctx->prefix, ctx->prefix_len);
  memcpy(aad + ctx->prefix_len, salt, VP_SALT_BYTES);
  memcpy(aad + ctx->prefix_len + VP_SALT_BYTES, id, VP_ID_BYTES);
  return ctx->prefix_len + VP_SALT_BYTES + VP_ID_BYTES;
}

int vp_seal(const uint8_t root[VP_KEY_BYTES], const vp_aead_ctx_t *ctx, const uint8_t salt[VP_SALT_BYTES], const uint8_t id[VP_ID_BYTES],
            const struct iovec *parts, size_t count, uint8_t *out) {
  uint8_t key[VP_KEY_BYTES], aad[VP_PREFIX_MAX + VP_SALT_BYTES + VP_ID_BYTES];
  if (!derive_key(root, ctx, salt, key)) return 0;
  size_t aad_len = build_aad(aad, ctx, salt, id);
  if (out != salt) memmove(out, salt, VP_SALT_BYTES);
  uint8_t *into = out + VP_SALT_BYTES;
  int ok = 0, n = 0;
  EVP_CIPHER_CTX *cipher = EVP_CIPHER_CTX_new();
  if (cipher && EVP_EncryptInit_ex(cipher, EVP_aes_256_gcm(), NULL, key, zero_nonce) == 1 &&
      EVP_EncryptUpdate(cipher, NULL, &n, aad, (int)aad_len) == 1) {
    ok = 1;
    for (size_t i = 0; ok && i < count; i++) {
      const uint8_t *in = parts[i].iov_base;
      size_t len = parts[i].iov_len;
      /* In pieces whose lengths fit an int; in place when the part lies where its ciphertext goes. */
      for (size_t done = 0; ok && done < len;) {
        int piece = len - done > (1u << 30) ? (1 << 30) : (int)(len - done);
        ok = EVP_EncryptUpdate(cipher, into, &n, in + done, piece) == 1 && n == piece;
        into += piece;
        done += (size_t)piece;
      }
    }
    ok = ok && EVP_EncryptFinal_ex(cipher, into, &n) == 1 && n == 0 && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_GET_TAG, VP_TAG_BYTES, into) == 1;
  }
  EVP_CIPHER_CTX_free(cipher);
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

int vp_open_in_place(const uint8_t root[VP_KEY_BYTES], const vp_aead_ctx_t *ctx, const uint8_t id[VP_ID_BYTES], uint8_t *sealed, size_t length) {
  uint8_t *salt = sealed, *data = sealed + VP_SALT_BYTES;
  size_t bytes = length - VP_SEAL_OVERHEAD;
  uint8_t key[VP_KEY_BYTES], aad[VP_PREFIX_MAX + VP_SALT_BYTES + VP_ID_BYTES], tag[VP_TAG_BYTES];
  if (!derive_key(root, ctx, salt, key)) return VP_CRYPTO_FAILED;
  size_t aad_len = build_aad(aad, ctx, salt, id);
  memcpy(tag, data + bytes, VP_TAG_BYTES);
  int ok = 0, n = 0, result = VP_CRYPTO_FAILED;
  EVP_CIPHER_CTX *cipher = EVP_CIPHER_CTX_new();
  if (cipher && EVP_DecryptInit_ex(cipher, EVP_aes_256_gcm(), NULL, key, zero_nonce) == 1 &&
      EVP_DecryptUpdate(cipher, NULL, &n, aad, (int)aad_len) == 1) {
    ok = 1;
    for (size_t done = 0; ok && done < bytes;) {
      int piece = bytes - done > (1u << 30) ? (1 << 30) : (int)(bytes - done);
      ok = EVP_DecryptUpdate(cipher, data + done, &n, data + done, piece) == 1 && n == piece;
      done += (size_t)piece;
    }
    if (ok && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_TAG, VP_TAG_BYTES, tag) == 1)
      result = EVP_DecryptFinal_ex(cipher, data + bytes, &n) == 1 ? 0 : VP_OPEN_AUTH;
  }
  EVP_CIPHER_CTX_free(cipher);
  OPENSSL_cleanse(key, sizeof key);
  return result;
}
