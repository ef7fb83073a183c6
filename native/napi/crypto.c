/*
 * N-API glue of the crypto kernels (kernels/aead.c, seal_file.c, open_blob.c): argument checks, thread-pool jobs,
 * results. Every AEAD function takes the format as bytes: `keyLabel` (1 to 64 bytes) and the associated data's
 * prefix (at most 16 bytes), so that, with salt and id,
 *     key    = HKDF-Expand(sealKey, keyLabel ‖ salt, 32) = HMAC-SHA256(sealKey, keyLabel ‖ salt ‖ 0x01)
 *     sealed = salt ‖ AES-256-GCM(key, nonce 0¹², aad = prefix ‖ salt ‖ id, plaintext) ‖ tag
 *     id     = HMAC-SHA256(chunkIdKey, plaintext)
 * (src/crypto/envelope.ts owns the label and the prefix; src/native/addon.ts declares these functions' types).
 *
 * sealFiles(paths: (string | Uint8Array)[], sizes: number[], sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32),
 *           keyLabel: Uint8Array, aadPrefix: Uint8Array, salts: Uint8Array(32 × paths.length), out?: Uint8Array | null,
 *           expect?: BigUint64Array(2 × paths.length) | null): Promise<SealFileResult[]>
 *
 *   Whole small files that are one chunk each (the caller guarantees each size is below the chunker's minimum), as
 *   one job for the lot (up to 4096), one after another; for each, with its own 32 bytes of `salts`:
 *     open(path, O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW); fstat: a regular file, and with `expect` the
 *     file of device expect[2i] and inode expect[2i+1] (what the scan saw; inode 0: not checked); read `size` bytes
 *     from offset 0 (stops early at end of file); fstat; close; then id and sealed as above.
 *   A path is a string, or its bytes (a name that is not UTF-8); either is refused whole, never cut short.
 *   The plaintext is read straight into the sealed buffer and encrypted in place: no copy. Without `out`, each
 *   file's sealed buffer is allocated here and handed to JS as `sealed`. With `out` (at least the sum of
 *   size + 48 over the files), file i is sealed into `out` at the sum of (size + 48) of the files before it and
 *   there is no `sealed`: the caller reuses its buffers, where one allocation per file would be freed only when the
 *   collector runs (tens of MiB for a folder of small files). `out` is kept alive until the job settles.
 *   Resolves to one result per path, in order: { errno: 0, id, sealed?, bytes, size, mtimeSec, mtimeNsec, ctimeSec,
 *   ctimeNsec } (the fstat after reading), or { errno, step: "open" | "read" } when a system call failed (a path too
 *   long is ENAMETOOLONG, a folder EISDIR, one holding a NUL or naming something other than a regular file EINVAL, a
 *   symbolic link ELOOP, a regular file other than `expect` says ESTALE, all at "open"; the file is opened
 *   non-blocking, so a FIFO never holds the job, and is never read when it is not the file expected); rejects only
 *   when the work cannot be queued or the crypto library fails. One job for many files spares a thread hand-off
 *   and a promise per file, which for files of a few KiB cost more than their crypto.
 *
 * sealParts(parts: Uint8Array[], sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), keyLabel: Uint8Array,
 *           aadPrefix: Uint8Array, salt: Uint8Array(32) | null, id: Uint8Array(32) | null, out?: Uint8Array | null)
 *   : Promise<{ id: Buffer, sealed?: Buffer }>
 *
 *   A chunk given as slices (views of the backup's read buffers), as one job: its id (unless `id` is given) and,
 *   when `salt` is given, the chunk sealed under that id exactly as sealFiles seals, encrypted straight from the
 *   slices (no copy of the plaintext) into `out` when given (its first 48 + bytes bytes; it must be at least that
 *   long, and `sealed` is then absent: the caller's buffer holds it), else into a buffer of its own. Identify only:
 *   salt null. Seal only: both given. Neither the parts nor `out` are copied: the caller must not touch their bytes
 *   until it settles.
 *
 * openBlobs(specs: Float64Array(4 × n), ids: Uint8Array(32 × n), aadPrefixes: Uint8Array(p × n), sealKey: Uint8Array(32),
 *           chunkIdKey: Uint8Array(32), keyLabel: Uint8Array): Promise<(Buffer | { outcome: number, got: number })[]>
 *
 *   Sealed messages stored bare in files (salt ‖ ciphertext ‖ tag), up to 4096 in one job, one after another;
 *   message i is described by specs[4i..4i+3] = fd, offset, length, check (1: its plaintext must hash to its id; 0:
 *   it is not the bytes the id names), ids[32i..32i+31] is its id and aadPrefixes[p·i..p·i+p-1] its prefix (p the
 *   same for all, at most 16). For each: pread `length` bytes from `fd` at `offset`, open in place, and with check 1,
 *   HMAC-SHA256(chunkIdKey, plaintext) must equal `id` (compared in constant time). The plaintext is a view of the
 *   one buffer read into. Resolves to one result per message, in order: the plaintext, or { outcome, got } (the
 *   bytes read) where outcome is a positive errno (the read failed), -1 (the file ends before `length` bytes), -2 (the
 *   tag does not verify), -3 (authentic, but the plaintext does not hash to `id`) or -4 (authentic, check 0: nothing
 *   handed back). Nothing but the plaintext of a message that passed every check is ever handed back.
 *
 * openBlobsInto(specs, ids, aadPrefixes, sealKey, chunkIdKey, keyLabel, targets: Float64Array(3 × n))
 *   : Promise<Float64Array(2 × n)>
 *
 *   As openBlobs, but message i's plaintext, once it has passed every check, is written with pwrite to the open file
 *   targets[3i] at offset targets[3i+2] instead of being handed back: a restore's large file is filled chunk by
 *   chunk without its bytes ever reaching JavaScript. targets[3i+1] is the same file opened again with O_DIRECT, or
 *   -1: the whole 4 KiB pages a blob covers are then written through it, bypassing the page cache (on some machines
 *   copying into freshly allocated page-cache pages costs several times the write itself, and a restored tree would
 *   evict the user's cached files); the partial pages at its ends, and pages the direct descriptor refuses, go
 *   through targets[3i]. The messages are read into one 4 KiB-aligned buffer per pool thread, kept between jobs up
 *   to 8 MiB, so a restore does not fault in fresh pages for every chunk. Resolves to [outcome, got] per message:
 *   outcome 0 (written whole), or as openBlobs, or -5 with `got` the errno of the failed write. Nothing is written
 *   for a message that failed a check. Writes are positional, so messages of one file may be written by several
 *   jobs at once; the caller must keep each target open until the job settles.
 *
 * Arguments of the wrong type or length throw synchronously, before any work is queued. Numbers are checked whole
 * (a number, whole, in range) before any is converted, and every array element is fetched (which may run
 * JavaScript) before any pointer into a typed array is taken: nothing JavaScript does can change what a job reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/aead.h"
#include "../kernels/open_blob.h"
#include "../kernels/seal_file.h"
#include "args.h"
#include "batch.h"
#include "napi_job.h"
#include "parts.h"

/* The kernels as batch items. */
static void seal_one(void *data) { vp_seal_file(data); }
static void seal_item_clear(void *data) { vp_seal_file_clear(data); }
static void open_one(void *data) { vp_open_blob(data); }
static void open_into_one(void *data) { vp_open_blob_into(data); }
static void open_item_clear(void *data) { vp_open_blob_clear(data); }

/* Slots per blob of openBlobs' specs (src/native/addon.ts OPEN_SPEC_SLOTS). */
#define SPEC_SLOTS 4

/* ---------------------------------------------------------------------------------------------------------------- */
/* sealFiles                                                                                                        */

/* One sealed file's result object (see sealFiles); 0 when the crypto library failed on it, or memory ran out. */
static int seal_result(napi_env env, vp_seal_file_t *job, napi_value *result) {
  if (job->crypto_failed) return 0;
  napi_create_object(env, result);
  set_number(env, *result, "errno", job->err);
  if (job->err != 0) {
    napi_value step;
    napi_create_string_utf8(env, job->step, NAPI_AUTO_LENGTH, &step);
    napi_set_named_property(env, *result, "step", step);
    return 1;
  }
  napi_value id, sealed;
  napi_create_buffer_copy(env, VP_ID_BYTES, job->id, NULL, &id);
  napi_set_named_property(env, *result, "id", id);
  if (!job->borrowed) {
    int handed = hand_over(env, job->sealed, job->sealed, VP_SEAL_OVERHEAD + job->bytes, &sealed);
    job->sealed = NULL;
    if (!handed) return 0;
    napi_set_named_property(env, *result, "sealed", sealed);
  }
  set_number(env, *result, "bytes", (double)job->bytes);
  set_number(env, *result, "size", (double)job->st.st_size);
  set_number(env, *result, "mtimeSec", (double)job->st.st_mtim.tv_sec);
  set_number(env, *result, "mtimeNsec", (double)job->st.st_mtim.tv_nsec);
  set_number(env, *result, "ctimeSec", (double)job->st.st_ctim.tv_sec);
  set_number(env, *result, "ctimeNsec", (double)job->st.st_ctim.tv_nsec);
  return 1;
}

static void seal_batch_complete(napi_env env, napi_status status, void *data) {
  batch_t *batch = data;
  napi_value results, item;
  int ok = status != napi_cancelled;
  napi_create_array_with_length(env, batch->count, &results);
  for (uint32_t i = 0; ok && i < batch->count; i++) {
    ok = seal_result(env, batch_item(batch, i), &item);
    if (ok) napi_set_element(env, results, i, item);
  }
  batch_settle(env, batch, status, ok, results, "sealFiles");
}

static napi_value seal_files(napi_env env, napi_callback_info info) {
  static const char *usage =
      "sealFiles(paths: (string | Uint8Array)[], sizes: number[], sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), "
      "keyLabel: Uint8Array(1 to 64), aadPrefix: Uint8Array(0 to 16), salts: Uint8Array(32 × paths.length), out?: Uint8Array | null, "
      "expect?: BigUint64Array(2 × paths.length) | null)";
  size_t argc = 9;
  napi_value argv[9];
  bool paths_array = false, sizes_array = false;
  uint32_t count = 0, sizes_count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7 || argc > 9 ||
      napi_is_array(env, argv[0], &paths_array) != napi_ok || !paths_array || napi_is_array(env, argv[1], &sizes_array) != napi_ok ||
      !sizes_array || napi_get_array_length(env, argv[0], &count) != napi_ok ||
      napi_get_array_length(env, argv[1], &sizes_count) != napi_ok || sizes_count != count || count == 0 || count > 4096)
    return fail(env, usage);
  batch_t *batch = batch_new(count, sizeof(vp_seal_file_t), seal_one, seal_item_clear);
  if (!batch) return fail(env, "sealFiles: out of memory");
  /* The arrays' elements first, each checked whole: fetching one may run JavaScript (an accessor, a proxy), so no
   * pointer into a typed array is taken until the last is read. */
  for (uint32_t i = 0; i < count; i++) {
    vp_seal_file_t *job = batch_item(batch, i);
    napi_value path, size_value;
    double size = -1;
    int path_ok = 0;
    if (napi_get_element(env, argv[0], i, &path) != napi_ok || napi_get_element(env, argv[1], i, &size_value) != napi_ok ||
        (path_ok = read_path_arg(env, path, job->path)) == 0 || !get_whole(env, size_value, 0, (double)(1 << 30), &size)) {
      batch_free(env, batch);
      return fail(env, usage);
    }
    /* Too long, or holding a NUL, fails this file alone (as its open would), not the batch. */
    if (path_ok < 0) {
      job->err = -path_ok;
      job->step = "open";
    }
    job->size = (size_t)size;
  }
  /* Then the typed arrays; nothing below runs JavaScript until the job is queued. */
  uint8_t *seal_key, *id_key, *salts;
  size_t salts_len = 0;
  vp_aead_ctx_t aead;
  if (!get_bytes(env, argv[2], VP_KEY_BYTES, &seal_key, NULL) || !get_bytes(env, argv[3], VP_KEY_BYTES, &id_key, NULL) ||
      !read_aead(env, argv[4], argv[5], &aead) || !get_bytes(env, argv[6], 0, &salts, &salts_len) ||
      salts_len != (size_t)count * VP_SALT_BYTES) {
    batch_free(env, batch);
    return fail(env, usage);
  }
  /* With `out`, file i is sealed into it at the sum of (size + VP_SEAL_OVERHEAD) of the files before it. */
  napi_valuetype out_type = napi_undefined, expect_type = napi_undefined;
  uint8_t *out = NULL;
  size_t out_len = 0, out_at = 0;
  if (argc >= 8 && (napi_typeof(env, argv[7], &out_type) != napi_ok ||
                    (out_type != napi_undefined && out_type != napi_null && !get_bytes(env, argv[7], 0, &out, &out_len)))) {
    batch_free(env, batch);
    return fail(env, usage);
  }
  /* With `expect`, file i must be the file of device expect[2i] and inode expect[2i+1]. */
  uint64_t *expect = NULL;
  size_t expect_len = 0;
  if (argc == 9 && (napi_typeof(env, argv[8], &expect_type) != napi_ok ||
                    (expect_type != napi_undefined && expect_type != napi_null &&
                     (!vp_typed_array(env, argv[8], napi_biguint64_array, &expect_len, (void **)&expect) || expect_len != (size_t)count * 2)))) {
    batch_free(env, batch);
    return fail(env, usage);
  }
  for (uint32_t i = 0; i < count; i++) {
    vp_seal_file_t *job = batch_item(batch, i);
    if (out) {
      if (out_len - out_at < VP_SEAL_OVERHEAD + job->size) {
        batch_free(env, batch);
        return fail(env, "sealFiles: `out` is shorter than the files' sizes plus 48 bytes each");
      }
      job->sealed = out + out_at;
      job->borrowed = 1;
      out_at += VP_SEAL_OVERHEAD + job->size;
    }
    if (expect && expect[2 * i + 1] != 0) { /* inode 0, which no file has: not checked */
      job->check_ident = 1;
      job->expect_dev = expect[2 * i];
      job->expect_ino = expect[2 * i + 1];
    }
    job->aead = aead;
    memcpy(job->seal_key, seal_key, VP_KEY_BYTES);
    memcpy(job->id_key, id_key, VP_KEY_BYTES);
    memcpy(job->salt, salts + (size_t)i * VP_SALT_BYTES, VP_SALT_BYTES);
  }
  if (out && napi_create_reference(env, argv[7], 1, &batch->keep) != napi_ok) {
    batch_free(env, batch);
    return fail(env, "sealFiles: out of memory");
  }
  return batch_queue(env, batch, "vaultpath:sealFiles", seal_batch_complete);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* sealParts                                                                                                        */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  vp_parts_t parts;
  uint8_t seal_key[VP_KEY_BYTES];
  uint8_t id_key[VP_KEY_BYTES];
  uint8_t salt[VP_SALT_BYTES];
  uint8_t id[VP_ID_BYTES];
  vp_aead_ctx_t aead;
  int want_seal, have_id;
  napi_ref out_ref; /* the caller's output buffer, when given */
  uint8_t *out;
  /* results */
  int ok;
  uint8_t *sealed; /* salt ‖ ciphertext ‖ tag, when no output buffer was given */
} parts_job_t;

static void parts_job_free(napi_env env, parts_job_t *job) {
  vp_parts_release(env, &job->parts);
  if (job->out_ref) napi_delete_reference(env, job->out_ref);
  free(job->sealed);
  OPENSSL_cleanse(job->seal_key, sizeof job->seal_key);
  OPENSSL_cleanse(job->id_key, sizeof job->id_key);
  free(job);
}

/* HMAC through OpenSSL 3's EVP_MAC (the HMAC_CTX calls are deprecated): the algorithm is fetched once for the
 * process and shared by every thread (a fetched EVP_MAC is reference-counted and safe to share); each job has its
 * own context. */
static void parts_execute(napi_env env, void *data) {
  parts_job_t *job = data;
  job->ok = job->have_id || vp_hmac_sha256(job->id_key, job->parts.iov, job->parts.count, job->id);
  if (!job->ok || !job->want_seal) return;
  uint8_t *into = job->out;
  if (!into) into = job->sealed = malloc(VP_SEAL_OVERHEAD + job->parts.bytes);
  job->ok = into && vp_seal(job->seal_key, &job->aead, job->salt, job->id, job->parts.iov, job->parts.count, into);
}

static void parts_complete(napi_env env, napi_status status, void *data) {
  parts_job_t *job = data;
  if (status == napi_cancelled || !job->ok) {
    vp_reject(env, job->deferred, status == napi_cancelled ? "sealParts: cancelled" : "sealParts: the crypto library failed");
  } else {
    napi_value result, id;
    napi_create_object(env, &result);
    napi_create_buffer_copy(env, VP_ID_BYTES, job->id, NULL, &id);
    napi_set_named_property(env, result, "id", id);
    int handed = 1;
    if (job->want_seal && !job->out) {
      napi_value sealed;
      handed = hand_over(env, job->sealed, job->sealed, VP_SEAL_OVERHEAD + job->parts.bytes, &sealed);
      job->sealed = NULL;
      napi_set_named_property(env, result, "sealed", sealed);
    }
    if (handed) {
      napi_resolve_deferred(env, job->deferred, result);
    } else {
      vp_reject(env, job->deferred, "sealParts: out of memory");
    }
  }
  napi_delete_async_work(env, job->work);
  parts_job_free(env, job);
}

static napi_value seal_parts(napi_env env, napi_callback_info info) {
  static const char *usage =
      "sealParts(parts: Uint8Array[], sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), keyLabel: Uint8Array(1 to 64), "
      "aadPrefix: Uint8Array(0 to 16), salt: Uint8Array(32) | null, id: Uint8Array(32) | null, out?: Uint8Array | null)";
  size_t argc = 8;
  napi_value argv[8];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7 || argc > 8) return fail(env, usage);
  parts_job_t *job = calloc(1, sizeof *job);
  if (!job) return fail(env, "sealParts: out of memory");
  /* The parts first: fetching an element may run JavaScript, so no other typed array's pointer is taken before. */
  int read = parts_read_whole(env, argv[0], &job->parts);
  if (read != 1) {
    parts_job_free(env, job);
    return fail(env, read < 0 ? "sealParts: out of memory" : usage);
  }
  uint8_t *seal_key, *id_key, *salt = NULL, *id = NULL;
  napi_valuetype salt_type, id_type;
  if (!get_bytes(env, argv[1], VP_KEY_BYTES, &seal_key, NULL) || !get_bytes(env, argv[2], VP_KEY_BYTES, &id_key, NULL) ||
      !read_aead(env, argv[3], argv[4], &job->aead) || napi_typeof(env, argv[5], &salt_type) != napi_ok ||
      napi_typeof(env, argv[6], &id_type) != napi_ok || (salt_type != napi_null && !get_bytes(env, argv[5], VP_SALT_BYTES, &salt, NULL)) ||
      (id_type != napi_null && !get_bytes(env, argv[6], VP_ID_BYTES, &id, NULL)) || (id && !salt)) {
    parts_job_free(env, job);
    return fail(env, usage);
  }
  if (job->parts.bytes > (1u << 30)) {
    parts_job_free(env, job);
    return fail(env, "sealParts: a chunk is at most 1 GiB");
  }
  napi_valuetype out_type = napi_undefined;
  if (argc == 8 && napi_typeof(env, argv[7], &out_type) != napi_ok) out_type = napi_undefined;
  if (out_type != napi_undefined && out_type != napi_null) {
    size_t out_len = 0;
    if (!salt || !get_bytes(env, argv[7], 0, &job->out, &out_len) || out_len < VP_SEAL_OVERHEAD + job->parts.bytes) {
      parts_job_free(env, job);
      return fail(env, "sealParts: `out` must be a Uint8Array of at least 48 bytes more than the parts, and given only with a salt");
    }
    napi_create_reference(env, argv[7], 1, &job->out_ref);
  }
  memcpy(job->seal_key, seal_key, VP_KEY_BYTES);
  memcpy(job->id_key, id_key, VP_KEY_BYTES);
  if (salt) {
    job->want_seal = 1;
    memcpy(job->salt, salt, VP_SALT_BYTES);
  }
  if (id) {
    job->have_id = 1;
    memcpy(job->id, id, VP_ID_BYTES);
  }
  napi_value promise;
  napi_create_promise(env, &job->deferred, &promise);
  if (!vp_queue(env, "vaultpath:sealParts", parts_execute, parts_complete, job, &job->work, job->deferred)) parts_job_free(env, job);
  return promise;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* openBlobs, openBlobsInto                                                                                         */

/* Whether an open batch ran and the crypto library did its part for every blob (refusals are results, not failures). */
static int open_batch_ok(batch_t *batch, napi_status status) {
  int ok = status != napi_cancelled;
  for (uint32_t i = 0; ok && i < batch->count; i++) ok = !((vp_open_blob_t *)batch_item(batch, i))->crypto_failed;
  return ok;
}

static void open_batch_complete(napi_env env, napi_status status, void *data) {
  batch_t *batch = data;
  int ok = open_batch_ok(batch, status);
  napi_value results = NULL, result;
  if (ok) {
    napi_create_array_with_length(env, batch->count, &results);
    for (uint32_t i = 0; ok && i < batch->count; i++) {
      vp_open_blob_t *job = batch_item(batch, i);
      if (job->outcome != 0) {
        napi_create_object(env, &result);
        set_number(env, result, "outcome", job->outcome);
        set_number(env, result, "got", (double)job->got);
      } else {
        ok = hand_over(env, job->sealed, job->sealed + VP_SALT_BYTES, job->length - VP_SEAL_OVERHEAD, &result);
        job->sealed = NULL;
      }
      napi_set_element(env, results, i, result);
    }
  }
  batch_settle(env, batch, status, ok, results, "openBlobs");
}

/* The blobs of openBlobs or openBlobsInto (argv[0..5]) as a batch whose items `run`, or NULL after throwing. */
static batch_t *open_batch_new(napi_env env, napi_value *argv, const char *usage, void (*run)(void *)) {
  size_t n_specs = 0, ids_len = 0, prefixes_len = 0, prefix_len = 0;
  void *specs_data = NULL;
  uint8_t *ids, *prefixes, *seal_key, *id_key;
  vp_aead_ctx_t aead;
  int valid = vp_typed_array(env, argv[0], napi_float64_array, &n_specs, &specs_data) && n_specs != 0 && n_specs % SPEC_SLOTS == 0 &&
              n_specs / SPEC_SLOTS <= 4096 && get_bytes(env, argv[1], 0, &ids, &ids_len) && ids_len == n_specs / SPEC_SLOTS * VP_ID_BYTES &&
              get_bytes(env, argv[2], 0, &prefixes, &prefixes_len) && prefixes_len % (n_specs / SPEC_SLOTS) == 0 &&
              (prefix_len = prefixes_len / (n_specs / SPEC_SLOTS)) <= VP_PREFIX_MAX && get_bytes(env, argv[3], VP_KEY_BYTES, &seal_key, NULL) &&
              get_bytes(env, argv[4], VP_KEY_BYTES, &id_key, NULL) && read_label(env, argv[5], &aead);
  if (!valid) {
    fail(env, usage);
    return NULL;
  }
  const double *specs = specs_data;
  uint32_t count = (uint32_t)(n_specs / SPEC_SLOTS);
  aead.prefix_len = prefix_len;
  batch_t *batch = batch_new(count, sizeof(vp_open_blob_t), run, open_item_clear);
  if (!batch) {
    fail(env, "openBlobs: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    vp_open_blob_t *job = batch_item(batch, i);
    job->out_fd = job->direct_fd = -1;
  }
  for (uint32_t i = 0; i < count; i++) {
    const double *spec = specs + (size_t)i * SPEC_SLOTS;
    vp_open_blob_t *job = batch_item(batch, i);
    double fd = spec[0], offset = spec[1], length = spec[2], check_id = spec[3];
    if (!whole_in(fd, 0, INT_MAX) || !whole_in(offset, 0, VP_MAX_SAFE) || !whole_in(length, VP_SEAL_OVERHEAD, (double)(1 << 30)) ||
        !whole_in(check_id, 0, 1)) {
      batch_free(env, batch);
      fail(env, usage);
      return NULL;
    }
    job->fd = (int)fd;
    job->offset = (int64_t)offset;
    job->length = (size_t)length;
    job->check_id = check_id == 1;
    job->aead = aead;
    memcpy(job->aead.prefix, prefixes + (size_t)i * prefix_len, prefix_len);
    memcpy(job->seal_key, seal_key, VP_KEY_BYTES);
    memcpy(job->id_key, id_key, VP_KEY_BYTES);
    memcpy(job->id, ids + (size_t)i * VP_ID_BYTES, VP_ID_BYTES);
  }
  return batch;
}

static napi_value open_blobs(napi_env env, napi_callback_info info) {
  static const char *usage =
      "openBlobs(specs: Float64Array(4 × n: fd, offset, length, check id 1 or 0), ids: Uint8Array(32 × n), "
      "aadPrefixes: Uint8Array(p × n, p <= 16), sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), keyLabel: Uint8Array(1 to 64))";
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6) return fail(env, usage);
  batch_t *batch = open_batch_new(env, argv, usage, open_one);
  if (!batch) return NULL;
  return batch_queue(env, batch, "vaultpath:openBlobs", open_batch_complete);
}

static void open_into_complete(napi_env env, napi_status status, void *data) {
  batch_t *batch = data;
  int ok = open_batch_ok(batch, status);
  napi_value buffer, results = NULL;
  double *out = NULL;
  ok = ok && napi_create_arraybuffer(env, (size_t)batch->count * 2 * sizeof(double), (void **)&out, &buffer) == napi_ok &&
       napi_create_typedarray(env, napi_float64_array, (size_t)batch->count * 2, buffer, 0, &results) == napi_ok;
  for (uint32_t i = 0; ok && i < batch->count; i++) {
    vp_open_blob_t *job = batch_item(batch, i);
    out[2 * i] = job->outcome;
    out[2 * i + 1] = (double)job->got;
  }
  batch_settle(env, batch, status, ok, results, "openBlobsInto");
}

static napi_value open_blobs_into(napi_env env, napi_callback_info info) {
  static const char *usage =
      "openBlobsInto(specs: Float64Array(4 × n: fd, offset, length, check id 1 or 0), ids: Uint8Array(32 × n), "
      "aadPrefixes: Uint8Array(p × n, p <= 16), sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), keyLabel: Uint8Array(1 to 64), "
      "targets: Float64Array(3 × n: fd, direct fd or -1, offset))";
  size_t argc = 7, n_targets = 0;
  napi_value argv[7];
  void *targets_data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7 ||
      !vp_typed_array(env, argv[6], napi_float64_array, &n_targets, &targets_data))
    return fail(env, usage);
  batch_t *batch = open_batch_new(env, argv, usage, open_into_one);
  if (!batch) return NULL;
  const double *targets = targets_data;
  /* Every number checked before any is converted: a cast of one out of range is undefined behaviour. */
  int valid = n_targets == (size_t)batch->count * 3;
  for (uint32_t i = 0; valid && i < batch->count; i++)
    valid = whole_in(targets[3 * i], 0, INT_MAX) && whole_in(targets[3 * i + 1], -1, INT_MAX) && whole_in(targets[3 * i + 2], 0, VP_MAX_SAFE);
  if (!valid) {
    batch_free(env, batch);
    return fail(env, usage);
  }
  for (uint32_t i = 0; i < batch->count; i++) {
    vp_open_blob_t *job = batch_item(batch, i);
    job->out_fd = (int)targets[3 * i];
    job->direct_fd = (int)targets[3 * i + 1];
    job->out_offset = (int64_t)targets[3 * i + 2];
  }
  return batch_queue(env, batch, "vaultpath:openBlobsInto", open_into_complete);
}

void vp_register_crypto(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sealFiles", NAPI_AUTO_LENGTH, seal_files, NULL, &fn);
  napi_set_named_property(env, exports, "sealFiles", fn);
  napi_create_function(env, "sealParts", NAPI_AUTO_LENGTH, seal_parts, NULL, &fn);
  napi_set_named_property(env, exports, "sealParts", fn);
  napi_create_function(env, "openBlobs", NAPI_AUTO_LENGTH, open_blobs, NULL, &fn);
  napi_set_named_property(env, exports, "openBlobs", fn);
  napi_create_function(env, "openBlobsInto", NAPI_AUTO_LENGTH, open_blobs_into, NULL, &fn);
  napi_set_named_property(env, exports, "openBlobsInto", fn);
}
