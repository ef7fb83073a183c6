/*
 * statx(2) in batches, for the scan stage's attribute probe (src/scan/probe-linux.ts).
 *
 * One statx call per entry gives everything the support rules need: file type, link count, size, allocated
 * blocks, device, times, and the inode attributes COMPRESSED, ENCRYPTED and MOUNT_ROOT together with
 * attributes_mask, which says which of those the file system can report at all. Node's fs.lstat calls statx too
 * but drops the attributes. Paths are passed in batches so the JS/C crossing is paid once per batch.
 *
 * statxBatch(paths: string[], out: Float64Array): void
 *   For path i, writes FIELDS numbers at out[i * FIELDS] (see the enum below). A failed call stores its errno
 *   in F_ERRNO and leaves the other fields zero. Symbolic links are not followed; automounts are not triggered.
 *   For a regular file, F_READ_ERRNO holds the errno of faccessat(R_OK) with the effective ids (0 = readable),
 *   so a file the backup could not open is known before any data moves. Skipped when running as root: DAC
 *   override lets root read every regular file (a mandatory-access-control denial still shows when the backup
 *   reads the file).

 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

enum {
  F_ERRNO, F_MODE, F_NLINK, F_SIZE, F_BLOCKS, F_INO_HI, F_INO_LO, F_DEV_MAJOR, F_DEV_MINOR,
  F_MTIME_SEC, F_MTIME_NSEC, F_CTIME_SEC, F_CTIME_NSEC, F_ATTRIBUTES, F_ATTRIBUTES_MASK, F_UID, F_GID,
  F_READ_ERRNO, FIELDS
};

#define PATH_BYTES 4096

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
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

  bool is_typed = false;
  napi_is_typedarray(env, argv[1], &is_typed);
  if (!is_typed) return fail(env, "\"out\" expected a Float64Array");
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL);
  if (type != napi_float64_array) return fail(env, "\"out\" expected a Float64Array");
  if (length < (size_t)count * FIELDS) return fail(env, "\"out\" is too short for the paths given");
  double *out = (double *)data;

  char path[PATH_BYTES];
  const int check_read = geteuid() != 0;
  for (uint32_t i = 0; i < count; i++) {
    double *f = out + (size_t)i * FIELDS;
    memset(f, 0, sizeof(double) * FIELDS);
    napi_value item;
    size_t written = 0;
    napi_get_element(env, argv[0], i, &item);
    if (napi_get_value_string_utf8(env, item, path, sizeof(path), &written) != napi_ok) {
      f[F_ERRNO] = EINVAL;
      continue;
    }
    if (written >= sizeof(path) - 1) {
      f[F_ERRNO] = ENAMETOOLONG;
      continue;
    }
    struct statx st;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, &st) != 0) {
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
    if (check_read && S_ISREG(st.stx_mode) && faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) != 0) f[F_READ_ERRNO] = errno;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, fields;
  napi_create_function(env, "statxBatch", NAPI_AUTO_LENGTH, statx_batch, NULL, &fn);
  napi_set_named_property(env, exports, "statxBatch", fn);
  napi_create_uint32(env, FIELDS, &fields);
  napi_set_named_property(env, exports, "FIELDS", fields);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
