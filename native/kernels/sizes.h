/* Lengths the kernels and their glue agree on. */
#ifndef VAULTPATH_KERNELS_SIZES_H
#define VAULTPATH_KERNELS_SIZES_H

/* The longest path, with its NUL, that a kernel takes. */
#define PATH_BYTES 4096
/* The longest single name (one folder entry), with its NUL. */
#define NAME_BYTES 256

#endif
