/*
 * statx(2) in batches, for the scan stage's attribute probe (src/scan/probe-linux.ts).
 *
 * One statx call per entry gives everything the support rules need: file type, link count, size, allocated
 * blocks, device, times, and the inode attributes COMPRESSED, ENCRYPTED and MOUNT_ROOT together with
 * attributes_mask, which says which of those the file system can report at all. Node's fs.lstat calls statx too
 * but drops the attributes. Paths are passed in batches so the JS/C crossing is paid once per batch.
 *
 * statxBatch(paths: (string | Uint8Array)[], out: Float64Array): void
 *   For path i, writes FIELDS numbers at out[i * FIELDS] (see the enum below). A failed call stores its errno
 *   in F_ERRNO and leaves the other fields zero. A path is a string or its bytes (a name that is not UTF-8); one too
 *   long is ENAMETOOLONG and one holding a NUL EINVAL, never cut short. Symbolic links are not followed; automounts are not triggered.
 *   For a regular file, F_READ_ERRNO holds the errno of faccessat(R_OK) with the effective ids (0 = readable),
 *   so a file the backup could not open is known before any data moves. Skipped when running as root: DAC
 *   override lets root read every regular file (a mandatory-access-control denial still shows when the backup
 *   reads the file).

 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "napi_job.h"

enum {
  F_ERRNO, F_MODE, F_NLINK, F_SIZE, F_BLOCKS, F_INO_HI, F_INO_LO, F_DEV_MAJOR, F_DEV_MINOR,
  F_MTIME_SEC, F_MTIME_NSEC, F_CTIME_SEC, F_CTIME_NSEC, F_ATTRIBUTES, F_ATTRIBUTES_MASK, F_UID, F_GID,
  F_READ_ERRNO, FIELDS
};

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/*
 * A path argument, a string (vp_read_path) or its bytes (a Uint8Array), into `out` (PATH_BYTES long): 1 when it fits,
 * 0 when it is neither, or -ENAMETOOLONG / -EINVAL (a NUL inside, or no bytes). Never cut short.
 */
static int read_path_arg(napi_env env, napi_value value, char *out) {
  napi_valuetype kind;
  if (napi_typeof(env, value, &kind) != napi_ok) return 0;
  if (kind == napi_string) return vp_read_path(env, value, out);
  size_t n = 0;
  void *bytes = NULL;
  if (!vp_typed_array(env, value, napi_uint8_array, &n, &bytes)) return 0;
  if (n >= PATH_BYTES) return -ENAMETOOLONG;
  if (n == 0 || memchr(bytes, 0, n) != NULL) return -EINVAL;
  memcpy(out, bytes, n);
  out[n] = 0;
  return 1;
}


static napi_value statx_batch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) return fail(env, "statxBatch(paths, out)");

  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array) return fail(env, "\"paths\" expected an array of strings");
  uint32_t count = 0;
  napi_get_array_length(env, argv[0], &count);
  /* Every element fetched before `out`'s memory is taken: fetching one may run JavaScript (an accessor, a proxy),
   * which could detach the buffer the results go to. */
  napi_value *items = malloc((count ? count : 1) * sizeof *items);
  if (!items) return fail(env, "statxBatch: out of memory");
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, argv[0], i, &items[i]) != napi_ok) {
      free(items);
      return fail(env, "\"paths\" expected an array of strings");
    }
  }

  size_t length = 0;
  void *data = NULL;
  if (!vp_typed_array(env, argv[1], napi_float64_array, &length, &data)) {
    free(items);
    return fail(env, "\"out\" expected a Float64Array");
  }
  if (length < (size_t)count * FIELDS) {
    free(items);
    return fail(env, "\"out\" is too short for the paths given");
  }
  double *out = (double *)data;

  char path[PATH_BYTES];
  const int check_read = geteuid() != 0;
  /* The folder of the previous path, open: entries of one folder come in a row, and a lookup relative to it walks
   * one component instead of the whole path (10k entries: about 10 ms against 23 ms). */
  char dir[PATH_BYTES];
  size_t dir_len = 0;
  int dir_fd = -1;
  for (uint32_t i = 0; i < count; i++) {
    double *f = out + (size_t)i * FIELDS;
    memset(f, 0, sizeof(double) * FIELDS);
    int read = read_path_arg(env, items[i], path);
    if (read != 1) {
      f[F_ERRNO] = read < 0 ? -read : EINVAL;
      continue;
    }
    int at = AT_FDCWD;
    const char *name = path;
    const char *slash = strrchr(path, '/');
    if (slash != NULL && slash[1] != '\0') {
      size_t len = slash == path ? 1 : (size_t)(slash - path);
      if (dir_fd < 0 || len != dir_len || memcmp(dir, path, len) != 0) {
        if (dir_fd >= 0) close(dir_fd);
        memcpy(dir, path, len);
        dir[len] = '\0';
        dir_len = len;
        dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC); /* on failure the whole path is looked up, as before */
      }
      if (dir_fd >= 0) {
        at = dir_fd;
        name = slash + 1;
      }
    }
    struct statx st;
    if (statx(at, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, &st) != 0) {
      f[F_ERRNO] = errno;
      continue;
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
    if (check_read && S_ISREG(st.stx_mode) && faccessat(at, name, R_OK, AT_EACCESS) != 0) f[F_READ_ERRNO] = errno;
  }
  if (dir_fd >= 0) close(dir_fd);
  free(items);
  return NULL;
}

/*
 * dataExtents(fd: number): Float64Array | null
 *   The data regions of the open file `fd` as [start, end, start, end, ...] from lseek(SEEK_DATA / SEEK_HOLE), so a
 *   sparse file's holes are never read. null when the file system cannot say, or `fd` is not a regular file (the
 *   whole file is then data). At most MAX_EXTENTS regions are listed; the rest of the file is reported as one data
 *   region. By descriptor, never by path: the regions are those of the very file being read (a file renamed over
 *   the path meanwhile cannot lend its holes), and nothing here opens anything, so a FIFO cannot block the call.
 *   The descriptor's file offset is moved; reads by position (pread) do not mind.
 */
#define MAX_EXTENTS 65536

static napi_value data_extents(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double fd_number = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || !get_whole(env, argv[0], 0, INT_MAX, &fd_number))
    return fail(env, "dataExtents(fd: a whole number from 0)");
  int fd = (int)fd_number;
  napi_value result;
  napi_get_null(env, &result);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return result;
  static double ext[MAX_EXTENTS * 2];
  size_t n = 0;
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* only a hole remains */
      return result; /* EINVAL: not supported here */
    }
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    if (n == MAX_EXTENTS - 1) hole = st.st_size;
    ext[n * 2] = (double)data;
    ext[n * 2 + 1] = (double)hole;
    n++;
    pos = hole;
  }
  napi_value buffer;
  void *out = NULL;
  napi_create_arraybuffer(env, n * 2 * sizeof(double), &out, &buffer);
  if (n > 0) memcpy(out, ext, n * 2 * sizeof(double));
  napi_create_typedarray(env, napi_float64_array, n * 2, buffer, 0, &result);
  return result;
}

/*
 * setTimes(path: string, seconds: number, nanoseconds: number): number
 *   Sets access and modification time with utimensat(2), to the nanosecond (Node's utimes goes through a double
 *   and loses the last digits), without following a symbolic link. Returns 0 or the errno (ENAMETOOLONG for a path
 *   too long, EINVAL for one holding a NUL: never cut short). Throws a TypeError, before any call, unless seconds is
 *   a whole number within ±(2^53 − 1) and nanoseconds a whole number from 0 to 999,999,999.
 */
static napi_value set_times(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char path[PATH_BYTES];
  double sec = 0, nsec = 0;
  /* Whole numbers in range, checked before conversion: a fraction or a number beyond 2^53 would name another time. */
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || !get_whole(env, argv[1], -9007199254740991.0, 9007199254740991.0, &sec) ||
      !get_whole(env, argv[2], 0, 999999999, &nsec))
    return fail(env, "setTimes(path, seconds, nanoseconds)");
  int read = vp_read_path(env, argv[0], path);
  if (read == 0) return fail(env, "setTimes(path, seconds, nanoseconds)");
  napi_value result;
  if (read < 0) {
    napi_create_int32(env, -read, &result);
    return result;
  }
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = (time_t)sec;
  times[0].tv_nsec = times[1].tv_nsec = (long)nsec;
  int rc = utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
  napi_create_int32(env, rc, &result);
  return result;
}

void vp_register_statx(napi_env env, napi_value exports) {
  napi_value fn, fields;
  napi_create_function(env, "statxBatch", NAPI_AUTO_LENGTH, statx_batch, NULL, &fn);
  napi_set_named_property(env, exports, "statxBatch", fn);
  napi_create_function(env, "dataExtents", NAPI_AUTO_LENGTH, data_extents, NULL, &fn);
  napi_set_named_property(env, exports, "dataExtents", fn);
  napi_create_function(env, "setTimes", NAPI_AUTO_LENGTH, set_times, NULL, &fn);
  napi_set_named_property(env, exports, "setTimes", fn);
  napi_create_uint32(env, FIELDS, &fields);
  napi_set_named_property(env, exports, "FIELDS", fields);
}
