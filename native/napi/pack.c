/*
 * N-API glue of the pack writer (kernels/pack.c).
 *
 * writePack(path: string, parts: Uint8Array[], from?: string, ranges?: Float64Array): Promise<Buffer>
 *
 *   A pack staged in the scratch cache: creates `path` (O_EXCL, mode 0644), writes to it, in order, the byte ranges
 *   of file `from` (`ranges` holds offset, length pairs; a pack's blobs, staged there as they were sealed, taken in
 *   the pack's shuffled order) and then the parts, and resolves to the SHA-256 of what it wrote (the pack's id),
 *   hashing each piece right after reading or copying it, while it is in the cache. The bytes come laid out by the
 *   caller: this knows no pack format. A range past the end of `from` fails with EIO. The file is written with
 *   O_DIRECT through a 4 KiB-aligned buffer of the pool thread's (2 MiB, kept between jobs), the last partial block
 *   without: staged packs are read once (linked into a local vault, or uploaded) and then deleted, so passing them
 *   through the page cache only costs a copy into freshly allocated pages and evicts the user's own cached files.
 *   Where the file system refuses O_DIRECT the file is written the ordinary way. Not synced: the store syncs what it
 *   keeps. Rejects with an Error whose `errno` is that of the failed system call (EEXIST, ENOSPC, ...); the file may
 *   then exist, partly written, and the caller removes it. The parts are not copied: the caller must not touch
 *   their bytes until it settles.
 */
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/pack.h"
#include "args.h"
#include "napi_job.h"
#include "parts.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  vp_parts_t parts;
  vp_pack_t pack;
} pack_job_t;

static void pack_job_free(napi_env env, pack_job_t *job) {
  vp_parts_release(env, &job->parts);
  free(job->pack.ranges);
  free(job);
}

static void pack_execute(napi_env env, void *data) {
  pack_job_t *job = data;
  vp_write_pack(&job->pack);
}

static void pack_complete(napi_env env, napi_status status, void *data) {
  pack_job_t *job = data;
  if (status == napi_cancelled || !job->pack.ok || job->pack.err) {
    napi_value number, error = vp_error(env, status == napi_cancelled ? "writePack: cancelled" : !job->pack.ok ? "writePack: the crypto library failed" : strerror(job->pack.err));
    if (status != napi_cancelled && job->pack.ok) {
      napi_create_int32(env, job->pack.err, &number);
      napi_set_named_property(env, error, "errno", number);
    }
    napi_reject_deferred(env, job->deferred, error);
  } else {
    napi_value digest;
    napi_create_buffer_copy(env, 32, job->pack.digest, NULL, &digest);
    napi_resolve_deferred(env, job->deferred, digest);
  }
  napi_delete_async_work(env, job->work);
  pack_job_free(env, job);
}

/* Reads `value`, a Float64Array of offset, length pairs (whole numbers from 0 to 2^53), into job->pack.ranges. 1, 0 when it
 * is not such an array, -1 when memory ran out. */
static int read_ranges(napi_env env, napi_value value, pack_job_t *job) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t count = 0;
  void *data = NULL;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, &count, &data, NULL, NULL) != napi_ok || type != napi_float64_array || count % 2 != 0 ||
      count / 2 > UINT32_MAX)
    return 0;
  job->pack.range_count = (uint32_t)(count / 2);
  job->pack.ranges = malloc((count ? count : 1) * sizeof *job->pack.ranges);
  if (!job->pack.ranges) return -1;
  const double *numbers = data;
  for (size_t i = 0; i < count; i++) {
    double x = numbers[i];
    if (!(x >= 0 && x <= 9007199254740992.0) || x != (double)(uint64_t)x) return 0;
    job->pack.ranges[i] = (uint64_t)x;
  }
  return 1;
}

static napi_value write_pack(napi_env env, napi_callback_info info) {
  static const char *usage = "writePack(path: string, parts: Uint8Array[], from?: string, ranges?: Float64Array)";
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || (argc != 2 && argc != 4)) return fail(env, usage);
  pack_job_t *job = calloc(1, sizeof *job);
  if (!job) return fail(env, "writePack: out of memory");
  if (vp_read_path(env, argv[0], job->pack.path) != 1 || (argc == 4 && vp_read_path(env, argv[2], job->pack.from) != 1) || (argc == 4 && !job->pack.from[0])) {
    free(job);
    return fail(env, "writePack: each path must be a non-empty string shorter than 4096 bytes, without NUL");
  }
  int read = parts_read_whole(env, argv[1], &job->parts);
  if (read == 1 && argc == 4) read = read_ranges(env, argv[3], job);
  job->pack.parts = job->parts.iov;
  job->pack.part_count = job->parts.count;
  if (read != 1) {
    pack_job_free(env, job);
    return fail(env, read < 0 ? "writePack: out of memory" : usage);
  }
  napi_value promise;
  napi_create_promise(env, &job->deferred, &promise);
  if (!vp_queue(env, "vaultpath:writePack", pack_execute, pack_complete, job, &job->work, job->deferred)) pack_job_free(env, job);
  return promise;
}

void vp_register_pack(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "writePack", NAPI_AUTO_LENGTH, write_pack, NULL, &fn);
  napi_set_named_property(env, exports, "writePack", fn);
}
