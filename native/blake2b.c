/*
 * BLAKE2b as specified in RFC 7693: 64-bit words, 12 rounds, 128-byte blocks. Written from the RFC; only the
 * unkeyed form is needed (Argon2 feeds everything through the message).
 */
#include "blake2b.h"

#include <string.h>

static const uint64_t IV[8] = {
  0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
  0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

/* RFC 7693 section 2.7; rounds 10 and 11 reuse the first two rows. */
static const uint8_t SIGMA[12][16] = {
  {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
  {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
  {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
  {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
  {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
  {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
  {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
  {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
  {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
  {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
  {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
  {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static void *(*volatile wipe_memset)(void *, int, size_t) = memset;

void vp_wipe(void *p, size_t len) {
  if (p && len) wipe_memset(p, 0, len);
}

static inline uint64_t rotr64(uint64_t x, unsigned n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64_le(const uint8_t *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

#define MIX(a, b, c, d, x, y)           \
  do {                                  \
    v[a] = v[a] + v[b] + (x);           \
    v[d] = rotr64(v[d] ^ v[a], 32);     \
    v[c] = v[c] + v[d];                 \
    v[b] = rotr64(v[b] ^ v[c], 24);     \
    v[a] = v[a] + v[b] + (y);           \
    v[d] = rotr64(v[d] ^ v[a], 16);     \
    v[c] = v[c] + v[d];                 \
    v[b] = rotr64(v[b] ^ v[c], 63);     \
  } while (0)

static void compress(vp_blake2b_state *s, const uint8_t block[BLAKE2B_BLOCK_BYTES], int last) {
  uint64_t m[16], v[16];
  for (int i = 0; i < 16; i++) m[i] = load64_le(block + 8 * i);
  for (int i = 0; i < 8; i++) {
    v[i] = s->h[i];
    v[i + 8] = IV[i];
  }
  v[12] ^= s->t[0];
  v[13] ^= s->t[1];
  if (last) v[14] = ~v[14];
  for (int r = 0; r < 12; r++) {
    const uint8_t *z = SIGMA[r];
    MIX(0, 4, 8, 12, m[z[0]], m[z[1]]);
    MIX(1, 5, 9, 13, m[z[2]], m[z[3]]);
    MIX(2, 6, 10, 14, m[z[4]], m[z[5]]);
    MIX(3, 7, 11, 15, m[z[6]], m[z[7]]);
    MIX(0, 5, 10, 15, m[z[8]], m[z[9]]);
    MIX(1, 6, 11, 12, m[z[10]], m[z[11]]);
    MIX(2, 7, 8, 13, m[z[12]], m[z[13]]);
    MIX(3, 4, 9, 14, m[z[14]], m[z[15]]);
  }
  for (int i = 0; i < 8; i++) s->h[i] ^= v[i] ^ v[i + 8];
  vp_wipe(m, sizeof m);
  vp_wipe(v, sizeof v);
}

static void add_count(vp_blake2b_state *s, uint64_t n) {
  s->t[0] += n;
  if (s->t[0] < n) s->t[1]++;
}

int vp_blake2b_init(vp_blake2b_state *s, size_t digest_len) {
  if (digest_len < 1 || digest_len > BLAKE2B_MAX_DIGEST) return -1;
  memset(s, 0, sizeof *s);
  for (int i = 0; i < 8; i++) s->h[i] = IV[i];
  /* Parameter block: digest length, key length 0, fanout 1, depth 1. */
  s->h[0] ^= 0x01010000ULL ^ (uint64_t)digest_len;
  s->digest_len = digest_len;
  return 0;
}

void vp_blake2b_update(vp_blake2b_state *s, const void *data, size_t len) {
  const uint8_t *in = data;
  while (len > 0) {
    /* A full buffer is compressed only once more input arrives: the last block needs the final flag. */
    if (s->buf_len == BLAKE2B_BLOCK_BYTES) {
      add_count(s, BLAKE2B_BLOCK_BYTES);
      compress(s, s->buf, 0);
      s->buf_len = 0;
    }
    size_t take = BLAKE2B_BLOCK_BYTES - s->buf_len;
    if (take > len) take = len;
    memcpy(s->buf + s->buf_len, in, take);
    s->buf_len += take;
    in += take;
    len -= take;
  }
}

void vp_blake2b_final(vp_blake2b_state *s, uint8_t *out) {
  add_count(s, s->buf_len);
  memset(s->buf + s->buf_len, 0, BLAKE2B_BLOCK_BYTES - s->buf_len);
  compress(s, s->buf, 1);
  uint8_t full[BLAKE2B_MAX_DIGEST];
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) full[8 * i + j] = (uint8_t)(s->h[i] >> (8 * j));
  memcpy(out, full, s->digest_len);
  vp_wipe(full, sizeof full);
  vp_wipe(s, sizeof *s);
}
