/*
 * File attributes by path and by descriptor, for the scan: statx(2) of an entry (its folder kept open between
 * entries of one folder), and the data regions of an open file. No N-API.
 */
#ifndef VAULTPATH_KERNELS_STATX_H
#define VAULTPATH_KERNELS_STATX_H

#include <stddef.h>

#include "sizes.h"

/* The numbers vp_statx writes per path, in this order (src/scan/probe.ts reads them by these offsets). */
enum {
  F_ERRNO, F_MODE, F_NLINK, F_SIZE, F_BLOCKS, F_INO_HI, F_INO_LO, F_DEV_MAJOR, F_DEV_MINOR,
  F_MTIME_SEC, F_MTIME_NSEC, F_CTIME_SEC, F_CTIME_NSEC, F_ATTRIBUTES, F_ATTRIBUTES_MASK, F_UID, F_GID,
  F_READ_ERRNO, FIELDS
};

/* The folder of the previous path, open: entries of one folder come in a row, and a lookup relative to it walks
 * one component instead of the whole path (10k entries: about 10 ms against 23 ms). Start with dir_fd = -1. */
typedef struct {
  char dir[PATH_BYTES];
  size_t dir_len;
  int dir_fd;
  int check_read; /* faccessat(R_OK) for regular files: not when running as root */
} vp_statx_walk_t;

/* The walk's state before its first path. */
void vp_statx_begin(vp_statx_walk_t *walk);
/* statx(path) without following a link or triggering an automount into f[0..FIELDS); a failure's errno in
 * f[F_ERRNO], the rest zero. */
void vp_statx(vp_statx_walk_t *walk, const char *path, double *f);
/* Closes what the walk holds open. */
void vp_statx_end(vp_statx_walk_t *walk);

/* The data regions of open file `fd` into ext as start, end pairs (at most `max` regions, the last one reaching
 * the end of the file): their count, or -1 when the file system cannot say or `fd` is not a regular file. */
long vp_data_extents(int fd, double *ext, size_t max);

#endif
