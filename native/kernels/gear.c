/* The chunker's gear-hash scan over bytes (gear.h). */
#include <stdint.h>
#include <string.h>

#include "gear.h"

/* The length of the run of zero bytes at b[from..limit). */
static size_t zero_run(const uint8_t *b, size_t from, size_t limit) {
  size_t i = from;
  while (i + 8 <= limit) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    if (w != 0) break;
    i += 8;
  }
  while (i < limit && b[i] == 0) i++;
  return i - from;
}

int64_t vp_gear_scan(const uint8_t *b, size_t i, size_t limit, int32_t *state, const uint32_t *gear) {
  uint32_t h = (uint32_t)state[0];
  const uint32_t mask = (uint32_t)state[1], zero_fix = (uint32_t)state[2];
  const int zero_skippable = state[3] != 0;
  while (i < limit) {
    if (b[i] == 0 && zero_skippable) {
      size_t run = zero_run(b, i, limit);
      if (run >= 64) {
        for (size_t stop = i + 32; i < stop; i++) {
          h = (h << 1) + gear[0];
          if ((h & mask) == 0) return (int64_t)i + 1;
        }
        i += run - 32;
        h = zero_fix;
        continue;
      }
    }
    /* In blocks, as the JavaScript scan, so that a zero run starting mid-buffer is noticed within 4 KiB. */
    size_t block_end = limit - i < 4096 ? limit : i + 4096;
    for (; i < block_end; i++) {
      h = (h << 1) + gear[b[i]];
      if ((h & mask) == 0) return (int64_t)i + 1;
    }
  }
  state[0] = (int32_t)h;
  return -1;
}
