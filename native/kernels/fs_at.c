/* A folder opened by descriptor and one name, never through a link (fs_at.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_at.h"

/* 1 while openat2 may work here; 0 once it said ENOSYS (an older kernel) or EPERM (a filter refused it). */
static int openat2_usable = 1;

int vp_open_dir_at(int dirfd, const char *name) {
#ifdef SYS_openat2
  if (openat2_usable) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd;
    do fd = syscall(SYS_openat2, dirfd, name, &how, sizeof how);
    while (fd < 0 && errno == EINTR);
    if (fd >= 0) return (int)fd;
    if (errno != ENOSYS && errno != EPERM) return -errno;
    openat2_usable = 0;
  }
#endif
  int fd;
  do fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  return fd >= 0 ? fd : -errno;
}
