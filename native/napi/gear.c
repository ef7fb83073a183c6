/*
 * N-API glue of the chunker's gear-hash scan (kernels/gear.c: src/chunk/fastcdc.ts's inner loop, in C): 4.6 to 6.4 times the speed of the
 * JavaScript loop (npm run bench, 64 MiB of random data). The backup runs it on the event loop for every byte of a file it reads past each chunk's minimum,
 * so its speed is the speed of the walk while a large file is read.
 *
 * gearScan(buf: Uint8Array, start: number, limit: number, state: Int32Array(4), gear: Int32Array(256)): number
 *
 *   state = [h, mask, zeroFix, zeroSkippable]. Hashes buf[start..limit) with h = (h << 1) + gear[byte] (mod 2^32),
 *   starting from h = state[0], and returns the index just past the first byte after which (h & mask) == 0; when
 *   there is none, -1, with the hash left in state[0]. When state[3] is 1, a run of 64 or more zero bytes is passed
 *   over exactly as the JavaScript scan passes over it (its first 32 bytes hashed, then h = zeroFix, the fixed point,
 *   which the caller knows is no cut): the same cut points, faster. Throws a TypeError on arguments of the wrong type
 *   or range, before reading anything.
 *
 * The cut rule is part of the vault format: the golden vectors of the chunker and a test that holds this scan to the
 * JavaScript one pin it.
 */
#include <stdint.h>
#include <string.h>
#include "../kernels/gear.h"
#include "napi_job.h"

static napi_value gear_scan(napi_env env, napi_callback_info info) {
  static const char *usage =
      "gearScan(buf: Uint8Array, start: number, limit: number, state: Int32Array(4), gear: Int32Array(256))";
  size_t argc = 5, length = 0, state_length = 0, gear_length = 0;
  napi_value argv[5], result;
  void *buf = NULL, *state = NULL, *gear = NULL;
  int64_t start = -1, limit = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      !vp_typed_array(env, argv[0], napi_uint8_array, &length, &buf) || napi_get_value_int64(env, argv[1], &start) != napi_ok ||
      napi_get_value_int64(env, argv[2], &limit) != napi_ok || !vp_typed_array(env, argv[3], napi_int32_array, &state_length, &state) ||
      state_length != 4 || !vp_typed_array(env, argv[4], napi_int32_array, &gear_length, &gear) || gear_length != 256 || start < 0 ||
      start > limit || (uint64_t)limit > length) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  napi_create_int64(env, vp_gear_scan(buf, (size_t)start, (size_t)limit, state, gear), &result);
  return result;
}

void vp_register_gear(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "gearScan", NAPI_AUTO_LENGTH, gear_scan, NULL, &fn);
  napi_set_named_property(env, exports, "gearScan", fn);
}
