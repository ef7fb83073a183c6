/*
 * writeFile(temp: string, path: string, chunks: Uint8Array[], mode: number, seconds: number, nanoseconds: number):
 *   Promise<number>
 *
 * A whole small file of a restore as one libuv thread-pool job (napi_create_async_work), so the event loop never
 * waits on the file system's journal and several files can be in flight at once:
 *
 *   lstat(path): a folder there → EISDIR, nothing created
 *   open(temp, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600)   exclusive: never opens what is already there
 *   pwritev(chunks, in order, from offset 0; short writes continued)
 *   fchmod(mode & 07777); futimens(access = modification = seconds.nanoseconds); close
 *   rename(temp, path)                                                replaces a link at path, never follows it
 *
 * The promise resolves to 0, or to the errno of the first step that failed; after a failure the temporary file is
 * removed (if this call created it) and nothing is left at temp. It rejects only when the work cannot be queued.
 * Arguments of the wrong type throw synchronously, before any work is queued. The chunks are not copied: a
 * reference to each keeps it alive until the job completes, and the caller must not change their bytes meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PATH_BYTES 4096

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char temp[PATH_BYTES];
  char path[PATH_BYTES];
  uint32_t count;
  struct iovec *iov;
  napi_ref *refs;
  mode_t mode;
  struct timespec times[2];
  int rc;
} job_t;

static void job_free(napi_env env, job_t *job) {
  if (job->refs)
    for (uint32_t i = 0; i < job->count; i++)
      if (job->refs[i]) napi_delete_reference(env, job->refs[i]);
  free(job->refs);
  free(job->iov);
  free(job);
}

/* Writes every iovec at offsets 0, 1, ... in order, continuing after short writes. 0 or the errno. */
static int write_all(int fd, struct iovec *iov, uint32_t count) {
  off_t at = 0;
  uint32_t i = 0;
  while (i < count && iov[i].iov_len == 0) i++;
  while (i < count) {
    int n = count - i > IOV_MAX ? IOV_MAX : (int)(count - i);
    ssize_t w = pwritev(fd, iov + i, n, at);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    at += w;
    size_t left = (size_t)w;
    while (i < count && left >= iov[i].iov_len) {
      left -= iov[i].iov_len;
      i++;
    }
    if (left > 0) { /* a short write inside iov[i]: continue from where it stopped */
      iov[i].iov_base = (char *)iov[i].iov_base + left;
      iov[i].iov_len -= left;
    }
    while (i < count && iov[i].iov_len == 0) i++;
  }
  return 0;
}

static void execute(napi_env env, void *data) {
  job_t *job = data;
  struct stat st;
  if (lstat(job->path, &st) == 0 && S_ISDIR(st.st_mode)) {
    job->rc = EISDIR;
    return;
  }
  int fd = open(job->temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    job->rc = errno; /* not created: whatever is at temp is not ours to remove */
    return;
  }
  int rc = write_all(fd, job->iov, job->count);
  if (rc == 0 && fchmod(fd, job->mode) != 0) rc = errno;
  if (rc == 0 && futimens(fd, job->times) != 0) rc = errno;
  if (close(fd) != 0 && rc == 0 && errno != EINTR) rc = errno;
  if (rc == 0 && rename(job->temp, job->path) != 0) rc = errno;
  if (rc != 0) unlink(job->temp);
  job->rc = rc;
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  napi_value result;
  napi_create_int32(env, status == napi_cancelled ? ECANCELED : job->rc, &result);
  napi_resolve_deferred(env, job->deferred, result);
  napi_delete_async_work(env, job->work);
  job_free(env, job);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, "EINVAL", message);
  return NULL;
}

static int get_path(napi_env env, napi_value value, char *out) {
  size_t written = 0;
  if (napi_get_value_string_utf8(env, value, out, PATH_BYTES, &written) != napi_ok) return 0;
  return written < PATH_BYTES - 1 && strlen(out) == written; /* too long, or a NUL inside: refused */
}

static napi_value write_file(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6)
    return fail(env, "writeFile(temp, path, chunks, mode, seconds, nanoseconds)");
  job_t *job = calloc(1, sizeof *job);
  if (!job) return fail(env, "writeFile: out of memory");
  int64_t mode = 0, sec = 0, nsec = 0;
  bool is_array = false;
  if (!get_path(env, argv[0], job->temp) || !get_path(env, argv[1], job->path) ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_value_int64(env, argv[3], &mode) != napi_ok || napi_get_value_int64(env, argv[4], &sec) != napi_ok ||
      napi_get_value_int64(env, argv[5], &nsec) != napi_ok || nsec < 0 || nsec > 999999999) {
    job_free(env, job);
    return fail(env, "writeFile(temp: string, path: string, chunks: Uint8Array[], mode, seconds, nanoseconds)");
  }
  napi_get_array_length(env, argv[2], &job->count);
  job->iov = calloc(job->count ? job->count : 1, sizeof *job->iov);
  job->refs = calloc(job->count ? job->count : 1, sizeof *job->refs);
  if (!job->iov || !job->refs) {
    job_free(env, job);
    return fail(env, "writeFile: out of memory");
  }
  for (uint32_t i = 0; i < job->count; i++) {
    napi_value item;
    bool is_typed = false;
    napi_typedarray_type type;
    size_t len = 0;
    void *bytes = NULL;
    if (napi_get_element(env, argv[2], i, &item) != napi_ok || napi_is_typedarray(env, item, &is_typed) != napi_ok ||
        !is_typed || napi_get_typedarray_info(env, item, &type, &len, &bytes, NULL, NULL) != napi_ok ||
        type != napi_uint8_array) {
      job_free(env, job);
      return fail(env, "writeFile: every chunk must be a Uint8Array");
    }
    napi_create_reference(env, item, 1, &job->refs[i]);
    job->iov[i].iov_base = bytes;
    job->iov[i].iov_len = len;
  }
  job->mode = (mode_t)(mode & 07777);
  job->times[0].tv_sec = job->times[1].tv_sec = (time_t)sec;
  job->times[0].tv_nsec = job->times[1].tv_nsec = (long)nsec;

  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "vaultpath:writeFile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_value message, error;
    napi_create_string_utf8(env, "writeFile: could not queue the work", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
    if (job->work) napi_delete_async_work(env, job->work);
    job_free(env, job);
  }
  return promise;
}

void vp_register_write_file(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "writeFile", NAPI_AUTO_LENGTH, write_file, NULL, &fn);
  napi_set_named_property(env, exports, "writeFile", fn);
}
