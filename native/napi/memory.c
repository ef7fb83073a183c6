/*
 * Buffers whose memory goes back to the system when the program says so, not when the collector gets to it.
 *
 * mapBuffer(length: number): ArrayBuffer
 *
 *   `length` bytes (1 to 1 GiB) of anonymous memory of their own (mmap), zeroed, as an ArrayBuffer. Pages become
 *   resident as they are first written.
 *
 * unmapBuffer(buffer: ArrayBuffer): boolean
 *
 *   Detaches `buffer` (every view of it becomes empty, so no code can reach the memory again) and unmaps its memory
 *   at once. false, doing nothing, for an ArrayBuffer that mapBuffer did not make, or one already unmapped. The
 *   caller must know that no thread-pool job is still using the memory.
 *
 * Why: an ArrayBuffer that is dropped is freed only when the collector runs, and a backup that drops sealed-blob
 * buffers as the sizes it needs change (large chunks, then batches of small files) carried tens of MiB of them
 * between collections. A mapped buffer that is never unmapped is unmapped when the collector frees it.
 */
#include <node_api.h>
#include <stdlib.h>
#include <sys/mman.h>

typedef struct {
  void *addr;
  size_t length;
  int unmapped;
} mapping_t;

/* The ArrayBuffer was collected: its memory goes, unless unmapBuffer took it already. */
static void finalize_mapping(napi_env env, void *data, void *hint) {
  mapping_t *m = hint;
  if (!m->unmapped) {
    int64_t ignored;
    napi_adjust_external_memory(env, -(int64_t)m->length, &ignored);
    munmap(m->addr, m->length);
  }
  free(m);
}

static napi_value map_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int64_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_int64(env, argv[0], &length) != napi_ok || length < 1 || length > (1 << 30)) {
    napi_throw_type_error(env, "EINVAL", "mapBuffer(length: number from 1 to 2^30)");
    return NULL;
  }
  mapping_t *m = calloc(1, sizeof *m);
  void *addr = m ? mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
  if (addr == MAP_FAILED) {
    free(m);
    napi_throw_error(env, "ENOMEM", "mapBuffer: out of memory");
    return NULL;
  }
  m->addr = addr;
  m->length = (size_t)length;
  if (napi_create_external_arraybuffer(env, addr, (size_t)length, finalize_mapping, m, &result) != napi_ok) {
    munmap(addr, (size_t)length);
    free(m);
    napi_throw_error(env, "ENOMEM", "mapBuffer: the runtime refused an external buffer");
    return NULL;
  }
  /* The collector is told what the buffer holds, so buffers that are dropped still make it run. */
  int64_t ignored;
  napi_adjust_external_memory(env, length, &ignored);
  /* Wrapped without a finalizer of its own, so unmapBuffer can find the mapping, and refuse anything else. */
  if (napi_wrap(env, result, m, NULL, NULL, NULL) != napi_ok) {
    napi_throw_error(env, "ENOMEM", "mapBuffer: out of memory");
    return NULL; /* the ArrayBuffer, unreachable, unmaps its memory when collected */
  }
  return result;
}

static napi_value unmap_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  bool is_buffer = false;
  void *wrapped = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int ok = argc == 1 && napi_is_arraybuffer(env, argv[0], &is_buffer) == napi_ok && is_buffer &&
           napi_remove_wrap(env, argv[0], &wrapped) == napi_ok && wrapped != NULL;
  if (ok) {
    mapping_t *m = wrapped;
    /* Detached first: from here no view reaches the memory. The finalizer may run during the detach (the backing
     * store let go), so `m` is not touched after it. */
    m->unmapped = 1;
    void *addr = m->addr;
    size_t length = m->length;
    int64_t ignored;
    napi_adjust_external_memory(env, -(int64_t)length, &ignored);
    napi_detach_arraybuffer(env, argv[0]);
    munmap(addr, length);
  } else {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored); /* napi_remove_wrap on an object never wrapped */
  }
  napi_get_boolean(env, ok, &result);
  return result;
}

void vp_register_memory(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "mapBuffer", NAPI_AUTO_LENGTH, map_buffer, NULL, &fn);
  napi_set_named_property(env, exports, "mapBuffer", fn);
  napi_create_function(env, "unmapBuffer", NAPI_AUTO_LENGTH, unmap_buffer, NULL, &fn);
  napi_set_named_property(env, exports, "unmapBuffer", fn);
}
