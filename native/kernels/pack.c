/* A pack file written and hashed in one pass (pack.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "pack.h"

#define STAGE_BYTES (2u << 20)
static __thread uint8_t *stage; /* the pool thread's aligned staging buffer, STAGE_BYTES long */

/* Turns O_DIRECT off for the rest of the file. 0, or the errno. */
static int undirect(int fd, int *direct) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0) return errno;
  *direct = 0;
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
  vp_pack_t *job;
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

void vp_write_pack(vp_pack_t *job) {
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
  for (uint32_t i = 0; i < job->part_count && out_going(&o); i++) out_bytes(&o, job->parts[i].iov_base, job->parts[i].iov_len);
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
