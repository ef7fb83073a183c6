/*
 * A whole small file read by path and sealed as one message (aead.h), in place: its bytes are read straight into
 * the sealed buffer and encrypted there. No N-API.
 */
#ifndef VAULTPATH_KERNELS_SEAL_FILE_H
#define VAULTPATH_KERNELS_SEAL_FILE_H

#include <stdint.h>
#include <sys/stat.h>

#include "aead.h"

#include "sizes.h"

typedef struct {
  char path[PATH_BYTES];
  size_t size; /* bytes to read at most */
  uint8_t seal_key[VP_KEY_BYTES];
  uint8_t id_key[VP_KEY_BYTES];
  uint8_t salt[VP_SALT_BYTES];
  vp_aead_ctx_t aead;
  int check_ident; /* the file opened must be expect_dev / expect_ino (what the scan saw) */
  uint64_t expect_dev, expect_ino;
  /* results */
  int err;          /* errno of the failed step, or 0; set before the call to refuse the file without a system call */
  const char *step; /* "open" or "read" when err is set */
  int crypto_failed;
  uint8_t *sealed; /* salt ‖ ciphertext ‖ tag, VP_SEAL_OVERHEAD + bytes long; allocated here unless `borrowed` */
  int borrowed;    /* `sealed` lies in the caller's buffer (not ours to free or hand over) */
  size_t bytes;    /* plaintext bytes read */
  uint8_t id[VP_ID_BYTES];
  struct stat st; /* the fstat after reading */
} vp_seal_file_t;

/*
 * open(path, O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW); fstat: a regular file (EISDIR, EINVAL), and with
 * check_ident the file expected (ESTALE); pread up to `size` bytes (stops at end of file); fstat; close; then
 * id = HMAC-SHA256(id_key, bytes) and the bytes sealed under (seal_key, aead, salt, id).
 */
void vp_seal_file(vp_seal_file_t *job);

/* Frees what vp_seal_file allocated and wipes the keys, not the struct itself. */
void vp_seal_file_clear(vp_seal_file_t *job);

#endif
