/*
 * Bulk blob crypto as libuv thread-pool jobs, on the OpenSSL that Node itself links (its symbols and headers are
 * Node's, as for any addon), so the event loop never hashes, encrypts or decrypts bulk bytes: the backup's per-file
 * sealing and per-pack writing and hashing, and the restore's opening of data blobs.
 *
 * sealFiles(paths: (string | Uint8Array)[], sizes: number[], sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32),
 *           type: number, salts: Uint8Array(32 × paths.length), out?: Uint8Array | null,
 *           expect?: BigUint64Array(2 × paths.length) | null): Promise<SealFileResult[]>
 *
 *   Whole small files that are one chunk each (the caller guarantees each size is below the chunker's minimum), as
 *   one job for the lot (up to 4096), one after another; for each, with its own 32 bytes of `salts`:
 *     open(path, O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW); fstat: a regular file, and with `expect` the
 *     file of device expect[2i] and inode expect[2i+1] (what the scan saw; inode 0: not checked); read `size` bytes from offset 0 (stops
 *     early at end of file); fstat; close
 *   A path is a string, or its bytes (a name that is not UTF-8); either is refused whole, never cut short.
 *     id     = HMAC-SHA256(chunkIdKey, bytes read)                                   (crypto/chunk-id.ts)
 *     key    = HMAC-SHA256(sealKey, "vaultpath/v1/object-key" ‖ salt ‖ 0x01)           (crypto/envelope.ts)
 *     sealed = salt ‖ AES-256-GCM(key, nonce 0¹², aad = 01 ‖ type ‖ 00 ‖ 00 ‖ salt ‖ id, bytes) ‖ tag
 *   The plaintext is read straight into the sealed buffer and encrypted in place: no copy. Without `out`, each
 *   file's sealed buffer is allocated here and handed to JS as `sealed`. With `out` (at least the sum of
 *   size + 48 over the files), file i is sealed into `out` at the sum of (size + 48) of the files before it and
 *   there is no `sealed`: the caller reuses its buffers, where one allocation per file would be freed only when the
 *   collector runs (tens of MiB for a folder of small files). `out` is kept alive until the job settles.
 *   Resolves to one result per path, in order: { errno: 0, id, sealed?, bytes, size, mtimeSec, mtimeNsec, ctimeSec,
 *   ctimeNsec } (the fstat after reading), or { errno, step: "open" | "read" } when a system call failed (a path too
 *   long is ENAMETOOLONG, a folder EISDIR, one holding a NUL or naming something other than a regular file EINVAL, a
 *   symbolic link ELOOP, a regular file other than `expect` says ESTALE, all at "open"; the file is opened
 *   non-blocking, so a FIFO never holds the job, and is never read when it is not the file expected); rejects only when the work cannot be queued or the
 *   crypto library fails. One job for many files spares a thread hand-off
 *   and a promise per file, which for files of a few KiB cost more than their crypto.
 *
 * writePack(path: string, parts: Uint8Array[], from?: string, ranges?: Float64Array): Promise<Buffer>
 *
 *   A pack staged in the scratch cache: creates `path` (O_EXCL, mode 0644), writes to it, in order, the byte ranges
 *   of file `from` (`ranges` holds offset, length pairs; a pack's blobs, staged there as they were sealed, taken in
 *   the pack's shuffled order) and then the parts, and resolves to the SHA-256 of what it wrote (the pack's id),
 *   hashing each piece right after reading or copying it, while it is in the cache. A range past the end of `from`
 *   fails with EIO. The file is written with O_DIRECT through a 4 KiB-aligned buffer of the pool thread's (2 MiB,
 *   kept between jobs), the last partial block without: staged packs are read once (linked into a local vault, or
 *   uploaded) and then deleted, so passing them through the page cache only costs a copy into freshly allocated
 *   pages and evicts the user's own cached files. Where the file system refuses O_DIRECT the file is written the
 *   ordinary way. Not synced: the store syncs what it keeps. Rejects with an Error whose `errno` is that of the
 *   failed system call (EEXIST, ENOSPC, ...); the file may then exist, partly written, and the caller removes it.
 *
 * sealParts(parts: Uint8Array[], sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), type: number,
 *           salt: Uint8Array(32) | null, id: Uint8Array(32) | null, out?: Uint8Array | null)
 *   : Promise<{ id: Buffer, sealed?: Buffer }>
 *
 *   A chunk given as slices (views of the backup's read buffers), as one job: its id (HMAC-SHA256 under chunkIdKey,
 *   unless `id` is given) and, when `salt` is given, the blob sealed under that id exactly as sealFiles seals,
 *   encrypted straight from the slices (no copy of the plaintext) into `out` when given (its first 48 + bytes
 *   bytes; it must be at least that long, and `sealed` is then absent: the caller's buffer holds it), else into a
 *   buffer of its own. Identify only: salt null. Seal only: both given. Neither the parts nor `out` are copied:
 *   the caller must not touch their bytes until it settles.
 *
 * openBlobs(specs: Float64Array(5 × n), ids: Uint8Array(32 × n), sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32))
 *   : Promise<(Buffer | { outcome: number, got: number })[]>
 *
 *   Blobs stored bare in packs (salt ‖ ciphertext ‖ tag), up to 4096 in one job, one after another; blob i is
 *   described by specs[5i..5i+4] = fd, offset, length, type, codec, and ids[32i..32i+31] is its id. For each:
 *     pread `length` bytes from the open file `fd` at `offset`; key = as above from the blob's salt;
 *     plaintext = AES-256-GCM-open(key, nonce 0¹², aad = 01 ‖ type ‖ codec ‖ 00 ‖ salt ‖ id, ciphertext, tag)
 *     then HMAC-SHA256(chunkIdKey, plaintext) must equal `id` (compared in constant time).
 *   Each blob is decrypted in place: its plaintext is a view of the one buffer read into. Resolves to one result
 *   per blob, in order: the plaintext, or { outcome, got } (the bytes read) where outcome is a positive errno (the
 *   read failed), OPEN_SHORT (-1: the file ends before `length` bytes), OPEN_AUTH (-2: the tag does not verify),
 *   OPEN_CODEC (-4: authentic, under a codec other than none, which this version does not decode) or OPEN_ID (-3:
 *   authentic, but the plaintext does not hash to `id`). Nothing but the plaintext of a blob that passed every
 *   check is ever handed back.
 *
 * openBlobsInto(specs: Float64Array(5 × n), ids: Uint8Array(32 × n), sealKey: Uint8Array(32),
 *               chunkIdKey: Uint8Array(32), targets: Float64Array(3 × n)): Promise<Float64Array(2 × n)>
 *
 *   As openBlobs, but blob i's plaintext, once it has passed every check, is written with pwrite to the open file
 *   targets[3i] at offset targets[3i+2] instead of being handed back: a restore's large file is filled chunk by
 *   chunk without its bytes ever reaching JavaScript. targets[3i+1] is the same file opened again with O_DIRECT, or
 *   -1: the whole 4 KiB pages a blob covers are then written through it, bypassing the page cache (on some machines
 *   copying into freshly allocated page-cache pages costs several times the write itself, and a restored tree would
 *   evict the user's cached files); the partial pages at its ends, and pages the direct descriptor refuses, go
 *   through targets[3i]. The blobs are read into one 4 KiB-aligned buffer per pool thread, kept between jobs up to
 *   8 MiB, so a restore does not fault in fresh pages for every chunk. Resolves to [outcome, got] per blob: outcome
 *   0 (written whole), or as openBlobs, or OPEN_WRITE (-5) with `got` the errno of the failed write. Nothing is
 *   written for a blob that failed a check. Writes are positional, so blobs of one file may be written by several
 *   jobs at once; the caller must keep each target open until the job settles.
 *
 * Arguments of the wrong type or length throw synchronously, before any work is queued. Numbers are checked whole
 * (a number, whole, in range) before any is converted, and every array element is fetched (which may run
 * JavaScript) before any pointer into a typed array is taken: nothing JavaScript does can change what a job reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "napi_job.h"
#include "parts.h"

#define KEY_BYTES 32
#define SALT_BYTES 32
#define TAG_BYTES 16
#define ID_BYTES 32

static const char OBJECT_KEY_LABEL[] = "vaultpath/v1/object-key";

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, "EINVAL", message);
  return NULL;
}

/* The bytes of a Uint8Array argument, which must be exactly `want` long (or any length when want is 0). */
static int get_bytes(napi_env env, napi_value value, size_t want, uint8_t **out, size_t *len) {
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
static int read_path_arg(napi_env env, napi_value value, char *out) {
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
static int parts_read_whole(napi_env env, napi_value value, vp_parts_t *parts) {
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

/* ---------------------------------------------------------------------------------------------------------------- */
/* sealFiles                                                                                                        */

/* One file of a sealFiles batch. */
typedef struct {
  char path[PATH_BYTES];
  size_t size;
  uint8_t seal_key[KEY_BYTES];
  uint8_t id_key[KEY_BYTES];
  uint8_t salt[SALT_BYTES];
  uint8_t type;
  int check_ident; /* the file opened must be expect_dev / expect_ino (what the scan saw) */
  uint64_t expect_dev, expect_ino;
  /* results */
  int err;
  const char *step;
  int crypto_failed;
  uint8_t *sealed; /* salt ‖ ciphertext ‖ tag, SALT_BYTES + bytes + TAG_BYTES long */
  int borrowed;    /* `sealed` lies in the caller's output buffer (not ours to free or hand over) */
  size_t bytes;    /* plaintext bytes read */
  uint8_t id[ID_BYTES];
  struct stat st;
} seal_job_t;

/* Frees what one file's sealing holds, not the struct itself. */
static void seal_item_clear(void *data) {
  seal_job_t *job = data;
  if (!job->borrowed) free(job->sealed);
  job->sealed = NULL;
  OPENSSL_cleanse(job->seal_key, sizeof job->seal_key);
  OPENSSL_cleanse(job->id_key, sizeof job->id_key);
}

static const uint8_t zero_nonce[12] = {0};

/* The per-object key, HKDF-Expand(sealKey, label ‖ salt, 32). 1 on success. */
static int object_key(const uint8_t *seal_key, const uint8_t *salt, uint8_t key[KEY_BYTES]) {
  uint8_t info[sizeof OBJECT_KEY_LABEL - 1 + SALT_BYTES + 1];
  unsigned int mac_len = 0;
  memcpy(info, OBJECT_KEY_LABEL, sizeof OBJECT_KEY_LABEL - 1);
  memcpy(info + sizeof OBJECT_KEY_LABEL - 1, salt, SALT_BYTES);
  info[sizeof info - 1] = 1;
  return HMAC(EVP_sha256(), seal_key, KEY_BYTES, info, sizeof info, key, &mac_len) && mac_len == KEY_BYTES;
}

/* The associated data: envelope version 1 ‖ type ‖ codec ‖ reserved 0 ‖ salt ‖ id. */
static void blob_aad(uint8_t aad[4 + SALT_BYTES + ID_BYTES], uint8_t type, uint8_t codec, const uint8_t *salt, const uint8_t *id) {
  aad[0] = 1;
  aad[1] = type;
  aad[2] = codec;
  aad[3] = 0;
  memcpy(aad + 4, salt, SALT_BYTES);
  memcpy(aad + 4 + SALT_BYTES, id, ID_BYTES);
}

/* 1 on success. */
static int seal_in_place(seal_job_t *job) {
  uint8_t *salt = job->sealed, *data = job->sealed + SALT_BYTES, *tag = data + job->bytes;
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), job->id_key, KEY_BYTES, data, job->bytes, job->id, &mac_len) || mac_len != ID_BYTES) return 0;
  uint8_t key[KEY_BYTES];
  if (!object_key(job->seal_key, salt, key)) return 0;
  uint8_t aad[4 + SALT_BYTES + ID_BYTES];
  blob_aad(aad, job->type, 0, salt, job->id);

  int ok = 0, n = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, zero_nonce) == 1 &&
      EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof aad) == 1) {
    ok = 1;
    /* In place, in pieces whose lengths fit an int. */
    for (size_t done = 0; ok && done < job->bytes;) {
      int piece = job->bytes - done > (1u << 30) ? (1 << 30) : (int)(job->bytes - done);
      ok = EVP_EncryptUpdate(ctx, data + done, &n, data + done, piece) == 1 && n == piece;
      done += (size_t)piece;
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, data + job->bytes, &n) == 1 && n == 0 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) == 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

static void seal_one(void *data) {
  seal_job_t *job = data;
  if (job->err != 0) return; /* refused when it was read: a path too long, or with a NUL inside */
  if (!job->borrowed) job->sealed = malloc(SALT_BYTES + job->size + TAG_BYTES);
  if (!job->sealed) {
    job->err = ENOMEM;
    job->step = "read";
    return;
  }
  /* Not through a symbolic link, and non-blocking, then checked to be a regular file (and, when the caller says
   * which, the very file the scan saw): a FIFO swapped in since the scan must not hold a pool thread, and a link or
   * another file put in its place must not have its bytes stored under this name. */
  int fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) {
    job->err = errno;
    job->step = "open";
    return;
  }
  struct stat first;
  int opened_err = fstat(fd, &first) != 0 ? errno : S_ISDIR(first.st_mode) ? EISDIR : !S_ISREG(first.st_mode) ? EINVAL : 0;
  if (opened_err == 0 && job->check_ident && ((uint64_t)first.st_dev != job->expect_dev || (uint64_t)first.st_ino != job->expect_ino))
    opened_err = ESTALE;
  if (opened_err != 0) {
    job->err = opened_err;
    job->step = "open";
    close(fd);
    return;
  }
  uint8_t *into = job->sealed + SALT_BYTES;
  size_t done = 0;
  while (done < job->size) {
    ssize_t n = pread(fd, into + done, job->size - done, (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      job->err = errno;
      break;
    }
    if (n == 0) break; /* the file shrank; the caller sees the short count and the fstat */
    done += (size_t)n;
  }
  if (job->err == 0 && fstat(fd, &job->st) != 0) job->err = errno;
  close(fd);
  if (job->err != 0) {
    job->step = "read";
    return;
  }
  job->bytes = done;
  memcpy(job->sealed, job->salt, SALT_BYTES);
  if (!seal_in_place(job)) job->crypto_failed = 1;
}

/*
 * Hands `length` bytes at `data` (inside the malloc'd block `block`) to JS as a Buffer without a copy, and tells V8
 * how much memory the Buffer holds, so that the collector runs (and frees the block) as often as the bytes call
 * for: an external buffer V8 knows nothing about counts as a few bytes, and thousands of them pile up between
 * collections. Falls back to a copy where the runtime refuses external buffers; either way `block` is owned by
 * the Buffer or freed. 1 on success; 0 (and null in *out) when not even the copy could be made.
 */
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

static int hand_over(napi_env env, void *block, uint8_t *data, size_t length, napi_value *out) {
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

static void set_number(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

/* One sealed file's result object (see sealFiles); 0 when the crypto library failed on it, or memory ran out. */
static int seal_result(napi_env env, seal_job_t *job, napi_value *result) {
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
  napi_create_buffer_copy(env, ID_BYTES, job->id, NULL, &id);
  napi_set_named_property(env, *result, "id", id);
  if (!job->borrowed) {
    int handed = hand_over(env, job->sealed, job->sealed, SALT_BYTES + job->bytes + TAG_BYTES, &sealed);
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
static batch_t *batch_new(uint32_t count, size_t item_size, void (*run)(void *), void (*clear)(void *)) {
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

static void *batch_item(batch_t *batch, uint32_t i) { return batch->items + (size_t)i * batch->item_size; }

static void batch_free(napi_env env, batch_t *batch) {
  if (batch->keep) napi_delete_reference(env, batch->keep);
  for (uint32_t i = 0; i < batch->count; i++) batch->clear(batch_item(batch, i));
  free(batch->items);
  free(batch);
}

static void batch_execute(napi_env env, void *data) {
  batch_t *batch = data;
  for (uint32_t i = 0; i < batch->count; i++) batch->run(batch_item(batch, i));
}

/* Resolves the batch's promise to `result` when `ok`, else rejects it naming `name`; then frees the batch. */
static void batch_settle(napi_env env, batch_t *batch, napi_status status, int ok, napi_value result, const char *name) {
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

/* The batch's promise, with its work queued on the thread pool (or the batch freed and the promise rejected). */
static napi_value batch_queue(napi_env env, batch_t *batch, const char *resource, napi_async_complete_callback complete) {
  napi_value promise;
  napi_create_promise(env, &batch->deferred, &promise);
  if (!vp_queue(env, resource, batch_execute, complete, batch, &batch->work, batch->deferred)) batch_free(env, batch);
  return promise;
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
      "type: number, salts: Uint8Array(32 × paths.length), out?: Uint8Array | null, expect?: BigUint64Array(2 × paths.length) | null)";
  size_t argc = 8;
  napi_value argv[8];
  bool paths_array = false, sizes_array = false;
  uint32_t count = 0, sizes_count = 0;
  double type = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || argc > 8 ||
      napi_is_array(env, argv[0], &paths_array) != napi_ok || !paths_array || napi_is_array(env, argv[1], &sizes_array) != napi_ok ||
      !sizes_array || napi_get_array_length(env, argv[0], &count) != napi_ok ||
      napi_get_array_length(env, argv[1], &sizes_count) != napi_ok || sizes_count != count || count == 0 || count > 4096 ||
      !get_whole(env, argv[4], 0, 255, &type))
    return fail(env, usage);
  batch_t *batch = batch_new(count, sizeof(seal_job_t), seal_one, seal_item_clear);
  if (!batch) return fail(env, "sealFiles: out of memory");
  /* The arrays' elements first, each checked whole: fetching one may run JavaScript (an accessor, a proxy), so no
   * pointer into a typed array is taken until the last is read. */
  for (uint32_t i = 0; i < count; i++) {
    seal_job_t *job = batch_item(batch, i);
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
  if (!get_bytes(env, argv[2], KEY_BYTES, &seal_key, NULL) || !get_bytes(env, argv[3], KEY_BYTES, &id_key, NULL) ||
      !get_bytes(env, argv[5], 0, &salts, &salts_len) || salts_len != (size_t)count * SALT_BYTES) {
    batch_free(env, batch);
    return fail(env, usage);
  }
  /* With `out`, file i is sealed into it at the sum of (size + SALT_BYTES + TAG_BYTES) of the files before it. */
  napi_valuetype out_type = napi_undefined, expect_type = napi_undefined;
  uint8_t *out = NULL;
  size_t out_len = 0, out_at = 0;
  if (argc >= 7 && (napi_typeof(env, argv[6], &out_type) != napi_ok ||
                    (out_type != napi_undefined && out_type != napi_null && !get_bytes(env, argv[6], 0, &out, &out_len)))) {
    batch_free(env, batch);
    return fail(env, usage);
  }
  /* With `expect`, file i must be the file of device expect[2i] and inode expect[2i+1]. */
  uint64_t *expect = NULL;
  size_t expect_len = 0;
  if (argc == 8 && (napi_typeof(env, argv[7], &expect_type) != napi_ok ||
                    (expect_type != napi_undefined && expect_type != napi_null &&
                     (!vp_typed_array(env, argv[7], napi_biguint64_array, &expect_len, (void **)&expect) || expect_len != (size_t)count * 2)))) {
    batch_free(env, batch);
    return fail(env, usage);
  }
  for (uint32_t i = 0; i < count; i++) {
    seal_job_t *job = batch_item(batch, i);
    if (out) {
      if (out_len - out_at < SALT_BYTES + job->size + TAG_BYTES) {
        batch_free(env, batch);
        return fail(env, "sealFiles: `out` is shorter than the files' sizes plus 48 bytes each");
      }
      job->sealed = out + out_at;
      job->borrowed = 1;
      out_at += SALT_BYTES + job->size + TAG_BYTES;
    }
    if (expect && expect[2 * i + 1] != 0) { /* inode 0, which no file has: not checked */
      job->check_ident = 1;
      job->expect_dev = expect[2 * i];
      job->expect_ino = expect[2 * i + 1];
    }
    job->type = (uint8_t)type;
    memcpy(job->seal_key, seal_key, KEY_BYTES);
    memcpy(job->id_key, id_key, KEY_BYTES);
    memcpy(job->salt, salts + (size_t)i * SALT_BYTES, SALT_BYTES);
  }
  if (out && napi_create_reference(env, argv[6], 1, &batch->keep) != napi_ok) {
    batch_free(env, batch);
    return fail(env, "sealFiles: out of memory");
  }
  return batch_queue(env, batch, "vaultpath:sealFiles", seal_batch_complete);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* writePack                                                                                                        */

#define DIRECT_ALIGN 4096
#define STAGE_BYTES (2u << 20)
static __thread uint8_t *stage; /* the pool thread's aligned staging buffer, STAGE_BYTES long */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  vp_parts_t parts;
  char path[PATH_BYTES];
  char from[PATH_BYTES]; /* the file the ranges are read from; "" when there are none */
  uint32_t range_count;
  uint64_t *ranges; /* offset, length pairs in `from` */
  uint8_t digest[32];
  int ok;  /* the crypto library did its part */
  int err; /* errno of the failed system call, or 0 */
} pack_job_t;

static void pack_job_free(napi_env env, pack_job_t *job) {
  vp_parts_release(env, &job->parts);
  free(job->ranges);
  free(job);
}

/* Turns O_DIRECT off for the rest of the file. 0, or the errno. */
static int undirect(int fd, int *direct) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0) return errno;
  *direct = 0;
  return 0;
}

/* Writes `length` bytes at `offset`, looping over short writes; *done counts the bytes written. 0, or the errno (EIO
 * for a write that wrote nothing). */
static int pwrite_all(int fd, const uint8_t *data, size_t length, off_t offset, size_t *done) {
  *done = 0;
  while (*done < length) {
    ssize_t n = pwrite(fd, data + *done, length - *done, offset + (off_t)*done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    *done += (size_t)n;
  }
  return 0;
}

/* Writes `length` bytes at `offset`. A direct write refused as misaligned (after a short direct write, whatever
 * follows is no longer aligned; or a device whose blocks are larger than 4 KiB) turns O_DIRECT off for the rest of
 * the file and is retried. 0, or the errno. */
static int write_at(int fd, int *direct, const uint8_t *data, size_t length, off_t offset) {
  size_t done = 0, more = 0;
  int err = pwrite_all(fd, data, length, offset, &done);
  if (err != EINVAL || !*direct) return err;
  err = undirect(fd, direct);
  return err ? err : pwrite_all(fd, data + done, length - done, offset + (off_t)done, &more);
}

/* The pack being written: its file, its hash, and the bytes in the stage not yet written. */
typedef struct {
  pack_job_t *job;
  int fd;
  int direct;
  EVP_MD_CTX *ctx;
  off_t offset; /* bytes written to the file */
  size_t staged;
} pack_out_t;

/* Hashes the `n` bytes just placed at the end of the stage, and writes the stage out once it is full. */
static void out_took(pack_out_t *o, size_t n) {
  o->job->ok = EVP_DigestUpdate(o->ctx, stage + o->staged, n) == 1;
  o->staged += n;
  if (o->staged == STAGE_BYTES && o->job->ok) {
    o->job->err = write_at(o->fd, &o->direct, stage, STAGE_BYTES, o->offset);
    o->offset += STAGE_BYTES;
    o->staged = 0;
  }
}

static int out_going(const pack_out_t *o) {
  return o->job->ok && !o->job->err;
}

/* Appends `length` bytes from memory. */
static void out_bytes(pack_out_t *o, const uint8_t *from, size_t length) {
  while (length > 0 && out_going(o)) {
    size_t piece = length < STAGE_BYTES - o->staged ? length : STAGE_BYTES - o->staged;
    memcpy(stage + o->staged, from, piece);
    from += piece;
    length -= piece;
    out_took(o, piece);
  }
}

/* Appends `length` bytes of file `in` from offset `at`, read straight into the stage. A file shorter than that is
 * EIO: the caller's ranges lie outside what it wrote. */
static void out_file(pack_out_t *o, int in, uint64_t at, uint64_t length) {
  while (length > 0 && out_going(o)) {
    size_t piece = length < STAGE_BYTES - o->staged ? (size_t)length : STAGE_BYTES - o->staged;
    ssize_t n = pread(in, stage + o->staged, piece, (off_t)at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      o->job->err = n < 0 ? errno : EIO;
      return;
    }
    at += (uint64_t)n;
    length -= (uint64_t)n;
    out_took(o, (size_t)n);
  }
}

static void pack_execute(napi_env env, void *data) {
  pack_job_t *job = data;
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
  pack_out_t o = {.job = job, .fd = -1, .direct = 1};
  job->ok = 1;
  if (!stage && posix_memalign((void **)&stage, DIRECT_ALIGN, STAGE_BYTES) != 0) {
    stage = NULL;
    job->err = ENOMEM;
    return;
  }
  int in = -1;
  if (job->from[0] && (in = open(job->from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
    job->err = errno;
    return;
  }
  o.fd = open(job->path, flags | O_DIRECT, 0644);
  if (o.fd < 0 && errno == EINVAL) {
    /* A file system without O_DIRECT: it refuses after creating the file, which O_EXCL says is ours. */
    unlink(job->path);
    o.direct = 0;
    o.fd = open(job->path, flags, 0644);
  }
  if (o.fd < 0) {
    job->err = errno;
    if (in >= 0) close(in);
    return;
  }
  unsigned int n = 0;
  o.ctx = EVP_MD_CTX_new();
  job->ok = o.ctx && EVP_DigestInit_ex(o.ctx, EVP_sha256(), NULL) == 1;
  for (uint32_t i = 0; i < job->range_count && out_going(&o); i++) out_file(&o, in, job->ranges[2 * i], job->ranges[2 * i + 1]);
  for (uint32_t i = 0; i < job->parts.count && out_going(&o); i++) out_bytes(&o, job->parts.iov[i].iov_base, job->parts.iov[i].iov_len);
  if (out_going(&o) && o.staged > 0) {
    /* The whole blocks directly; the last partial one through the page cache, as O_DIRECT takes whole blocks only. */
    size_t whole = o.staged / DIRECT_ALIGN * DIRECT_ALIGN;
    if (whole > 0) job->err = write_at(o.fd, &o.direct, stage, whole, o.offset);
    if (!job->err && whole < o.staged && o.direct) job->err = undirect(o.fd, &o.direct);
    if (!job->err && whole < o.staged) job->err = write_at(o.fd, &o.direct, stage + whole, o.staged - whole, o.offset + (off_t)whole);
  }
  job->ok = job->ok && (job->err || (EVP_DigestFinal_ex(o.ctx, job->digest, &n) == 1 && n == 32));
  EVP_MD_CTX_free(o.ctx);
  if (close(o.fd) != 0 && !job->err) job->err = errno;
  if (in >= 0) close(in);
}

static void pack_complete(napi_env env, napi_status status, void *data) {
  pack_job_t *job = data;
  if (status == napi_cancelled || !job->ok || job->err) {
    napi_value number, error = vp_error(env, status == napi_cancelled ? "writePack: cancelled" : !job->ok ? "writePack: the crypto library failed" : strerror(job->err));
    if (status != napi_cancelled && job->ok) {
      napi_create_int32(env, job->err, &number);
      napi_set_named_property(env, error, "errno", number);
    }
    napi_reject_deferred(env, job->deferred, error);
  } else {
    napi_value digest;
    napi_create_buffer_copy(env, 32, job->digest, NULL, &digest);
    napi_resolve_deferred(env, job->deferred, digest);
  }
  napi_delete_async_work(env, job->work);
  pack_job_free(env, job);
}

/* Reads `value`, a Float64Array of offset, length pairs (whole numbers from 0 to 2^53), into job->ranges. 1, 0 when it
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
  job->range_count = (uint32_t)(count / 2);
  job->ranges = malloc((count ? count : 1) * sizeof *job->ranges);
  if (!job->ranges) return -1;
  const double *numbers = data;
  for (size_t i = 0; i < count; i++) {
    double x = numbers[i];
    if (!(x >= 0 && x <= 9007199254740992.0) || x != (double)(uint64_t)x) return 0;
    job->ranges[i] = (uint64_t)x;
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
  if (vp_read_path(env, argv[0], job->path) != 1 || (argc == 4 && vp_read_path(env, argv[2], job->from) != 1) || (argc == 4 && !job->from[0])) {
    free(job);
    return fail(env, "writePack: each path must be a non-empty string shorter than 4096 bytes, without NUL");
  }
  int read = parts_read_whole(env, argv[1], &job->parts);
  if (read == 1 && argc == 4) read = read_ranges(env, argv[3], job);
  if (read != 1) {
    pack_job_free(env, job);
    return fail(env, read < 0 ? "writePack: out of memory" : usage);
  }
  napi_value promise;
  napi_create_promise(env, &job->deferred, &promise);
  if (!vp_queue(env, "vaultpath:writePack", pack_execute, pack_complete, job, &job->work, job->deferred)) pack_job_free(env, job);
  return promise;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* sealParts                                                                                                        */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  vp_parts_t parts;
  uint8_t seal_key[KEY_BYTES];
  uint8_t id_key[KEY_BYTES];
  uint8_t salt[SALT_BYTES];
  uint8_t id[ID_BYTES];
  uint8_t type;
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
static EVP_MAC *hmac_fetched;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static void hmac_fetch(void) { hmac_fetched = EVP_MAC_fetch(NULL, "HMAC", NULL); }
static EVP_MAC *hmac_algorithm(void) {
  pthread_once(&hmac_once, hmac_fetch);
  return hmac_fetched;
}
static const OSSL_PARAM *hmac_sha256_params(void) {
  static char digest[] = "SHA256";
  static const OSSL_PARAM params[] = {
    {OSSL_MAC_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING, digest, sizeof digest - 1, 0},
    OSSL_PARAM_END,
  };
  return params;
}

static void parts_execute(napi_env env, void *data) {
  parts_job_t *job = data;
  job->ok = 1;
  if (!job->have_id) {
    size_t mac_len = 0;
    EVP_MAC *hmac = hmac_algorithm();
    EVP_MAC_CTX *mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    job->ok = mac && EVP_MAC_init(mac, job->id_key, KEY_BYTES, hmac_sha256_params()) == 1;
    for (uint32_t i = 0; job->ok && i < job->parts.count; i++) job->ok = EVP_MAC_update(mac, job->parts.iov[i].iov_base, job->parts.iov[i].iov_len) == 1;
    job->ok = job->ok && EVP_MAC_final(mac, job->id, &mac_len, ID_BYTES) == 1 && mac_len == ID_BYTES;
    EVP_MAC_CTX_free(mac);
  }
  if (!job->ok || !job->want_seal) return;
  job->ok = 0;
  uint8_t *into = job->out;
  if (!into) into = job->sealed = malloc(SALT_BYTES + job->parts.bytes + TAG_BYTES);
  if (!into) return;
  memcpy(into, job->salt, SALT_BYTES);
  uint8_t key[KEY_BYTES], aad[4 + SALT_BYTES + ID_BYTES];
  if (!object_key(job->seal_key, job->salt, key)) return;
  blob_aad(aad, job->type, 0, job->salt, job->id);
  uint8_t *out = into + SALT_BYTES;
  int ok = 0, n = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, zero_nonce) == 1 &&
      EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof aad) == 1) {
    ok = 1;
    for (uint32_t i = 0; ok && i < job->parts.count; i++) {
      const uint8_t *in = job->parts.iov[i].iov_base;
      size_t len = job->parts.iov[i].iov_len;
      for (size_t done = 0; ok && done < len;) {
        int piece = len - done > (1u << 30) ? (1 << 30) : (int)(len - done);
        ok = EVP_EncryptUpdate(ctx, out, &n, in + done, piece) == 1 && n == piece;
        out += piece;
        done += (size_t)piece;
      }
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, out, &n) == 1 && n == 0 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, out) == 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(key, sizeof key);
  job->ok = ok;
}

static void parts_complete(napi_env env, napi_status status, void *data) {
  parts_job_t *job = data;
  if (status == napi_cancelled || !job->ok) {
    vp_reject(env, job->deferred, status == napi_cancelled ? "sealParts: cancelled" : "sealParts: the crypto library failed");
  } else {
    napi_value result, id;
    napi_create_object(env, &result);
    napi_create_buffer_copy(env, ID_BYTES, job->id, NULL, &id);
    napi_set_named_property(env, result, "id", id);
    int handed = 1;
    if (job->want_seal && !job->out) {
      napi_value sealed;
      handed = hand_over(env, job->sealed, job->sealed, SALT_BYTES + job->parts.bytes + TAG_BYTES, &sealed);
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
      "sealParts(parts: Uint8Array[], sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), type: number, "
      "salt: Uint8Array(32) | null, id: Uint8Array(32) | null, out?: Uint8Array | null)";
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || argc > 7) return fail(env, usage);
  parts_job_t *job = calloc(1, sizeof *job);
  if (!job) return fail(env, "sealParts: out of memory");
  /* The parts first: fetching an element may run JavaScript, so no other typed array's pointer is taken before. */
  int read = parts_read_whole(env, argv[0], &job->parts);
  if (read != 1) {
    parts_job_free(env, job);
    return fail(env, read < 0 ? "sealParts: out of memory" : usage);
  }
  double type = 0;
  uint8_t *seal_key, *id_key, *salt = NULL, *id = NULL;
  napi_valuetype salt_type, id_type;
  if (!get_bytes(env, argv[1], KEY_BYTES, &seal_key, NULL) || !get_bytes(env, argv[2], KEY_BYTES, &id_key, NULL) ||
      !get_whole(env, argv[3], 0, 255, &type) || napi_typeof(env, argv[4], &salt_type) != napi_ok ||
      napi_typeof(env, argv[5], &id_type) != napi_ok || (salt_type != napi_null && !get_bytes(env, argv[4], SALT_BYTES, &salt, NULL)) ||
      (id_type != napi_null && !get_bytes(env, argv[5], ID_BYTES, &id, NULL)) || (id && !salt)) {
    parts_job_free(env, job);
    return fail(env, usage);
  }
  if (job->parts.bytes > (1u << 30)) {
    parts_job_free(env, job);
    return fail(env, "sealParts: a chunk is at most 1 GiB");
  }
  napi_valuetype out_type = napi_undefined;
  if (argc == 7 && napi_typeof(env, argv[6], &out_type) != napi_ok) out_type = napi_undefined;
  if (out_type != napi_undefined && out_type != napi_null) {
    size_t out_len = 0;
    if (!salt || !get_bytes(env, argv[6], 0, &job->out, &out_len) || out_len < SALT_BYTES + job->parts.bytes + TAG_BYTES) {
      parts_job_free(env, job);
      return fail(env, "sealParts: `out` must be a Uint8Array of at least 48 bytes more than the parts, and given only with a salt");
    }
    napi_create_reference(env, argv[6], 1, &job->out_ref);
  }
  memcpy(job->seal_key, seal_key, KEY_BYTES);
  memcpy(job->id_key, id_key, KEY_BYTES);
  job->type = (uint8_t)type;
  if (salt) {
    job->want_seal = 1;
    memcpy(job->salt, salt, SALT_BYTES);
  }
  if (id) {
    job->have_id = 1;
    memcpy(job->id, id, ID_BYTES);
  }
  napi_value promise;
  napi_create_promise(env, &job->deferred, &promise);
  if (!vp_queue(env, "vaultpath:sealParts", parts_execute, parts_complete, job, &job->work, job->deferred)) parts_job_free(env, job);
  return promise;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* openBlobs                                                                                                        */

enum { OPEN_SHORT = -1, OPEN_AUTH = -2, OPEN_ID = -3, OPEN_CODEC = -4, OPEN_WRITE = -5 };

/* openBlobsInto's per-thread read buffer, DIRECT_ALIGN-aligned, kept between jobs while it is at most SCRATCH_KEEP
 * bytes. */
#define SCRATCH_KEEP (8u << 20)
static __thread uint8_t *scratch;
static __thread size_t scratch_size;

/* A buffer of at least `length` bytes owned by the calling thread, or NULL when out of memory. */
static uint8_t *scratch_get(size_t length) {
  if (scratch_size < length) {
    free(scratch);
    scratch_size = 0;
    if (posix_memalign((void **)&scratch, DIRECT_ALIGN, length) != 0) scratch = NULL;
    if (scratch) scratch_size = length;
  }
  return scratch;
}

/* Gives back what scratch_get lent: a buffer above SCRATCH_KEEP is freed rather than kept for the next job. */
static void scratch_put(void) {
  if (scratch_size > SCRATCH_KEEP) {
    free(scratch);
    scratch = NULL;
    scratch_size = 0;
  }
}

/* One blob of an openBlobs batch. */
typedef struct {
  int fd;
  int64_t offset;
  size_t length;
  uint8_t seal_key[KEY_BYTES];
  uint8_t id_key[KEY_BYTES];
  uint8_t id[ID_BYTES];
  uint8_t type, codec;
  int out_fd; /* openBlobsInto: where the plaintext goes, else -1 */
  int direct_fd; /* openBlobsInto: the same file opened with O_DIRECT, or -1 */
  int64_t out_offset;
  /* results */
  int outcome; /* 0, a positive errno, or one of OPEN_* */
  size_t got;  /* bytes read; for OPEN_WRITE, the write's errno */
  int crypto_failed;
  uint8_t *sealed; /* salt ‖ plaintext (decrypted in place) ‖ tag; the thread's scratch when out_fd >= 0 */
} open_job_t;

static void open_item_clear(void *data) {
  open_job_t *job = data;
  free(job->sealed); /* NULL for openBlobsInto's items, whose buffer is the thread's */
  job->sealed = NULL;
  OPENSSL_cleanse(job->seal_key, sizeof job->seal_key);
  OPENSSL_cleanse(job->id_key, sizeof job->id_key);
}

/* Authenticates and decrypts the body in place; OPEN_AUTH when the tag does not verify, -100 when the library fails. */
static int open_in_place(open_job_t *job) {
  uint8_t *salt = job->sealed, *data = job->sealed + SALT_BYTES;
  size_t bytes = job->length - SALT_BYTES - TAG_BYTES;
  uint8_t key[KEY_BYTES], aad[4 + SALT_BYTES + ID_BYTES], tag[TAG_BYTES];
  if (!object_key(job->seal_key, salt, key)) return -100;
  blob_aad(aad, job->type, job->codec, salt, job->id);
  memcpy(tag, data + bytes, TAG_BYTES);
  int ok = 0, n = 0, result = -100;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, zero_nonce) == 1 &&
      EVP_DecryptUpdate(ctx, NULL, &n, aad, sizeof aad) == 1) {
    ok = 1;
    for (size_t done = 0; ok && done < bytes;) {
      int piece = bytes - done > (1u << 30) ? (1 << 30) : (int)(bytes - done);
      ok = EVP_DecryptUpdate(ctx, data + done, &n, data + done, piece) == 1 && n == piece;
      done += (size_t)piece;
    }
    if (ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1)
      result = EVP_DecryptFinal_ex(ctx, data + bytes, &n) == 1 ? 0 : OPEN_AUTH;
  }
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(key, sizeof key);
  return result;
}

/* Reads, opens and checks one blob into job->sealed, which the caller provides: job->outcome stays 0 when it passed
 * every check (its plaintext is then at job->sealed + SALT_BYTES), else says why not. */
static void open_checked(open_job_t *job) {
  size_t done = 0;
  while (done < job->length) {
    ssize_t n = pread(job->fd, job->sealed + done, job->length - done, (off_t)(job->offset + (int64_t)done));
    if (n < 0) {
      if (errno == EINTR) continue;
      job->outcome = errno;
      return;
    }
    if (n == 0) {
      job->outcome = OPEN_SHORT;
      return;
    }
    done += (size_t)n;
    job->got = done;
  }
  int opened = open_in_place(job);
  if (opened == -100) {
    job->crypto_failed = 1;
    return;
  }
  if (opened != 0) {
    job->outcome = opened;
    return;
  }
  if (job->codec != 0) {
    job->outcome = OPEN_CODEC; /* authentic, but its plaintext is encoded; the id is of the decoded bytes */
    return;
  }
  uint8_t *plain = job->sealed + SALT_BYTES, mac[ID_BYTES];
  size_t bytes = job->length - SALT_BYTES - TAG_BYTES;
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), job->id_key, KEY_BYTES, plain, bytes, mac, &mac_len) || mac_len != ID_BYTES) {
    job->crypto_failed = 1;
    return;
  }
  if (CRYPTO_memcmp(mac, job->id, ID_BYTES) != 0) job->outcome = OPEN_ID;
}

static void open_one(void *data) {
  open_job_t *job = data;
  job->sealed = malloc(job->length);
  if (!job->sealed) {
    job->outcome = ENOMEM;
    return;
  }
  open_checked(job);
}

/* Writes a checked blob's plaintext `plain` to the file at `start`: the whole pages it covers through direct_fd when
 * there is one (straight from the buffer, bypassing the page cache; refused, they go through out_fd), the partial
 * pages at either end through out_fd. No page is written both ways, so the two never race in the page cache. */
static int write_plaintext(const open_job_t *job, const uint8_t *plain, size_t bytes) {
  const int64_t start = job->out_offset, end = start + (int64_t)bytes, page = DIRECT_ALIGN;
  int64_t a = (start + page - 1) / page * page, b = end / page * page;
  size_t done = 0, more = 0;
  if (job->direct_fd < 0 || b <= a) return pwrite_all(job->out_fd, plain, bytes, (off_t)start, &done);
  int err = pwrite_all(job->direct_fd, plain + (a - start), (size_t)(b - a), (off_t)a, &done);
  if (err == EINVAL) err = pwrite_all(job->out_fd, plain + (a - start) + done, (size_t)(b - a) - done, (off_t)a + (off_t)done, &more);
  if (!err) err = pwrite_all(job->out_fd, plain, (size_t)(a - start), (off_t)start, &done);
  if (!err) err = pwrite_all(job->out_fd, plain + (b - start), (size_t)(end - b), (off_t)b, &done);
  return err;
}

/* openBlobsInto's item: open_one into the thread's scratch, then the plaintext written to its target. The blob is
 * read to where its plaintext's byte for file offset x lies at an address ≡ x (mod DIRECT_ALIGN), as O_DIRECT
 * wants its buffers aligned like the file offsets. */
static void open_into_one(void *data) {
  open_job_t *job = data;
  size_t shift = (size_t)((job->out_offset - SALT_BYTES) & (DIRECT_ALIGN - 1));
  uint8_t *buffer = scratch_get(job->length + shift);
  if (!buffer) {
    job->outcome = ENOMEM;
    return;
  }
  job->sealed = buffer + shift;
  open_checked(job);
  if (job->outcome == 0 && !job->crypto_failed) {
    int err = write_plaintext(job, job->sealed + SALT_BYTES, job->length - SALT_BYTES - TAG_BYTES);
    if (err) {
      job->outcome = OPEN_WRITE;
      job->got = (size_t)err;
    }
  }
  job->sealed = NULL;
  scratch_put();
}



/* Whether an open batch ran and the crypto library did its part for every blob (refusals are results, not failures). */
static int open_batch_ok(batch_t *batch, napi_status status) {
  int ok = status != napi_cancelled;
  for (uint32_t i = 0; ok && i < batch->count; i++) ok = !((open_job_t *)batch_item(batch, i))->crypto_failed;
  return ok;
}

static void open_batch_complete(napi_env env, napi_status status, void *data) {
  batch_t *batch = data;
  int ok = open_batch_ok(batch, status);
  napi_value results = NULL, result;
  if (ok) {
    napi_create_array_with_length(env, batch->count, &results);
    for (uint32_t i = 0; ok && i < batch->count; i++) {
      open_job_t *job = batch_item(batch, i);
      if (job->outcome != 0) {
        napi_create_object(env, &result);
        set_number(env, result, "outcome", job->outcome);
        set_number(env, result, "got", (double)job->got);
      } else {
        ok = hand_over(env, job->sealed, job->sealed + SALT_BYTES, job->length - SALT_BYTES - TAG_BYTES, &result);
        job->sealed = NULL;
      }
      napi_set_element(env, results, i, result);
    }
  }
  batch_settle(env, batch, status, ok, results, "openBlobs");
}

/* The blobs of openBlobs or openBlobsInto (argv[0..3]) as a batch whose items `run`, or NULL after throwing. */
static batch_t *open_batch_new(napi_env env, napi_value *argv, const char *usage, void (*run)(void *)) {
  size_t n_specs = 0, ids_len = 0;
  void *specs_data = NULL;
  uint8_t *ids, *seal_key, *id_key;
  if (!vp_typed_array(env, argv[0], napi_float64_array, &n_specs, &specs_data) || n_specs == 0 || n_specs % 5 != 0 || n_specs / 5 > 4096 || !get_bytes(env, argv[1], 0, &ids, &ids_len) ||
      ids_len != n_specs / 5 * ID_BYTES || !get_bytes(env, argv[2], KEY_BYTES, &seal_key, NULL) ||
      !get_bytes(env, argv[3], KEY_BYTES, &id_key, NULL)) {
    fail(env, usage);
    return NULL;
  }
  const double *specs = specs_data;
  uint32_t count = (uint32_t)(n_specs / 5);
  batch_t *batch = batch_new(count, sizeof(open_job_t), run, open_item_clear);
  if (!batch) {
    fail(env, "openBlobs: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    open_job_t *job = batch_item(batch, i);
    job->out_fd = job->direct_fd = -1;
  }
  for (uint32_t i = 0; i < count; i++) {
    const double *spec = specs + (size_t)i * 5;
    open_job_t *job = batch_item(batch, i);
    double fd = spec[0], offset = spec[1], length = spec[2], type = spec[3], codec = spec[4];
    if (!whole_in(fd, 0, INT_MAX) || !whole_in(offset, 0, VP_MAX_SAFE) || !whole_in(length, SALT_BYTES + TAG_BYTES, (double)(1 << 30)) ||
        !whole_in(type, 0, 255) || !whole_in(codec, 0, 255)) {
      batch_free(env, batch);
      fail(env, usage);
      return NULL;
    }
    job->fd = (int)fd;
    job->offset = (int64_t)offset;
    job->length = (size_t)length;
    job->type = (uint8_t)type;
    job->codec = (uint8_t)codec;
    memcpy(job->seal_key, seal_key, KEY_BYTES);
    memcpy(job->id_key, id_key, KEY_BYTES);
    memcpy(job->id, ids + (size_t)i * ID_BYTES, ID_BYTES);
  }
  return batch;
}

static napi_value open_blobs(napi_env env, napi_callback_info info) {
  static const char *usage =
      "openBlobs(specs: Float64Array(5 × n: fd, offset, length, type, codec), ids: Uint8Array(32 × n), "
      "sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32))";
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) return fail(env, usage);
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
    open_job_t *job = batch_item(batch, i);
    out[2 * i] = job->outcome;
    out[2 * i + 1] = (double)job->got;
  }
  batch_settle(env, batch, status, ok, results, "openBlobsInto");
}

static napi_value open_blobs_into(napi_env env, napi_callback_info info) {
  static const char *usage =
      "openBlobsInto(specs: Float64Array(5 × n: fd, offset, length, type, codec), ids: Uint8Array(32 × n), "
      "sealKey: Uint8Array(32), chunkIdKey: Uint8Array(32), targets: Float64Array(3 × n: fd, direct fd or -1, offset))";
  size_t argc = 5, n_targets = 0;
  napi_value argv[5];
  void *targets_data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      !vp_typed_array(env, argv[4], napi_float64_array, &n_targets, &targets_data))
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
    open_job_t *job = batch_item(batch, i);
    job->out_fd = (int)targets[3 * i];
    job->direct_fd = (int)targets[3 * i + 1];
    job->out_offset = (int64_t)targets[3 * i + 2];
  }
  return batch_queue(env, batch, "vaultpath:openBlobsInto", open_into_complete);
}

void vp_register_blob_crypto(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sealFiles", NAPI_AUTO_LENGTH, seal_files, NULL, &fn);
  napi_set_named_property(env, exports, "sealFiles", fn);
  napi_create_function(env, "writePack", NAPI_AUTO_LENGTH, write_pack, NULL, &fn);
  napi_set_named_property(env, exports, "writePack", fn);
  napi_create_function(env, "sealParts", NAPI_AUTO_LENGTH, seal_parts, NULL, &fn);
  napi_set_named_property(env, exports, "sealParts", fn);
  napi_create_function(env, "openBlobs", NAPI_AUTO_LENGTH, open_blobs, NULL, &fn);
  napi_set_named_property(env, exports, "openBlobs", fn);
  napi_create_function(env, "openBlobsInto", NAPI_AUTO_LENGTH, open_blobs_into, NULL, &fn);
  napi_set_named_property(env, exports, "openBlobsInto", fn);
}
