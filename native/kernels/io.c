/* Descriptor I/O shared by the kernels (io.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>

#include "io.h"

int pwrite_all(int fd, const uint8_t *data, size_t length, off_t offset, size_t *done) {
  *done = 0;
  while (*done < length) {
    ssize_t n = pwrite(fd, data + *done, length - *done, offset + (off_t)*done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    *done += (size_t)n;
  }
  return 0;
}
