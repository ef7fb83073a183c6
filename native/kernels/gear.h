/*
 * The chunker's gear-hash scan (src/chunk/fastcdc.ts), its inner loop, over bytes. No N-API.
 */
#ifndef VAULTPATH_KERNELS_GEAR_H
#define VAULTPATH_KERNELS_GEAR_H

#include <stddef.h>
#include <stdint.h>

/*
 * state = [h, mask, zeroFix, zeroSkippable]. Hashes b[i..limit) with h = (h << 1) + gear[byte] (mod 2^32), from
 * h = state[0], and returns the index just past the first byte after which (h & mask) == 0; when there is none, -1,
 * with the hash left in state[0]. With zeroSkippable, a run of 64 or more zero bytes is passed over as the
 * JavaScript scan passes over it (its first 32 bytes hashed, then h = zeroFix, the fixed point).
 */
int64_t vp_gear_scan(const uint8_t *b, size_t i, size_t limit, int32_t *state, const uint32_t *gear);

#endif
