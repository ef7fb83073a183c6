/*
 * Argon2id, version 0x13 (RFC 9106), without secret or associated data: passphrase and salt in, tag out.
 */
#ifndef VAULTPATH_ARGON2_H
#define VAULTPATH_ARGON2_H
#include <stddef.h>
#include <stdint.h>

enum {
  VP_ARGON2_OK = 0,
  VP_ARGON2_EPARAM = -1,    /* parameters outside what this implementation accepts */
  VP_ARGON2_ENOMEM = -2,    /* the block memory could not be allocated */
  VP_ARGON2_ECANCELLED = -3 /* *cancel became non-zero while filling */
};

/* The largest memory accepted, in KiB: 4 GiB. Callers apply their own, tighter bounds first. */
#define VP_ARGON2_MAX_MEMORY_KIB (4u * 1024 * 1024)

/*
 * Derives out_len bytes (4..1024) into out. t >= 1; 1 <= p <= 2^24 - 1; 8p <= m_kib <= VP_ARGON2_MAX_MEMORY_KIB;
 * salt_len >= 8. Uses 4p * floor(m_kib / 4p) KiB of block memory, allocated here and wiped and freed before
 * returning, whatever the outcome. Lanes are filled one after another on the calling thread. cancel may be NULL;
 * otherwise it is read (atomically) every few hundred blocks and a non-zero value stops the fill.
 */
/* VP_ARGON2_OK when vp_argon2id would accept these lengths and costs, else VP_ARGON2_EPARAM. */
int vp_argon2id_check(size_t pwd_len, size_t salt_len, uint32_t t, uint32_t m_kib, uint32_t p, size_t out_len);

int vp_argon2id(const uint8_t *pwd, size_t pwd_len, const uint8_t *salt, size_t salt_len, uint32_t t, uint32_t m_kib,
                uint32_t p, uint8_t *out, size_t out_len, const int32_t *cancel);

#endif
