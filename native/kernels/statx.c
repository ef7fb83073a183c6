/* File attributes by path and by descriptor (statx.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "statx.h"

void vp_statx_begin(vp_statx_walk_t *walk) {
  walk->dir_len = 0;
  walk->dir_fd = -1;
  walk->check_read = geteuid() != 0;
}

void vp_statx_end(vp_statx_walk_t *walk) {
  if (walk->dir_fd >= 0) close(walk->dir_fd);
  walk->dir_fd = -1;
}

void vp_statx(vp_statx_walk_t *walk, const char *path, double *f) {
  int at = AT_FDCWD;
  const char *name = path;
  const char *slash = strrchr(path, '/');
  if (slash != NULL && slash[1] != '\0') {
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (walk->dir_fd < 0 || len != walk->dir_len || memcmp(walk->dir, path, len) != 0) {
      if (walk->dir_fd >= 0) close(walk->dir_fd);
      memcpy(walk->dir, path, len);
      walk->dir[len] = '\0';
      walk->dir_len = len;
      walk->dir_fd = open(walk->dir, O_PATH | O_DIRECTORY | O_CLOEXEC); /* on failure the whole path is looked up, as before */
    }
    if (walk->dir_fd >= 0) {
      at = walk->dir_fd;
      name = slash + 1;
    }
  }
  struct statx st;
  if (statx(at, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, &st) != 0) {
    f[F_ERRNO] = errno;
    return;
  }
  f[F_MODE] = st.stx_mode;
  f[F_NLINK] = st.stx_nlink;
  f[F_SIZE] = (double)st.stx_size;
  f[F_BLOCKS] = (double)st.stx_blocks;
  f[F_INO_HI] = (double)(st.stx_ino >> 32);
  f[F_INO_LO] = (double)(st.stx_ino & 0xffffffffu);
  f[F_DEV_MAJOR] = st.stx_dev_major;
  f[F_DEV_MINOR] = st.stx_dev_minor;
  f[F_MTIME_SEC] = (double)st.stx_mtime.tv_sec;
  f[F_MTIME_NSEC] = st.stx_mtime.tv_nsec;
  f[F_CTIME_SEC] = (double)st.stx_ctime.tv_sec;
  f[F_CTIME_NSEC] = st.stx_ctime.tv_nsec;
  /* The attributes the rules use all sit in the low 32 bits. */
  f[F_ATTRIBUTES] = (double)(st.stx_attributes & 0xffffffffu);
  f[F_ATTRIBUTES_MASK] = (double)(st.stx_attributes_mask & 0xffffffffu);
  f[F_UID] = st.stx_uid;
  f[F_GID] = st.stx_gid;
  if (walk->check_read && S_ISREG(st.stx_mode) && faccessat(at, name, R_OK, AT_EACCESS) != 0) f[F_READ_ERRNO] = errno;
}

long vp_data_extents(int fd, double *ext, size_t max) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  size_t n = 0;
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* only a hole remains */
      return -1; /* EINVAL: not supported here */
    }
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    if (n == max - 1) hole = st.st_size;
    ext[n * 2] = (double)data;
    ext[n * 2 + 1] = (double)hole;
    n++;
    pos = hole;
  }
  return (long)n;
}
