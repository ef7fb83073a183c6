/*
 * N-API glue of statx(2) in batches (kernels/statx.c), for the scan stage's attribute probe (src/scan/probe.ts).
 *
 * One statx call per entry gives everything the support rules need: file type, link count, size, allocated
 * blocks, device, times, and the inode attributes COMPRESSED, ENCRYPTED and MOUNT_ROOT together with
 * attributes_mask, which says which of those the file system can report at all. Node's fs.lstat calls statx too
 * but drops the attributes. Paths are passed in batches so the JS/C crossing is paid once per batch.
 *
 * statxBatch(paths: (string | Uint8Array)[], out: Float64Array): void
 *   For path i, writes FIELDS numbers at out[i * FIELDS] (see the enum in kernels/statx.h). A failed call stores its errno
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

#include "../kernels/statx.h"
#include "args.h"
#include "napi_job.h"

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
  vp_statx_walk_t walk;
  vp_statx_begin(&walk);
  for (uint32_t i = 0; i < count; i++) {
    double *f = out + (size_t)i * FIELDS;
    memset(f, 0, sizeof(double) * FIELDS);
    int read = read_path_arg(env, items[i], path);
    if (read != 1) {
      f[F_ERRNO] = read < 0 ? -read : EINVAL;
      continue;
    }
    vp_statx(&walk, path, f);
  }
  vp_statx_end(&walk);
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
  napi_value result;
  napi_get_null(env, &result);
  static double ext[MAX_EXTENTS * 2];
  long found = vp_data_extents((int)fd_number, ext, MAX_EXTENTS);
  if (found < 0) return result;
  size_t n = (size_t)found;
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
