/*
 * Byte slices handed to a thread-pool job: a JS array of Uint8Array, held by reference (never copied) and seen by
 * the job as iovecs. The caller must not change their bytes until the job completes, then releases them on the JS
 * thread. Shared by the jobs that hash, seal or write slices (crypto.c, pack.c, write_file.c).
 */
#ifndef VAULTPATH_PARTS_H
#define VAULTPATH_PARTS_H

#include <node_api.h>
#include <stdlib.h>
#include <sys/uio.h>

typedef struct {
  uint32_t count;
  napi_ref *refs;
  struct iovec *iov;
  size_t bytes; /* the sum of the slices' lengths */
} vp_parts_t;

/* Deletes the references and frees the arrays; safe on parts that were read only in part, or not at all. */
static inline void vp_parts_release(napi_env env, vp_parts_t *parts) {
  if (parts->refs)
    for (uint32_t i = 0; i < parts->count; i++)
      if (parts->refs[i]) napi_delete_reference(env, parts->refs[i]);
  free(parts->refs);
  free(parts->iov);
  parts->refs = NULL;
  parts->iov = NULL;
}

/*
 * Reads `value`, an array of Uint8Array, into `parts`: 1 on success, 0 when it is not such an array, -1 when memory
 * ran out. On failure, what was read is released by vp_parts_release.
 */
static inline int vp_parts_read(napi_env env, napi_value value, vp_parts_t *parts) {
  bool is_array = false;
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array || napi_get_array_length(env, value, &parts->count) != napi_ok)
    return 0;
  size_t slots = parts->count ? parts->count : 1;
  parts->refs = calloc(slots, sizeof *parts->refs);
  parts->iov = calloc(slots, sizeof *parts->iov);
  if (!parts->refs || !parts->iov) return -1;
  for (uint32_t i = 0; i < parts->count; i++) {
    napi_value item;
    bool is_typed = false;
    napi_typedarray_type type;
    size_t len = 0;
    void *bytes = NULL;
    if (napi_get_element(env, value, i, &item) != napi_ok || napi_is_typedarray(env, item, &is_typed) != napi_ok || !is_typed ||
        napi_get_typedarray_info(env, item, &type, &len, &bytes, NULL, NULL) != napi_ok || type != napi_uint8_array)
      return 0;
    napi_create_reference(env, item, 1, &parts->refs[i]);
    parts->iov[i].iov_base = bytes;
    parts->iov[i].iov_len = len;
    parts->bytes += len;
  }
  return 1;
}

#endif
