/*
 * Items of one kind (files to seal, blobs to open) done one after another by one thread-pool job, and handing
 * malloc'd bytes to JavaScript as Buffers without a copy.
 */
#ifndef VAULTPATH_NAPI_BATCH_H
#define VAULTPATH_NAPI_BATCH_H

#include <node_api.h>
#include <stdint.h>

/* Items of one kind (files to seal, blobs to open), done one after another by one thread-pool job. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  uint32_t count;
  size_t item_size;
  char *items;
  void (*run)(void *item);
  void (*clear)(void *item);
  napi_ref keep; /* the caller's buffer the items write into, kept alive until the batch is freed; or NULL */
} batch_t;

/* A batch of `count` zeroed items, or NULL when out of memory. */
batch_t *batch_new(uint32_t count, size_t item_size, void (*run)(void *), void (*clear)(void *));
void *batch_item(batch_t *batch, uint32_t i);
void batch_free(napi_env env, batch_t *batch);
/* Resolves the batch's promise to `result` when `ok`, else rejects it naming `name`; then frees the batch. */
void batch_settle(napi_env env, batch_t *batch, napi_status status, int ok, napi_value result, const char *name);
/* The batch's promise, with its work queued on the thread pool (or the batch freed and the promise rejected). */
napi_value batch_queue(napi_env env, batch_t *batch, const char *resource, napi_async_complete_callback complete);

/*
 * Hands `length` bytes at `data` (inside the malloc'd block `block`) to JS as a Buffer without a copy, and tells V8
 * how much memory the Buffer holds, so that the collector runs (and frees the block) as often as the bytes call
 * for: an external buffer V8 knows nothing about counts as a few bytes, and thousands of them pile up between
 * collections. Falls back to a copy where the runtime refuses external buffers; either way `block` is owned by
 * the Buffer or freed. 1 on success; 0 (and null in *out) when not even the copy could be made.
 */
int hand_over(napi_env env, void *block, uint8_t *data, size_t length, napi_value *out);

/* Sets obj[name] = value. */
void set_number(napi_env env, napi_value obj, const char *name, double value);

#endif
