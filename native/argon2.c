/*
 * Argon2id version 0x13, written from RFC 9106.
 *
 * Memory is p lanes of q = m' / p blocks of 1024 bytes (m' = 4p * floor(m / 4p)); each lane is cut into 4 slices.
 * Every pass fills slice by slice, and within a slice lane by lane: a block only references blocks of other lanes
 * from finished slices, so filling the lanes of one slice in turn gives the same result as filling them at once.
 * The first half of the first pass takes its reference indices from generated address blocks (data-independent,
 * the Argon2i part), everything after from the previous block (data-dependent, the Argon2d part).
 *
 * The memory is mapped on its own and, where the kernel offers transparent huge pages on request, asked to be backed
 * by 2 MiB pages: 64 MiB then costs about 32 page faults instead of 16,384, and the random reads of the Argon2d part
 * miss the TLB far less. Measured on 64 MiB, t = 1, in Node: 33 ms against 60 ms (medians of 8); the kernel may
 * stall the first fault to assemble huge pages where memory is fragmented (one run of eight took 139 ms). The
 * bytes are the same.
 */
#include "argon2.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "blake2b.h"

#define BLOCK_WORDS 128
#define BLOCK_BYTES 1024
#define SLICES 4
#define ARGON2_VERSION 0x13
#define ARGON2_TYPE_ID 2

typedef struct {
  uint64_t v[BLOCK_WORDS];
} block_t;

static inline void store32_le(uint8_t *p, uint32_t x) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(x >> (8 * i));
}

static inline uint64_t load64_le(const uint8_t *p) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
  return x;
}

static inline void store64_le(uint8_t *p, uint64_t x) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(x >> (8 * i));
}

static void update32(vp_blake2b_state *s, uint32_t x) {
  uint8_t b[4];
  store32_le(b, x);
  vp_blake2b_update(s, b, 4);
}

/* H' (RFC 9106 section 3.3): BLAKE2b stretched to out_len bytes, over LE32(out_len) || in. */
static void hash_long(uint8_t *out, uint32_t out_len, const uint8_t *in, size_t in_len) {
  vp_blake2b_state s;
  if (out_len <= BLAKE2B_MAX_DIGEST) {
    vp_blake2b_init(&s, out_len);
    update32(&s, out_len);
    vp_blake2b_update(&s, in, in_len);
    vp_blake2b_final(&s, out);
    return;
  }
  uint8_t v[BLAKE2B_MAX_DIGEST];
  vp_blake2b_init(&s, BLAKE2B_MAX_DIGEST);
  update32(&s, out_len);
  vp_blake2b_update(&s, in, in_len);
  vp_blake2b_final(&s, v);
  memcpy(out, v, 32);
  size_t pos = 32, left = out_len - 32;
  /* Each intermediate hash contributes its first half; the last one, of the remaining length, all of itself. */
  while (left > BLAKE2B_MAX_DIGEST) {
    vp_blake2b_init(&s, BLAKE2B_MAX_DIGEST);
    vp_blake2b_update(&s, v, sizeof v);
    vp_blake2b_final(&s, v);
    memcpy(out + pos, v, 32);
    pos += 32;
    left -= 32;
  }
  vp_blake2b_init(&s, left);
  vp_blake2b_update(&s, v, sizeof v);
  vp_blake2b_final(&s, out + pos);
  vp_wipe(v, sizeof v);
}

static inline uint64_t rotr64(uint64_t x, unsigned n) { return (x >> n) | (x << (64 - n)); }

/* BLAKE2b's mixing with the additions replaced by a + b + 2 * lo32(a) * lo32(b) (RFC 9106 section 3.6). */
static inline uint64_t fma_lo(uint64_t a, uint64_t b) {
  return a + b + 2 * (uint64_t)(uint32_t)a * (uint64_t)(uint32_t)b;
}

#define GB(a, b, c, d)        \
  do {                        \
    a = fma_lo(a, b);         \
    d = rotr64(d ^ a, 32);    \
    c = fma_lo(c, d);         \
    b = rotr64(b ^ c, 24);    \
    a = fma_lo(a, b);         \
    d = rotr64(d ^ a, 16);    \
    c = fma_lo(c, d);         \
    b = rotr64(b ^ c, 63);    \
  } while (0)

/* The permutation P over sixteen words v0..v15, given as indices into z. */
#define PERMUTE(z, i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11, i12, i13, i14, i15) \
  do {                                                                                  \
    GB(z[i0], z[i4], z[i8], z[i12]);                                                    \
    GB(z[i1], z[i5], z[i9], z[i13]);                                                    \
    GB(z[i2], z[i6], z[i10], z[i14]);                                                   \
    GB(z[i3], z[i7], z[i11], z[i15]);                                                   \
    GB(z[i0], z[i5], z[i10], z[i15]);                                                   \
    GB(z[i1], z[i6], z[i11], z[i12]);                                                   \
    GB(z[i2], z[i7], z[i8], z[i13]);                                                    \
    GB(z[i3], z[i4], z[i9], z[i14]);                                                    \
  } while (0)

/*
 * The compression function G (RFC 9106 section 3.5): R = X ^ Y; P over each row of eight 16-byte registers, then
 * over each column; the result is that ^ R, stored into out or, when xor_into is set, XORed into out's old value
 * (passes after the first, version 0x13).
 */
static void compress_block(const block_t *x, const block_t *y, block_t *out, int xor_into) {
  uint64_t r[BLOCK_WORDS], z[BLOCK_WORDS];
  for (int i = 0; i < BLOCK_WORDS; i++) r[i] = z[i] = x->v[i] ^ y->v[i];
  for (int i = 0; i < 8; i++) {
    uint64_t *w = z + 16 * i;
    PERMUTE(w, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }
  for (int i = 0; i < 8; i++) {
    uint64_t *w = z + 2 * i;
    PERMUTE(w, 0, 1, 16, 17, 32, 33, 48, 49, 64, 65, 80, 81, 96, 97, 112, 113);
  }
  if (xor_into)
    for (int i = 0; i < BLOCK_WORDS; i++) out->v[i] ^= z[i] ^ r[i];
  else
    for (int i = 0; i < BLOCK_WORDS; i++) out->v[i] = z[i] ^ r[i];
}

typedef struct {
  block_t *mem;
  uint32_t lanes, lane_len, segment_len, passes, blocks;
  const int32_t *cancel;
} instance_t;

static int cancelled(const instance_t *in) {
  return in->cancel && __atomic_load_n(in->cancel, __ATOMIC_RELAXED) != 0;
}

/* Fills one segment (one slice of one lane) of pass `pass`. Returns non-zero when cancelled. */
static int fill_segment(const instance_t *in, uint32_t pass, uint32_t slice, uint32_t lane) {
  const int data_independent = pass == 0 && slice < 2;
  const uint32_t first = (pass == 0 && slice == 0) ? 2 : 0;
  block_t zero, input, address, tmp;
  if (data_independent) {
    memset(&zero, 0, sizeof zero);
    memset(&input, 0, sizeof input);
    input.v[0] = pass;
    input.v[1] = lane;
    input.v[2] = slice;
    input.v[3] = in->blocks;
    input.v[4] = in->passes;
    input.v[5] = ARGON2_TYPE_ID;
  }
  block_t *const base = in->mem + (size_t)lane * in->lane_len;
  int stop = 0;
  for (uint32_t j = first; j < in->segment_len; j++) {
    if ((j & 255) == 0 && cancelled(in)) {
      stop = 1;
      break;
    }
    const uint32_t col = slice * in->segment_len + j;
    const uint32_t prev = col == 0 ? in->lane_len - 1 : col - 1;
    uint64_t pseudo;
    if (data_independent) {
      /* One address block per 128 blocks of the segment; its counter starts at 1. */
      if (j == first || j % BLOCK_WORDS == 0) {
        input.v[6]++;
        compress_block(&zero, &input, &tmp, 0);
        compress_block(&zero, &tmp, &address, 0);
      }
      pseudo = address.v[j % BLOCK_WORDS];
    } else {
      pseudo = base[prev].v[0];
    }
    const uint32_t j1 = (uint32_t)pseudo, j2 = (uint32_t)(pseudo >> 32);
    const uint32_t ref_lane = (pass == 0 && slice == 0) ? lane : j2 % in->lanes;
    const int same_lane = ref_lane == lane;
    /*
     * The reference set: in the first pass, the finished slices (of the reference lane) plus, in this lane, the
     * blocks of this segment so far; later, the last three slices likewise. The previous block is never in it;
     * nor, at the start of a segment, the last block of another lane's set.
     */
    uint64_t area;
    if (pass == 0)
      area = same_lane ? (uint64_t)slice * in->segment_len + j - 1 : (uint64_t)slice * in->segment_len - (j == 0);
    else
      area = same_lane ? (uint64_t)(in->lane_len - in->segment_len) + j - 1 : (uint64_t)(in->lane_len - in->segment_len) - (j == 0);
    const uint64_t x = ((uint64_t)j1 * j1) >> 32;
    const uint64_t rel = area - 1 - ((area * x) >> 32);
    const uint64_t start = pass == 0 ? 0 : (uint64_t)((slice + 1) % SLICES) * in->segment_len;
    const uint32_t ref_col = (uint32_t)((start + rel) % in->lane_len);
    const block_t *ref = in->mem + (size_t)ref_lane * in->lane_len + ref_col;
    compress_block(&base[prev], ref, &base[col], pass != 0);
  }
  if (data_independent) {
    vp_wipe(&input, sizeof input);
    vp_wipe(&address, sizeof address);
    vp_wipe(&tmp, sizeof tmp);
  }
  return stop;
}

int vp_argon2id_check(size_t pwd_len, size_t salt_len, uint32_t t, uint32_t m_kib, uint32_t p, size_t out_len) {
  if (t < 1 || p < 1 || p > 0xffffffu || m_kib < 8u * p || m_kib > VP_ARGON2_MAX_MEMORY_KIB || salt_len < 8 ||
      salt_len > 0xffffffffu || pwd_len > 0xffffffffu || out_len < 4 || out_len > BLOCK_BYTES)
    return VP_ARGON2_EPARAM;
  return VP_ARGON2_OK;
}

int vp_argon2id(const uint8_t *pwd, size_t pwd_len, const uint8_t *salt, size_t salt_len, uint32_t t, uint32_t m_kib,
                uint32_t p, uint8_t *out, size_t out_len, const int32_t *cancel) {
  if (vp_argon2id_check(pwd_len, salt_len, t, m_kib, p, out_len) != VP_ARGON2_OK) return VP_ARGON2_EPARAM;

  instance_t in;
  in.lanes = p;
  in.blocks = 4 * p * (m_kib / (4 * p));
  in.lane_len = in.blocks / p;
  in.segment_len = in.lane_len / SLICES;
  in.passes = t;
  in.cancel = cancel;
  const size_t bytes = (size_t)in.blocks * sizeof(block_t);
  void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return VP_ARGON2_ENOMEM;
#ifdef MADV_HUGEPAGE
  madvise(mem, bytes, MADV_HUGEPAGE); /* advice only: without huge pages it runs the same, slower */
#endif
  in.mem = mem;

  /* H0 = BLAKE2b-512(LE32(p, tag length, m, t, version, type) || LE32(len) || P || LE32(len) || S || two empty fields). */
  uint8_t seed[BLAKE2B_MAX_DIGEST + 8];
  vp_blake2b_state s;
  vp_blake2b_init(&s, BLAKE2B_MAX_DIGEST);
  update32(&s, p);
  update32(&s, (uint32_t)out_len);
  update32(&s, m_kib);
  update32(&s, t);
  update32(&s, ARGON2_VERSION);
  update32(&s, ARGON2_TYPE_ID);
  update32(&s, (uint32_t)pwd_len);
  vp_blake2b_update(&s, pwd, pwd_len);
  update32(&s, (uint32_t)salt_len);
  vp_blake2b_update(&s, salt, salt_len);
  update32(&s, 0); /* secret K */
  update32(&s, 0); /* associated data X */
  vp_blake2b_final(&s, seed);

  /* The first two blocks of each lane: H'(H0 || LE32(column) || LE32(lane)). */
  uint8_t bytes_block[BLOCK_BYTES];
  for (uint32_t l = 0; l < p; l++) {
    for (uint32_t c = 0; c < 2; c++) {
      store32_le(seed + BLAKE2B_MAX_DIGEST, c);
      store32_le(seed + BLAKE2B_MAX_DIGEST + 4, l);
      hash_long(bytes_block, BLOCK_BYTES, seed, sizeof seed);
      block_t *b = in.mem + (size_t)l * in.lane_len + c;
      for (int i = 0; i < BLOCK_WORDS; i++) b->v[i] = load64_le(bytes_block + 8 * i);
    }
  }
  vp_wipe(seed, sizeof seed);

  int rc = VP_ARGON2_OK;
  for (uint32_t pass = 0; pass < t && rc == VP_ARGON2_OK; pass++)
    for (uint32_t slice = 0; slice < SLICES && rc == VP_ARGON2_OK; slice++)
      for (uint32_t l = 0; l < p && rc == VP_ARGON2_OK; l++)
        if (fill_segment(&in, pass, slice, l)) rc = VP_ARGON2_ECANCELLED;

  if (rc == VP_ARGON2_OK) {
    /* The tag: H'(XOR of every lane's last block). */
    block_t final = in.mem[in.lane_len - 1];
    for (uint32_t l = 1; l < p; l++)
      for (int i = 0; i < BLOCK_WORDS; i++) final.v[i] ^= in.mem[(size_t)l * in.lane_len + in.lane_len - 1].v[i];
    for (int i = 0; i < BLOCK_WORDS; i++) store64_le(bytes_block + 8 * i, final.v[i]);
    hash_long(out, (uint32_t)out_len, bytes_block, BLOCK_BYTES);
    vp_wipe(&final, sizeof final);
  }
  vp_wipe(bytes_block, sizeof bytes_block);
  vp_wipe(in.mem, bytes);
  munmap(in.mem, bytes);
  return rc;
}
