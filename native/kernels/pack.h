/*
 * A pack file written and hashed in one pass: the byte ranges of a staged file, then bytes from memory, to a new file
 * created exclusively, and the SHA-256 of all of it. The bytes come ready-made (the caller lays out the pack); this
 * kernel only copies, hashes and writes them. No N-API.
 */
#ifndef VAULTPATH_KERNELS_PACK_H
#define VAULTPATH_KERNELS_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sizes.h"

typedef struct {
  char path[PATH_BYTES];
  char from[PATH_BYTES]; /* the file the ranges are read from; "" when there are none */
  uint32_t range_count;
  uint64_t *ranges; /* offset, length pairs in `from` */
  const struct iovec *parts;
  uint32_t part_count;
  /* results */
  uint8_t digest[32];
  int ok;  /* the crypto library did its part */
  int err; /* errno of the failed system call, or 0 */
} vp_pack_t;

/*
 * Creates `path` (O_EXCL|O_NOFOLLOW, mode 0644) and writes the ranges of `from`, then the parts, hashing each piece
 * right after reading or copying it. The file is written with O_DIRECT through the calling thread's 4 KiB-aligned
 * buffer (2 MiB, kept between calls), the last partial block without; where the file system refuses O_DIRECT, the
 * ordinary way. A range past the end of `from` is EIO. Not synced. On failure the file may exist, partly written.
 */
void vp_write_pack(vp_pack_t *pack);

#endif
