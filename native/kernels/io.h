/*
 * Descriptor I/O shared by the kernels: positional writes that finish or say why not, and the alignment O_DIRECT
 * asks of buffers, offsets and lengths.
 */
#ifndef VAULTPATH_KERNELS_IO_H
#define VAULTPATH_KERNELS_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DIRECT_ALIGN 4096

/* Writes `length` bytes at `offset`, looping over short writes; *done counts the bytes written. 0, or the errno (EIO
 * for a write that wrote nothing). */
int pwrite_all(int fd, const uint8_t *data, size_t length, off_t offset, size_t *done);

#endif
