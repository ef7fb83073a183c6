/*
 * N-API glue of the restore's whole-file writer (kernels/write_file.c).
 *
 * writeFiles(files: { dir: number, temp: Buffer | string, name: Buffer | string, chunks: Uint8Array[], mode: number,
 *                     seconds: number, nanoseconds: number }[]): Promise<Int32Array>
 *
 * Whole small files of a restore, up to 4096 as one libuv thread-pool job (napi_create_async_work), one after
 * another, so the event loop never waits on the file system and a batch costs one thread hand-off, not one per file.
 * Every call is relative to `dir`, a folder the caller holds open until the promise settles, and `temp` and `name`
 * are single names in it (vp_read_name: bytes as they are, never `/`, `.`, `..` or NUL), so a folder above swapped
 * for a link while the batch runs cannot send a file elsewhere:
 *
 *   fstatat(dir, name, AT_SYMLINK_NOFOLLOW): a folder there → EISDIR, nothing created
 *   openat(dir, temp, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600)   exclusive: never opens what is there
 *   pwritev(chunks, in order, from offset 0; short writes continued)
 *   fchmod(mode & 07777); futimens(access = modification = seconds.nanoseconds, seconds negative before 1970)
 *   fstatat(dir, temp) is still the file written (device and inode) → else VP_WRITE_SWAPPED, not renamed, not removed
 *   close; renameat(dir, temp, dir, name)                       replaces a link at name, never follows it
 *
 * The promise resolves to one code per file, in order: 0, VP_WRITE_SWAPPED (-1: the temporary name was swapped for
 * another file or a link while it was written), or the errno of the first step that failed for it; after a failure
 * other than VP_WRITE_SWAPPED that file's temporary file is removed (if this call created it). A name that is not a single
 * safe name fails its file alone (EINVAL, ENAMETOOLONG), before any system call. It rejects only when the work cannot
 * be queued. Arguments of the wrong type throw synchronously, before any work is queued. The chunks are not copied: a
 * reference to each keeps it alive until the job completes, and the caller must not change their bytes meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../kernels/write_file.h"
#include "napi_job.h"
#include "parts.h"

/* One file of a batch: the kernel's description, and the references that keep its chunks alive. */
typedef struct {
  vp_write_file_t file;
  vp_parts_t chunks;
} job_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  uint32_t count;
  job_t *files;
} batch_t;

static void batch_free(napi_env env, batch_t *batch) {
  for (uint32_t i = 0; i < batch->count; i++) vp_parts_release(env, &batch->files[i].chunks);
  free(batch->files);
  free(batch);
}

static void execute(napi_env env, void *data) {
  batch_t *batch = data;
  for (uint32_t i = 0; i < batch->count; i++) vp_write_file(&batch->files[i].file);
}

static void complete(napi_env env, napi_status status, void *data) {
  batch_t *batch = data;
  napi_value buffer, result;
  int32_t *codes = NULL;
  if (napi_create_arraybuffer(env, (size_t)batch->count * sizeof(int32_t), (void **)&codes, &buffer) == napi_ok && codes &&
      napi_create_typedarray(env, napi_int32_array, batch->count, buffer, 0, &result) == napi_ok) {
    for (uint32_t i = 0; i < batch->count; i++) codes[i] = status == napi_cancelled ? ECANCELED : batch->files[i].file.rc;
    napi_resolve_deferred(env, batch->deferred, result);
  } else {
    vp_reject(env, batch->deferred, "writeFiles: out of memory for the results");
  }
  napi_delete_async_work(env, batch->work);
  batch_free(env, batch);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, "EINVAL", message);
  return NULL;
}

/* Reads one file's description into `job`; 0 when it is not what writeFiles takes. */
static int get_file(napi_env env, napi_value file, job_t *job) {
  napi_value dir, temp, name, chunks, mode_v, sec_v, nsec_v;
  double dirfd = -1, mode = 0, sec = 0, nsec = 0;
  if (napi_get_named_property(env, file, "dir", &dir) != napi_ok || napi_get_named_property(env, file, "temp", &temp) != napi_ok ||
      napi_get_named_property(env, file, "name", &name) != napi_ok || napi_get_named_property(env, file, "chunks", &chunks) != napi_ok ||
      napi_get_named_property(env, file, "mode", &mode_v) != napi_ok || napi_get_named_property(env, file, "seconds", &sec_v) != napi_ok ||
      napi_get_named_property(env, file, "nanoseconds", &nsec_v) != napi_ok || !get_whole(env, dir, 0, INT_MAX, &dirfd) ||
      !get_whole(env, mode_v, 0, 0177777, &mode) || !get_whole(env, sec_v, -VP_MAX_SAFE, VP_MAX_SAFE, &sec) ||
      !get_whole(env, nsec_v, 0, 999999999, &nsec))
    return 0;
  /* A name no single folder entry may have fails this file alone (its code, nothing written), not the batch. */
  vp_write_file_t *f = &job->file;
  int temp_ok = vp_read_name(env, temp, f->temp), name_ok = vp_read_name(env, name, f->name);
  if (temp_ok == 0 || name_ok == 0) return 0;
  if (temp_ok < 0 || name_ok < 0) f->rc = temp_ok < 0 ? -temp_ok : -name_ok;
  if (vp_parts_read(env, chunks, &job->chunks) != 1) return 0;
  f->iov = job->chunks.iov;
  f->iov_count = job->chunks.count;
  f->dir = (int)dirfd;
  f->mode = (mode_t)mode & 07777; /* a whole st_mode is taken; its permission bits are kept */
  f->times[0].tv_sec = f->times[1].tv_sec = (time_t)sec;
  f->times[0].tv_nsec = f->times[1].tv_nsec = (long)nsec;
  return 1;
}

static napi_value write_files(napi_env env, napi_callback_info info) {
  static const char *usage =
      "writeFiles(files: { dir: number, temp: Buffer | string, name: Buffer | string, chunks: Uint8Array[], mode: number, seconds: number, "
      "nanoseconds: number }[])";
  size_t argc = 1;
  napi_value argv[1];
  bool is_array = false;
  uint32_t count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &count) != napi_ok ||
      count == 0 || count > 4096)
    return fail(env, usage);
  batch_t *batch = calloc(1, sizeof *batch);
  if (batch) batch->files = calloc(count, sizeof *batch->files);
  if (!batch || !batch->files) {
    free(batch);
    return fail(env, "writeFiles: out of memory");
  }
  batch->count = count;
  for (uint32_t i = 0; i < count; i++) {
    napi_value file;
    if (napi_get_element(env, argv[0], i, &file) != napi_ok || !get_file(env, file, &batch->files[i])) {
      batch_free(env, batch);
      return fail(env, usage);
    }
  }
  napi_value promise;
  napi_create_promise(env, &batch->deferred, &promise);
  if (!vp_queue(env, "vaultpath:writeFiles", execute, complete, batch, &batch->work, batch->deferred)) batch_free(env, batch);
  return promise;
}

/* fsOpenDir(...), fsMkdir(...), …: the restore's descriptor-relative calls (fs_at.c), registered with the writer. */
void vp_register_fs_at(napi_env env, napi_value exports);

void vp_register_write_file(napi_env env, napi_value exports) {
  napi_value fn;
  vp_register_fs_at(env, exports);
  napi_create_function(env, "writeFiles", NAPI_AUTO_LENGTH, write_files, NULL, &fn);
  napi_set_named_property(env, exports, "writeFiles", fn);
}
