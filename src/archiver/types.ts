/**
 * The public types of a backup: its options, its progress, and its result.
 *
 * @module
 */
import type { AttributeProbe } from '../scan/attributes.js';
import type { Clock } from '../throttle/clock.js';
import type { Kernels } from '../native/ports.js';
import type { MetadataCacheOptions } from '../repo/metadata-cache.js';

export interface BackupOptions {
  /** Globs to exclude (see `scan`). */
  readonly exclude?: readonly string[];
  /** Globs a file must match to be backed up (folders are always walked). */
  readonly include?: readonly string[];
  readonly excludeFilesIn?: readonly string[];
  /**
   * The snapshot to compare with: unchanged files (same size, mtime, ctime and inode) are not read again.
   * `'latest'` takes the latest snapshot of the same paths; `null` reads everything. @default 'latest'
   */
  readonly parent?: string | null;
  /** Where packs are staged. @default `<tmpdir>/vaultpath/scratch` */
  readonly scratchDir?: string;
  /**
   * The metadata cache in `scratchDir` (repo/metadata-cache.ts): index objects, snapshots and trees read from a
   * remote vault are kept there, authenticated again when read, so an unchanged backup reads them from the network
   * once. `false` turns it off. Not used by a dry run. @default on for a remote vault, 256 MiB
   */
  readonly metadataCache?: MetadataCacheOptions | false;
  /** Where the backup's report (skipped and failed files) is written. @default a new file in the reports folder */
  readonly reportPath?: string;
  /** Only decide what would be read and uploaded; read and write nothing. @default false */
  readonly dryRun?: boolean;
  /** @default defaultProbe() */
  readonly probe?: AttributeProbe;
  readonly hostname?: string;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Progress, called often; MUST NOT block. */
  readonly onProgress?: (p: BackupProgress) => void;
  /** Pack size target. @default 16 MiB */
  readonly targetPackSize?: number;
  /** Scratch cache capacity in bytes. @default 5% of the bytes to read, at least 64 MiB */
  readonly scratchCapacity?: number;
  /**
   * Worker threads that hash and seal large chunks; 0 does everything on the calling thread. Unset, the addon's
   * thread-pool jobs do it where the addon is built, else cores − 1 workers. @default the addon, or cores − 1
   */
  readonly sealWorkers?: number;
  /** The native kernels to use; `portableKernels` takes the JavaScript path everywhere. @default nativeKernels */
  readonly kernels?: Kernels;
}

export interface BackupProgress {
  readonly phase: 'scan' | 'backup' | 'finish';
  readonly files: number;
  readonly filesTotal: number;
  readonly bytesRead: number;
  /** Bytes of files processed (read or reused). */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly bytesNew: number;
  readonly bytesStored: number;
}

export interface BackupResult {
  /** The snapshot written (absent for a dry run). */
  readonly snapshot?: string;
  readonly parent: string | null;
  /** Snapshots passed over while finding the latest as parent, because they cannot be read (damaged), ids. */
  readonly parentSkippedDamaged: readonly string[];
  readonly status: 'complete' | 'warnings';
  readonly files: number;
  readonly dirs: number;
  /** Bytes read from the sources. */
  readonly bytesRead: number;
  /** Bytes of data not already in the vault. */
  readonly bytesNew: number;
  /** Bytes written to the vault (packs). */
  readonly bytesStored: number;
  /** Files reused unchanged from the parent snapshot, without reading. */
  readonly filesUnchanged: number;
  /** Encrypted files uploaded whole again because they changed (full backups only). */
  readonly filesFullOnly: number;
  readonly skipped: number;
  readonly warnings: number;
  readonly reportPath: string;
  readonly durationMs: number;
  /** The scratch cache's capacity and the most it ever held. */
  readonly scratch: { readonly capacity: number; readonly highWaterMark: number };
}
