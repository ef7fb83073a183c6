/*
 * The addon's entry: every group of functions registered on one exports object, with the interface's version.
 * src/native/addon.ts declares each function's type and loads this only when the versions match.
 */
#include <node_api.h>

/* statxBatch(...), dataExtents(...), setTimes(...): the scan's attribute probe (statx.c). */
void vp_register_statx(napi_env env, napi_value exports);
/* writeFiles(...) and the fs* descriptor-relative calls: the restore's file writing (write_file.c, fs_at.c). */
void vp_register_write_file(napi_env env, napi_value exports);
/* sealFiles(...), sealParts(...), openBlobs(...), openBlobsInto(...): hashing, sealing and opening on libuv workers
 * (crypto.c). */
void vp_register_crypto(napi_env env, napi_value exports);
/* writePack(...): a pack file written and hashed (pack.c). */
void vp_register_pack(napi_env env, napi_value exports);
/* mapBuffer(...), unmapBuffer(...): buffers whose memory is given back when the program says so (memory.c). */
void vp_register_memory(napi_env env, napi_value exports);
/* gearScan(...): the chunker's gear-hash scan (gear.c). */
void vp_register_gear(napi_env env, napi_value exports);

/* The interface's version (src/native/addon.ts ADDON_ABI): raised with any change of a function's arguments or
 * results, so a build left from another version is not called with the wrong layout. 2: the AEAD functions take
 * the key-derivation label and the associated data's prefix as bytes, openBlobs' specs are 4 a blob. */
#define VP_ABI_VERSION 2

static napi_value init(napi_env env, napi_value exports) {
  napi_value abi;
  napi_create_uint32(env, VP_ABI_VERSION, &abi);
  napi_set_named_property(env, exports, "abiVersion", abi);
  vp_register_statx(env, exports);
  vp_register_write_file(env, exports);
  vp_register_crypto(env, exports);
  vp_register_pack(env, exports);
  vp_register_memory(env, exports);
  vp_register_gear(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
