/**
 * The attribute model of the scan stage and the `AttributeProbe` port.
 *
 * The support rules of the Azure Backup agent are stated in Windows file attributes (encrypted, compressed, sparse,
 * hard link, reparse point, compressed and sparse named streams). Every entry the scan finds gets that attribute
 * set, normalized, from a probe. An attribute is `true` or `false` only when the platform really says so; where the
 * file system cannot tell, it is `undefined` (unknown), never a guessed `false`.
 *
 * A probe is a port: the default probes read Linux and macOS (see probe.ts); an agent on another platform, or one
 * that reads Windows attributes itself, supplies its own.
 *
 * @module
 */

/** What an entry is, from the directory listing; symbolic links are never followed. */
export type EntryKind = 'file' | 'dir' | 'symlink' | 'other';

/** The normalized attribute set; `undefined` means the platform cannot say. */
export interface EntryAttributes {
  readonly encrypted: boolean | undefined;
  readonly compressed: boolean | undefined;
  readonly sparse: boolean | undefined;
  readonly hardLink: boolean | undefined;
  readonly reparsePoint: boolean | undefined;
  readonly compressedStream: boolean | undefined;
  readonly sparseStream: boolean | undefined;
}

/** The attribute names, in the order reports list them. */
export const ATTRIBUTE_NAMES = [
  'encrypted',
  'compressed',
  'sparse',
  'hardLink',
  'reparsePoint',
  'compressedStream',
  'sparseStream',
] as const satisfies readonly (keyof EntryAttributes)[];

/** What a probe learns about one path. */
export interface ProbedEntry {
  readonly kind: EntryKind;
  /** Permission and type bits (`st_mode`). */
  readonly mode: number;
  /** Logical size in bytes. */
  readonly size: number;
  /** Bytes allocated on disk, when the platform says. */
  readonly allocated: number | undefined;
  readonly nlink: number;
  readonly dev: number;
  readonly ino: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly attributes: EntryAttributes;
}

/** A probe's answer for one path: what it found, or the error code (`ENOENT`, `EACCES`, …) that stopped it. */
export type ProbeResult = { readonly ok: true; readonly entry: ProbedEntry } | { readonly ok: false; readonly code: string };

/** What a probe knows about the scan it serves. */
export interface ProbeContext {
  /** Device id of the scan root: an entry on another device is a mount point (a reparse point). */
  readonly rootDev: number;
}

/**
 * Reads attributes for batches of paths.
 *
 * Contract: `probe` MUST return exactly one result per path, in order; MUST NOT follow symbolic links (a link is
 * itself a reparse point); MUST report a per-path failure (a path that vanished, a permission error) as a result,
 * never by throwing; and MUST NOT open or read file contents beyond what attributes need.
 */
export interface AttributeProbe {
  /** A short name for reports, e.g. `statx` or `table`. */
  readonly name: string;
  probe(paths: readonly string[], context: ProbeContext): ProbeResult[] | Promise<ProbeResult[]>;
  /** The device id of a folder (used for the root and for mount-point pruning). */
  deviceOf(path: string): number;
}

/** File type bits of `st_mode`. */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

/** The kind of an entry from its `st_mode`. */
export function kindOfMode(mode: number): EntryKind {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    default:
      return 'other';
  }
}
