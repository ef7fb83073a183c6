/* A whole small file read by path and sealed in place (seal_file.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal_file.h"

void vp_seal_file_clear(vp_seal_file_t *job) {
  if (!job->borrowed) free(job->sealed);
  job->sealed = NULL;
  OPENSSL_cleanse(job->seal_key, sizeof job->seal_key);
  OPENSSL_cleanse(job->id_key, sizeof job->id_key);
}

void vp_seal_file(vp_seal_file_t *job) {
  if (job->err != 0) return; /* refused when it was read: a path too long, or with a NUL inside */
  if (!job->borrowed) job->sealed = malloc(VP_SEAL_OVERHEAD + job->size);
  if (!job->sealed) {
    job->err = ENOMEM;
    job->step = "read";
    return;
  }
  /* Not through a symbolic link, and non-blocking, then checked to be a regular file (and, when the caller says
   * which, the very file the scan saw): a FIFO swapped in since the scan must not hold a pool thread, and a link or
   * another file put in its place must not have its bytes stored under this name. */
  int fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) {
    job->err = errno;
    job->step = "open";
    return;
  }
  struct stat first;
  int opened_err = fstat(fd, &first) != 0 ? errno : S_ISDIR(first.st_mode) ? EISDIR : !S_ISREG(first.st_mode) ? EINVAL : 0;
  if (opened_err == 0 && job->check_ident && ((uint64_t)first.st_dev != job->expect_dev || (uint64_t)first.st_ino != job->expect_ino))
    opened_err = ESTALE;
  if (opened_err != 0) {
    job->err = opened_err;
    job->step = "open";
    close(fd);
    return;
  }
  uint8_t *into = job->sealed + VP_SALT_BYTES;
  size_t done = 0;
  while (done < job->size) {
    ssize_t n = pread(fd, into + done, job->size - done, (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      job->err = errno;
      break;
    }
    if (n == 0) break; /* the file shrank; the caller sees the short count and the fstat */
    done += (size_t)n;
  }
  if (job->err == 0 && fstat(fd, &job->st) != 0) job->err = errno;
  close(fd);
  if (job->err != 0) {
    job->step = "read";
    return;
  }
  job->bytes = done;
  struct iovec plain = {.iov_base = into, .iov_len = done};
  if (!vp_hmac_sha256(job->id_key, &plain, 1, job->id) || !vp_seal(job->seal_key, &job->aead, job->salt, job->id, &plain, 1, job->sealed))
    job->crypto_failed = 1;
}

