/* Sealed messages read from open files and opened, handed back or written to a target (open_blob.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io.h"
#include "open_blob.h"

/* vp_open_blob_into's per-thread read buffer, DIRECT_ALIGN-aligned, kept between jobs while it is at most SCRATCH_KEEP
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

void vp_open_blob_clear(vp_open_blob_t *job) {
  free(job->sealed); /* NULL for vp_open_blob_into's, whose buffer is the thread's */
  job->sealed = NULL;
  OPENSSL_cleanse(job->seal_key, sizeof job->seal_key);
  OPENSSL_cleanse(job->id_key, sizeof job->id_key);
}

/* Reads, opens and checks one blob into job->sealed, which the caller provides: job->outcome stays 0 when it passed
 * every check (its plaintext is then at job->sealed + VP_SALT_BYTES), else says why not. */
static void open_checked(vp_open_blob_t *job) {
  size_t done = 0;
  while (done < job->length) {
    ssize_t n = pread(job->fd, job->sealed + done, job->length - done, (off_t)(job->offset + (int64_t)done));
    if (n < 0) {
      if (errno == EINTR) continue;
      job->outcome = errno;
      return;
    }
    if (n == 0) {
      job->outcome = VP_OPEN_SHORT;
      return;
    }
    done += (size_t)n;
    job->got = done;
  }
  int opened = vp_open_in_place(job->seal_key, &job->aead, job->id, job->sealed, job->length);
  if (opened == VP_CRYPTO_FAILED) {
    job->crypto_failed = 1;
    return;
  }
  if (opened != 0) {
    job->outcome = opened;
    return;
  }
  if (!job->check_id) {
    job->outcome = VP_OPEN_UNCHECKED; /* authentic, but the caller says its id is not of these bytes */
    return;
  }
  uint8_t mac[VP_ID_BYTES];
  struct iovec plain = {.iov_base = job->sealed + VP_SALT_BYTES, .iov_len = job->length - VP_SEAL_OVERHEAD};
  if (!vp_hmac_sha256(job->id_key, &plain, 1, mac)) {
    job->crypto_failed = 1;
    return;
  }
  if (CRYPTO_memcmp(mac, job->id, VP_ID_BYTES) != 0) job->outcome = VP_OPEN_ID;
}

void vp_open_blob(vp_open_blob_t *job) {
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
static int write_plaintext(const vp_open_blob_t *job, const uint8_t *plain, size_t bytes) {
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

/* vp_open_blob into the thread's scratch, then the plaintext written to its target. The blob is
 * read to where its plaintext's byte for file offset x lies at an address ≡ x (mod DIRECT_ALIGN), as O_DIRECT
 * wants its buffers aligned like the file offsets. */
void vp_open_blob_into(vp_open_blob_t *job) {
  size_t shift = (size_t)((job->out_offset - VP_SALT_BYTES) & (DIRECT_ALIGN - 1));
  uint8_t *buffer = scratch_get(job->length + shift);
  if (!buffer) {
    job->outcome = ENOMEM;
    return;
  }
  job->sealed = buffer + shift;
  open_checked(job);
  if (job->outcome == 0 && !job->crypto_failed) {
    int err = write_plaintext(job, job->sealed + VP_SALT_BYTES, job->length - VP_SEAL_OVERHEAD);
    if (err) {
      job->outcome = VP_OPEN_WRITE;
      job->got = (size_t)err;
    }
  }
  job->sealed = NULL;
  scratch_put();
}
