/* A whole small file written by folder descriptor and single names (write_file.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h> /* renameat */
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "write_file.h"

/* Writes every iovec at offsets 0, 1, ... in order, continuing after short writes. 0 or the errno. */
static int write_all(int fd, struct iovec *iov, uint32_t count) {
  off_t at = 0;
  uint32_t i = 0;
  while (i < count && iov[i].iov_len == 0) i++;
  while (i < count) {
    int n = count - i > IOV_MAX ? IOV_MAX : (int)(count - i);
    ssize_t w = pwritev(fd, iov + i, n, at);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    at += w;
    size_t left = (size_t)w;
    while (i < count && left >= iov[i].iov_len) {
      left -= iov[i].iov_len;
      i++;
    }
    if (left > 0) { /* a short write inside iov[i]: continue from where it stopped */
      iov[i].iov_base = (char *)iov[i].iov_base + left;
      iov[i].iov_len -= left;
    }
    while (i < count && iov[i].iov_len == 0) i++;
  }
  return 0;
}

void vp_write_file(vp_write_file_t *job) {
  if (job->rc != 0) return; /* refused when it was read: a name that is not one safe name */
  struct stat st;
  if (fstatat(job->dir, job->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
    job->rc = EISDIR;
    return;
  }
  int fd;
  do fd = openat(job->dir, job->temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    job->rc = errno; /* not created: whatever is at temp is not ours to remove */
    return;
  }
  int rc = write_all(fd, job->iov, job->iov_count);
  if (rc == 0 && fchmod(fd, job->mode) != 0) rc = errno;
  if (rc == 0 && futimens(fd, job->times) != 0) rc = errno;
  if (rc == 0) {
    struct stat mine, there;
    if (fstat(fd, &mine) != 0) rc = errno;
    else if (fstatat(job->dir, job->temp, &there, AT_SYMLINK_NOFOLLOW) != 0 || there.st_dev != mine.st_dev || there.st_ino != mine.st_ino)
      rc = VP_WRITE_SWAPPED;
  }
  if (close(fd) != 0 && rc == 0 && errno != EINTR) rc = errno;
  if (rc == 0 && renameat(job->dir, job->temp, job->dir, job->name) != 0) rc = errno;
  if (rc != 0 && rc != VP_WRITE_SWAPPED) unlinkat(job->dir, job->temp, 0);
  job->rc = rc;
}
