/*
 * What the addon's functions share: an Error for a message, a promise rejected with one, a job queued on the libuv
 * thread pool, a typed-array argument checked for its kind, and a path argument read without ever cutting it short.
 */
#ifndef VAULTPATH_NAPI_JOB_H
#define VAULTPATH_NAPI_JOB_H

#include <errno.h>
#include <node_api.h>
#include <string.h>

/* The longest path, with its NUL, that a job takes. */
#define PATH_BYTES 4096

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

#endif
