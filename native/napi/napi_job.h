/*
 * What the addon's functions share: an Error for a message, a promise rejected with one, a job queued on the libuv
 * thread pool, a typed-array argument checked for its kind, and a path argument read without ever cutting it short.
 */
#ifndef VAULTPATH_NAPI_JOB_H
#define VAULTPATH_NAPI_JOB_H

#include <errno.h>
#include <node_api.h>
#include <string.h>

#include "../kernels/sizes.h" /* PATH_BYTES, NAME_BYTES */

/* A new Error with `message`. */
static inline napi_value vp_error(napi_env env, const char *message) {
  napi_value text, error;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &error);
  return error;
}

/* Rejects `deferred` with a new Error with `message`. */
static inline void vp_reject(napi_env env, napi_deferred deferred, const char *message) {
  napi_reject_deferred(env, deferred, vp_error(env, message));
}

/*
 * Queues `job` as async work named `name`: 1 when queued; else 0, after rejecting `deferred` and deleting the work
 * (the caller then frees the job).
 */
static inline int vp_queue(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete,
                           void *job, napi_async_work *work, napi_deferred deferred) {
  napi_value resource;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_async_work(env, NULL, resource, execute, complete, job, work) == napi_ok && napi_queue_async_work(env, *work) == napi_ok)
    return 1;
  vp_reject(env, deferred, "could not queue the work");
  if (*work) napi_delete_async_work(env, *work);
  return 0;
}

/* Whether `value` is a typed array of `kind`; when it is, its element count and data go to *length and *data. */
static inline int vp_typed_array(napi_env env, napi_value value, napi_typedarray_type kind, size_t *length, void **data) {
  bool is = false;
  napi_typedarray_type got;
  return napi_is_typedarray(env, value, &is) == napi_ok && is &&
         napi_get_typedarray_info(env, value, &got, length, data, NULL, NULL) == napi_ok && got == kind;
}

/*
 * Reads a path argument into `out` (PATH_BYTES long): 1 when it fits, 0 when it is not a string, or -ENAMETOOLONG /
 * -EINVAL (a NUL inside) for a path no system call may be given. The length is asked first: a string cut to fit the
 * buffer would name another file.
 */
static inline int vp_read_path(napi_env env, napi_value value, char *out) {
  size_t length = 0, written = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return 0;
  if (length >= PATH_BYTES) return -ENAMETOOLONG;
  if (napi_get_value_string_utf8(env, value, out, PATH_BYTES, &written) != napi_ok || written != length) return 0;
  return strlen(out) == written ? 1 : -EINVAL;
}

/*
 * Reads one name of a folder entry (a Buffer/Uint8Array of its bytes, or a string as UTF-8) into `out` (NAME_BYTES
 * long): 1 when it is a single safe name; 0 when it is neither bytes nor a string; -EINVAL when it is empty, `.`,
 * `..`, or holds a `/` or a NUL (it could name something outside the folder, or be cut short); -ENAMETOOLONG past
 * NAME_MAX bytes. Bytes are taken as they are: names that are not UTF-8 are created exactly.
 */
static inline int vp_read_name(napi_env env, napi_value value, char *out) {
  size_t length = 0;
  bool is_typed = false;
  napi_valuetype kind;
  if (napi_is_typedarray(env, value, &is_typed) == napi_ok && is_typed) {
    napi_typedarray_type type;
    void *bytes = NULL;
    if (napi_get_typedarray_info(env, value, &type, &length, &bytes, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
    if (length >= NAME_BYTES) return -ENAMETOOLONG;
    if (length > 0) memcpy(out, bytes, length);
    out[length] = 0;
  } else if (napi_typeof(env, value, &kind) == napi_ok && kind == napi_string) {
    size_t written = 0;
    if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return 0;
    if (length >= NAME_BYTES) return -ENAMETOOLONG;
    if (napi_get_value_string_utf8(env, value, out, NAME_BYTES, &written) != napi_ok || written != length) return 0;
  } else {
    return 0;
  }
  if (length == 0 || strlen(out) != length || memchr(out, '/', length) || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) return -EINVAL;
  return 1;
}

/* The largest whole number a double holds exactly, 2^53 - 1. */
#define VP_MAX_SAFE 9007199254740991.0

/* Whether `x` is a whole number within [min, max] (false for NaN and the infinities), checked before any cast. */
static inline int whole_in(double x, double min, double max) { return x >= min && x <= max && x == __builtin_floor(x); }

/* A number argument checked whole (a JS number, whole, in [min, max]) before anything converts it. */
static inline int get_whole(napi_env env, napi_value value, double min, double max, double *out) {
  napi_valuetype kind;
  double x = 0;
  if (napi_typeof(env, value, &kind) != napi_ok || kind != napi_number || napi_get_value_double(env, value, &x) != napi_ok) return 0;
  if (!whole_in(x, min, max)) return 0;
  *out = x;
  return 1;
}

#endif
