/*
 * Argument readers shared by the crypto and pack glue: byte arguments of an exact length, paths as strings or bytes,
 * arrays of byte slices fetched whole before any pointer into them is taken, and the caller's AEAD context.
 */
#ifndef VAULTPATH_NAPI_ARGS_H
#define VAULTPATH_NAPI_ARGS_H

#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/aead.h"
#include "napi_job.h"
#include "parts.h"

static inline napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, "EINVAL", message);
  return NULL;
}

/* The bytes of a Uint8Array argument, which must be exactly `want` long (or any length when want is 0). */
static inline int get_bytes(napi_env env, napi_value value, size_t want, uint8_t **out, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *data = NULL;
  size_t n = 0;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, &n, &data, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return 0;
  if (want != 0 && n != want) return 0;
  *out = data;
  if (len) *len = n;
  return 1;
}

/*
 * A path argument, a string (read by vp_read_path) or the bytes of one (a Uint8Array: names that are not UTF-8),
 * into `out` (PATH_BYTES long): 1 when it fits, 0 when it is neither, or -ENAMETOOLONG / -EINVAL (a NUL inside, or
 * empty bytes) for a path no system call may be given. Never cut short.
 */
static inline int read_path_arg(napi_env env, napi_value value, char *out) {
  napi_valuetype kind;
  if (napi_typeof(env, value, &kind) != napi_ok) return 0;
  if (kind == napi_string) return vp_read_path(env, value, out);
  uint8_t *bytes = NULL;
  size_t n = 0;
  if (!get_bytes(env, value, 0, &bytes, &n)) return 0;
  if (n >= PATH_BYTES) return -ENAMETOOLONG;
  if (n == 0 || memchr(bytes, 0, n) != NULL) return -EINVAL;
  memcpy(out, bytes, n);
  out[n] = 0;
  return 1;
}

/*
 * Reads `value`, an array of Uint8Array, into `parts` as vp_parts_read does, but every element is fetched before any
 * element's memory is looked at: fetching an element may run JavaScript (an accessor, a proxy), which could detach
 * or shrink a buffer whose pointer had already been taken. 1, 0 when it is not such an array, -1 out of memory.
 */
static inline int parts_read_whole(napi_env env, napi_value value, vp_parts_t *parts) {
  bool is_array = false;
  uint32_t count = 0;
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array || napi_get_array_length(env, value, &count) != napi_ok) return 0;
  napi_value *items = malloc((count ? count : 1) * sizeof *items);
  if (!items) return -1;
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, value, i, &items[i]) != napi_ok) {
      free(items);
      return 0;
    }
  }
  parts->count = count;
  parts->refs = calloc(count ? count : 1, sizeof *parts->refs);
  parts->iov = calloc(count ? count : 1, sizeof *parts->iov);
  if (!parts->refs || !parts->iov) {
    free(items);
    return -1;
  }
  for (uint32_t i = 0; i < count; i++) {
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (!get_bytes(env, items[i], 0, &bytes, &len)) {
      free(items);
      return 0;
    }
    napi_create_reference(env, items[i], 1, &parts->refs[i]);
    parts->iov[i].iov_base = bytes;
    parts->iov[i].iov_len = len;
    parts->bytes += len;
  }
  free(items);
  return 1;
}

/* The key-derivation label of an AEAD context, `label` (a Uint8Array of 1 to VP_LABEL_MAX bytes). 1, or 0. */
/*
 * The AEAD context from `label` (a Uint8Array of 1 to VP_LABEL_MAX bytes: the key-derivation label) and `prefix` (a
 * Uint8Array of at most VP_PREFIX_MAX bytes: the associated data before salt ‖ id), copied into `ctx`. 1, or 0 when
 * either is not such an array.
 */
static inline int read_label(napi_env env, napi_value label, vp_aead_ctx_t *ctx) {
  uint8_t *bytes = NULL;
  size_t n = 0;
  if (!get_bytes(env, label, 0, &bytes, &n) || n == 0 || n > VP_LABEL_MAX) return 0;
  memcpy(ctx->label, bytes, n);
  ctx->label_len = n;
  return 1;
}

static inline int read_aead(napi_env env, napi_value label, napi_value prefix, vp_aead_ctx_t *ctx) {
  uint8_t *bytes = NULL;
  size_t n = 0;
  if (!read_label(env, label, ctx)) return 0;
  if (!get_bytes(env, prefix, 0, &bytes, &n) || n > VP_PREFIX_MAX) return 0;
  if (n) memcpy(ctx->prefix, bytes, n);
  ctx->prefix_len = n;
  return 1;
}

#endif
