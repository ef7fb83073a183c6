/*
 * A sealed message (aead.h) read from an open file at an offset, opened in place and, when asked, its plaintext
 * checked against its id (HMAC-SHA256 under id_key); then handed back or written to a target file. No N-API.
 */
#ifndef VAULTPATH_KERNELS_OPEN_BLOB_H
#define VAULTPATH_KERNELS_OPEN_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"

/* Outcomes besides 0 and a positive errno (the read failed); src/native/addon.ts `OpenOutcome` names them. */
enum { VP_OPEN_SHORT = -1, VP_OPEN_ID = -3, VP_OPEN_UNCHECKED = -4, VP_OPEN_WRITE = -5 }; /* VP_OPEN_AUTH: aead.h */

typedef struct {
  int fd;
  int64_t offset;
  size_t length;
  uint8_t seal_key[VP_KEY_BYTES];
  uint8_t id_key[VP_KEY_BYTES];
  uint8_t id[VP_ID_BYTES];
  vp_aead_ctx_t aead;
  int check_id;  /* hash the plaintext and compare with `id`; else an authentic message is VP_OPEN_UNCHECKED */
  int out_fd;    /* vp_open_blob_into: where the plaintext goes, else -1 */
  int direct_fd; /* vp_open_blob_into: the same file opened with O_DIRECT, or -1 */
  int64_t out_offset;
  /* results */
  int outcome; /* 0, a positive errno, or one of VP_OPEN_* */
  size_t got;  /* bytes read; for VP_OPEN_WRITE, the write's errno */
  int crypto_failed;
  uint8_t *sealed; /* vp_open_blob: salt ‖ plaintext (decrypted in place) ‖ tag, malloc'd, the caller's to free */
} vp_open_blob_t;

/* Reads, opens and checks the message into a buffer of its own (job->sealed); the plaintext is at
 * job->sealed + VP_SALT_BYTES when job->outcome is 0. */
void vp_open_blob(vp_open_blob_t *job);

/* As vp_open_blob, into the calling thread's read buffer, then writes the plaintext to out_fd at out_offset: the
 * whole pages through direct_fd when there is one. Nothing is written for a message that failed a check. */
void vp_open_blob_into(vp_open_blob_t *job);

/* Frees what vp_open_blob allocated and wipes the keys, not the struct itself. */
void vp_open_blob_clear(vp_open_blob_t *job);

#endif
