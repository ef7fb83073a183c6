/*
 * Descriptor-relative file calls for the restore: every name is one entry of a folder the caller holds open, so a
 * folder renamed away or swapped for a symbolic link while the restore works can never send a call elsewhere.
 * Node's fs has no openat family; these are thin synchronous wrappers (each is one system call on a local file
 * system, cheaper than a thread-pool hand-off).
 *
 * Names are Buffers (the exact bytes, for names that are not UTF-8) or strings, checked by vp_read_name: one
 * component, never `.`, `..`, empty, or holding `/` or NUL. A name that fails the check returns EINVAL (or
 * ENAMETOOLONG) before any system call. Arguments of the wrong type throw a TypeError.
 *
 *   fsOpenDir(dirfd, name): fd | -errno     the folder `name` in `dirfd`, O_DIRECTORY|O_NOFOLLOW: openat2 with
 *                                           RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS where the
 *                                           kernel has it, else openat. A link there is ELOOP, a file ENOTDIR.
 *   fsMkdir(dirfd, name, mode): errno       mkdirat (never follows a link at `name`: EEXIST)
 *   fsCreate(dirfd, name, mode): fd | -errno  openat O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC
 *   fsRename(dirfd, from, to): errno        renameat within one folder (replaces a link at `to`, never follows it)
 *   fsSymlink(target, dirfd, name): errno   symlinkat; `target` is bytes or a string, stored as is
 *   fsUnlink(dirfd, name, folder): errno    unlinkat (AT_REMOVEDIR when `folder`)
 *   fsStat(dirfd, name | null, out): errno  fstatat(AT_SYMLINK_NOFOLLOW), or fstat(dirfd) for null, into
 *                                           `out` (a BigInt64Array of 4): mode, device, inode, owner uid
 *   fsSetTimes(fd, seconds, nanoseconds): errno  futimens, access = modification; seconds may be negative
 *                                           (before 1970), 0 <= nanoseconds < 10^9
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kernels/fs_at.h"
#include "napi_job.h"

static napi_value fail(napi_env env, const char *usage) {
  napi_throw_type_error(env, "EINVAL", usage);
  return NULL;
}

static napi_value int_value(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

/* Reads the arguments into a descriptor (argv[at]) and a name (argv[at+1]); 1, 0 (wrong types), or -errno. */
static int fd_and_name(napi_env env, napi_value *argv, size_t at, int *fd, char *name) {
  double v;
  if (!get_whole(env, argv[at], 0, INT_MAX, &v)) return 0;
  *fd = (int)v;
  return vp_read_name(env, argv[at + 1], name);
}

/* A descriptor, a single name and a mode (its permission bits kept), every number checked whole before it is converted. */
static int fd_name_mode(napi_env env, napi_value *argv, int *fd, char *name, mode_t *mode) {
  double m;
  if (!get_whole(env, argv[2], 0, 0177777, &m)) return 0;
  *mode = (mode_t)m & 07777;
  return fd_and_name(env, argv, 0, fd, name);
}

static napi_value fs_open_dir(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[NAME_BYTES];
  int dirfd, ok;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || (ok = fd_and_name(env, argv, 0, &dirfd, name)) == 0)
    return fail(env, "fsOpenDir(dirfd: number, name: Buffer | string)");
  return int_value(env, ok < 0 ? ok : vp_open_dir_at(dirfd, name));
}

static napi_value fs_mkdir(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[NAME_BYTES];
  int dirfd, ok;
  mode_t mode;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || (ok = fd_name_mode(env, argv, &dirfd, name, &mode)) == 0)
    return fail(env, "fsMkdir(dirfd: number, name: Buffer | string, mode: number)");
  if (ok < 0) return int_value(env, -ok);
  return int_value(env, mkdirat(dirfd, name, mode) == 0 ? 0 : errno);
}

static napi_value fs_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[NAME_BYTES];
  int dirfd, ok;
  mode_t mode;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || (ok = fd_name_mode(env, argv, &dirfd, name, &mode)) == 0)
    return fail(env, "fsCreate(dirfd: number, name: Buffer | string, mode: number)");
  if (ok < 0) return int_value(env, ok);
  int fd;
  do fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)(mode & 0777));
  while (fd < 0 && errno == EINTR);
  return int_value(env, fd >= 0 ? fd : -errno);
}

static napi_value fs_rename(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char from[NAME_BYTES], to[NAME_BYTES];
  int dirfd, ok, ok2;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || (ok = fd_and_name(env, argv, 0, &dirfd, from)) == 0 ||
      (ok2 = vp_read_name(env, argv[2], to)) == 0)
    return fail(env, "fsRename(dirfd: number, from: Buffer | string, to: Buffer | string)");
  if (ok < 0 || ok2 < 0) return int_value(env, ok < 0 ? -ok : -ok2);
  return int_value(env, renameat(dirfd, from, dirfd, to) == 0 ? 0 : errno);
}

static napi_value fs_symlink(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[NAME_BYTES];
  int dirfd, ok;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || (ok = fd_and_name(env, argv, 1, &dirfd, name)) == 0)
    return fail(env, "fsSymlink(target: Buffer | string, dirfd: number, name: Buffer | string)");
  if (ok < 0) return int_value(env, -ok);
  /* The target is stored, never resolved here: any bytes but NUL, up to PATH_BYTES - 1. */
  char *target = malloc(PATH_BYTES);
  if (!target) return int_value(env, ENOMEM);
  bool is_typed = false;
  size_t length = 0;
  int rc = 0;
  if (napi_is_typedarray(env, argv[0], &is_typed) == napi_ok && is_typed) {
    napi_typedarray_type type;
    void *bytes = NULL;
    if (napi_get_typedarray_info(env, argv[0], &type, &length, &bytes, NULL, NULL) != napi_ok || type != napi_uint8_array) rc = -1;
    else if (length >= PATH_BYTES) rc = ENAMETOOLONG;
    else {
      if (length > 0) memcpy(target, bytes, length);
      target[length] = 0;
    }
  } else {
    int r = vp_read_path(env, argv[0], target);
    if (r == 0) rc = -1;
    else if (r < 0) rc = -r;
    else length = strlen(target);
  }
  if (rc == -1) {
    free(target);
    return fail(env, "fsSymlink(target: Buffer | string, dirfd: number, name: Buffer | string)");
  }
  if (rc == 0 && (length == 0 || strlen(target) != length)) rc = EINVAL;
  if (rc == 0 && symlinkat(target, dirfd, name) != 0) rc = errno;
  free(target);
  return int_value(env, rc);
}

static napi_value fs_unlink(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[NAME_BYTES];
  int dirfd, ok;
  bool folder = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || (ok = fd_and_name(env, argv, 0, &dirfd, name)) == 0 ||
      napi_get_value_bool(env, argv[2], &folder) != napi_ok)
    return fail(env, "fsUnlink(dirfd: number, name: Buffer | string, folder: boolean)");
  if (ok < 0) return int_value(env, -ok);
  return int_value(env, unlinkat(dirfd, name, folder ? AT_REMOVEDIR : 0) == 0 ? 0 : errno);
}

static napi_value fs_stat(napi_env env, napi_callback_info info) {
  static const char *usage = "fsStat(dirfd: number, name: Buffer | string | null, out: BigInt64Array)";
  size_t argc = 3;
  napi_value argv[3];
  char name[NAME_BYTES];
  double fd_number;
  napi_valuetype kind;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || !get_whole(env, argv[0], 0, INT_MAX, &fd_number) ||
      !vp_typed_array(env, argv[2], napi_bigint64_array, &length, &data) || length < 4 || napi_typeof(env, argv[1], &kind) != napi_ok)
    return fail(env, usage);
  int dirfd = (int)fd_number;
  struct stat st;
  int rc;
  if (kind == napi_null) {
    rc = fstat(dirfd, &st) == 0 ? 0 : errno;
  } else {
    int ok = vp_read_name(env, argv[1], name);
    if (ok == 0) return fail(env, usage);
    rc = ok < 0 ? -ok : fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
  }
  if (rc == 0) {
    int64_t *out = data;
    out[0] = (int64_t)st.st_mode;
    out[1] = (int64_t)st.st_dev;
    out[2] = (int64_t)st.st_ino;
    out[3] = (int64_t)st.st_uid;
  }
  return int_value(env, rc);
}

static napi_value fs_set_times(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  double fd, sec, nsec;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || !get_whole(env, argv[0], 0, INT_MAX, &fd) ||
      !get_whole(env, argv[1], -VP_MAX_SAFE, VP_MAX_SAFE, &sec) || !get_whole(env, argv[2], 0, 999999999, &nsec))
    return fail(env, "fsSetTimes(fd: number, seconds: number, nanoseconds: 0..999999999)");
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = (time_t)sec;
  times[0].tv_nsec = times[1].tv_nsec = (long)nsec;
  return int_value(env, futimens((int)fd, times) == 0 ? 0 : errno);
}

void vp_register_fs_at(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback cb; } fns[] = {
      {"fsOpenDir", fs_open_dir}, {"fsMkdir", fs_mkdir},   {"fsCreate", fs_create}, {"fsRename", fs_rename},
      {"fsSymlink", fs_symlink},  {"fsUnlink", fs_unlink}, {"fsStat", fs_stat},     {"fsSetTimes", fs_set_times},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
}
