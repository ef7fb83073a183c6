/**
 * The public shape of a restore: its options, its result and the errors of single files in it. `restore()`
 * (engine/restore.ts) takes and returns these; the stages of src/restorer fill them.
 *
 * @module
 */
import type { Clock } from '../throttle/clock.js';
import type { Kernels } from '../native/ports.js';
import type { MetadataCacheOptions } from '../repo/metadata-cache.js';

export interface RestoreOptions {
  /** Globs (relative to the snapshot's root, e.g. `data/photos/**`) of files to restore. @default everything */
  readonly include?: readonly string[];
  /**
   * Where packs are downloaded; a subfolder `run-<pid>-<host>-<random>` is made for this run and removed at the end
   * (and by a later restore, if this process is killed). @default this user's `recovery` working folder
   * (`~/.cache/vaultpath/recovery`, see user-folders.ts), created 0700
   */
  readonly recoveryFolder?: string;
  /**
   * The most bytes of packs the recovery folder holds, downloads under way included: a pack stays until the last file
   * that reads it is done (so it is downloaded once), and a download waits for room. Packs being read when it is full
   * stay until they are read, so it can briefly hold more: at most one pack per chunk read at once. When the packs
   * read between two reads of one pack do not fit, that pack is downloaded again (see `downloaded.refetched`).
   * @default 256 MiB
   */
  readonly recoveryBytes?: number;
  /**
   * The metadata cache in the recovery folder (repo/metadata-cache.ts): index objects, snapshots and trees read from
   * a remote vault are kept there, authenticated again when read. `false` turns it off.
   * @default on for a remote vault, 256 MiB
   */
  readonly metadataCache?: MetadataCacheOptions | false;
  /**
   * With `latest` (or a prefix), pass over snapshots that cannot be read instead of failing with
   * `VP_SNAPSHOT_DAMAGED`: a damaged snapshot's time is sealed inside it, so it could be the newest. Those passed
   * over are named in the result's `skippedDamaged`. @default false
   */
  readonly skipDamaged?: boolean;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Progress, called often; MUST NOT block. */
  readonly onProgress?: (p: { files: number; bytes: number }) => void;
  /** The native kernels to use; `portableKernels` takes the JavaScript path everywhere. @default nativeKernels */
  readonly kernels?: Kernels;
}

export interface RestoreError {
  /** The path (relative to the target) that failed; names that are not UTF-8 are shown with U+FFFD. */
  readonly path: string;
  /** Why. A file or folder swapped under the restore (a link, another file) starts with `VP_UNSAFE_PATH: `. */
  readonly reason: string;
}

export interface RestoreResult {
  readonly snapshot: string;
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly errors: readonly RestoreError[];
  /**
   * Files and folders restored without their set-user-ID / set-group-ID bits: trees do not record owners, so a
   * restored file belongs to whoever runs the restore, and keeping those bits would hand that user's rights to the
   * file's content. `count` counts them all; `paths` names the first {@link SETID_PATHS_SHOWN} (relative to the
   * target). They are not in `errors`: the rest of their mode, their content and times are restored.
   */
  readonly setIdCleared: { readonly count: number; readonly paths: readonly string[] };
  /** Snapshots passed over because they cannot be read (`skipDamaged`), ids; empty otherwise. */
  readonly skippedDamaged: readonly string[];
  /** Packs downloaded, their bytes, and how many of those downloads fetched a pack a second time. */
  readonly downloaded: { readonly packs: number; readonly bytes: number; readonly refetched: number };
  readonly durationMs: number;
}

/** Paths of files that lost set-ID bits named in the result, at most (the count covers the rest). */
export const SETID_PATHS_SHOWN = 1000;
