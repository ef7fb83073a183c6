/*
 * A whole small file of a restore written by folder descriptor and single names, never by a path: a folder above
 * swapped for a link while it works cannot send the file elsewhere. No N-API.
 */
#ifndef VAULTPATH_KERNELS_WRITE_FILE_H
#define VAULTPATH_KERNELS_WRITE_FILE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "sizes.h"

/* The code for a temporary name swapped for another file or a link while it was written (src/native/addon.ts
 * WRITE_SWAPPED). */
#define VP_WRITE_SWAPPED (-1)

typedef struct {
  int dir;
  char temp[NAME_BYTES];
  char name[NAME_BYTES];
  struct iovec *iov; /* the chunks, in order; advanced past what a short write wrote */
  uint32_t iov_count;
  mode_t mode;
  struct timespec times[2];
  int rc; /* 0, VP_WRITE_SWAPPED or an errno; set before the call to refuse the file without a system call */
} vp_write_file_t;

/*
 * fstatat(dir, name, AT_SYMLINK_NOFOLLOW): a folder there → EISDIR, nothing created; openat(dir, temp,
 * O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600); pwritev the chunks from offset 0; fchmod(mode); futimens;
 * fstatat(dir, temp) still the file written, else VP_WRITE_SWAPPED (not renamed, not removed); close;
 * renameat(dir, temp, dir, name). After a failure other than VP_WRITE_SWAPPED the temporary file it created is
 * removed.
 */
void vp_write_file(vp_write_file_t *job);

#endif
