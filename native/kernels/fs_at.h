/*
 * Descriptor-relative opening of a folder for the restore: one name in a folder held open, never through a link.
 * No N-API.
 */
#ifndef VAULTPATH_KERNELS_FS_AT_H
#define VAULTPATH_KERNELS_FS_AT_H

/* The folder `name` in `dirfd`, O_DIRECTORY|O_NOFOLLOW: openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
 * RESOLVE_NO_MAGICLINKS where the kernel has it (and no filter refuses it), else openat. The descriptor, or -errno
 * (ELOOP for a link, ENOTDIR for a file). */
int vp_open_dir_at(int dirfd, const char *name);

#endif
