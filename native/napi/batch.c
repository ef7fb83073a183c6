/* Batches of items run by one thread-pool job, and bytes handed to JavaScript (batch.h). */
#include <stdio.h>
#include <stdlib.h>

#include "batch.h"
#include "napi_job.h"

typedef struct {
  void *block;
  size_t length;
} external_t;

static void free_external(napi_env env, void *data, void *hint) {
  external_t *x = hint;
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)x->length, &ignored);
  free(x->block);
  free(x);
}

int hand_over(napi_env env, void *block, uint8_t *data, size_t length, napi_value *out) {
  external_t *x = length > 0 ? malloc(sizeof *x) : NULL;
  if (x) {
    x->block = block;
    x->length = length;
    if (napi_create_external_buffer(env, length, data, free_external, x, out) == napi_ok) {
      int64_t ignored;
      napi_adjust_external_memory(env, (int64_t)length, &ignored);
      return 1;
    }
    free(x);
  }
  void *copy = NULL;
  int ok = napi_create_buffer_copy(env, length, data, &copy, out) == napi_ok;
  free(block);
  if (!ok) napi_get_null(env, out);
  return ok;
}

void set_number(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}


batch_t *batch_new(uint32_t count, size_t item_size, void (*run)(void *), void (*clear)(void *)) {
  batch_t *batch = calloc(1, sizeof *batch);
  if (batch) batch->items = calloc(count, item_size);
  if (!batch || !batch->items) {
    free(batch);
    return NULL;
  }
  batch->count = count;
  batch->item_size = item_size;
  batch->run = run;
  batch->clear = clear;
  return batch;
}

void *batch_item(batch_t *batch, uint32_t i) { return batch->items + (size_t)i * batch->item_size; }

void batch_free(napi_env env, batch_t *batch) {
  if (batch->keep) napi_delete_reference(env, batch->keep);
  for (uint32_t i = 0; i < batch->count; i++) batch->clear(batch_item(batch, i));
  free(batch->items);
  free(batch);
}

static void batch_execute(napi_env env, void *data) {
  batch_t *batch = data;
  for (uint32_t i = 0; i < batch->count; i++) batch->run(batch_item(batch, i));
}

void batch_settle(napi_env env, batch_t *batch, napi_status status, int ok, napi_value result, const char *name) {
  if (ok) {
    napi_resolve_deferred(env, batch->deferred, result);
  } else {
    char message[96];
    snprintf(message, sizeof message, "%s: %s", name, status == napi_cancelled ? "cancelled" : "the crypto library failed, or memory ran out");
    vp_reject(env, batch->deferred, message);
  }
  napi_delete_async_work(env, batch->work);
  batch_free(env, batch);
}

napi_value batch_queue(napi_env env, batch_t *batch, const char *resource, napi_async_complete_callback complete) {
  napi_value promise;
  napi_create_promise(env, &batch->deferred, &promise);
  if (!vp_queue(env, resource, batch_execute, complete, batch, &batch->work, batch->deferred)) batch_free(env, batch);
  return promise;
}
