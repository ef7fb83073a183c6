/*
 * BLAKE2b (RFC 7693), unkeyed, with any digest length from 1 to 64 bytes: the hash Argon2 is built on.
 */
#ifndef VAULTPATH_BLAKE2B_H
#define VAULTPATH_BLAKE2B_H
#include <stddef.h>
#include <stdint.h>

#define BLAKE2B_BLOCK_BYTES 128
#define BLAKE2B_MAX_DIGEST 64

typedef struct {
  uint64_t h[8];
  uint64_t t[2]; /* bytes hashed so far, 128-bit counter */
  uint8_t buf[BLAKE2B_BLOCK_BYTES];
  size_t buf_len;
  size_t digest_len;
} vp_blake2b_state;

/* Returns 0, or -1 when digest_len is not in 1..64. */
int vp_blake2b_init(vp_blake2b_state *s, size_t digest_len);
void vp_blake2b_update(vp_blake2b_state *s, const void *data, size_t len);
/* Writes digest_len bytes and wipes the state. */
void vp_blake2b_final(vp_blake2b_state *s, uint8_t *out);

/* Overwrites memory in a way the compiler may not drop as a dead store. */
void vp_wipe(void *p, size_t len);

#endif
