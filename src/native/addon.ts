/**
 * The optional native addon (binding.gyp, native/): its whole interface, declared once, and its loader.
 *
 * The addon is a set of kernels over bytes and descriptors (hashing, AES-GCM over parts, pack file writing,
 * descriptor-relative file I/O, statx, the gear scan). It knows no vault format: the key-derivation label and the
 * associated data's leading bytes come from crypto/envelope.ts as arguments. {@link AddonFunctions} is every
 * function it exports with its type; the result layouts (the slots each fills in a typed array) and the numbers it
 * reports besides errnos are the constants below. Callers get typed functions through {@link nativeFunction}.
 *
 * The addon is built at install on Linux; where it is not (another platform, or a failed compile), {@link addon}
 * is `null` and each user falls back to its portable path. Users check for the function they need, so an older
 * build without it also falls back. A build whose `abiVersion` is not {@link ADDON_ABI} (left from another version
 * of the package, its functions' arguments or results laid out differently) is not used at all, and a file of the
 * addon's former name (`vaultpath_statx.node`) is never looked at.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';

/** The addon interface this code calls (native/napi/module.c `VP_ABI_VERSION`): raised with any change of layout. */
export const ADDON_ABI = 2;

/** The addon's file name under build/Release (binding.gyp's target). */
export const ADDON_FILE = 'vaultpath_native.node';

/**
 * What `openBlobs` / `openBlobsInto` report for a blob besides 0 (opened) and a positive errno (the read failed).
 * `short`: the file ends first (`got` = bytes read); `auth`: the tag does not verify; `id`: authentic, but the
 * plaintext does not hash to the id; `unchecked`: authentic, but asked not to be hashed (its plaintext is encoded,
 * so the id is not of these bytes): nothing is handed back or written; `write`: `openBlobsInto`'s write failed
 * (`got` = its errno).
 */
export const OpenOutcome = Object.freeze({ short: -1, auth: -2, id: -3, unchecked: -4, write: -5 } as const);

/** What `writeFiles` reports for a temporary name swapped for another file or a link while it was written. */
export const WRITE_SWAPPED = -1;

/** Slots per blob of `openBlobs`'s `specs`: descriptor, offset, length, whether to check the plaintext's id (1/0). */
export const OPEN_SPEC_SLOTS = 4;
/** Slots per blob of `openBlobsInto`'s `targets`: descriptor, the same file's O_DIRECT descriptor or -1, offset. */
export const OPEN_TARGET_SLOTS = 3;
/** Slots per blob of `openBlobsInto`'s result: outcome (0, an errno or an {@link OpenOutcome}), then `got`. */
export const OPEN_RESULT_SLOTS = 2;
/** Longest key-derivation label the crypto kernels take. */
export const MAX_KEY_LABEL = 64;
/** Longest associated-data prefix the crypto kernels take. */
export const MAX_AAD_PREFIX = 16;

/**
 * The bytes every AEAD kernel needs besides keys, salts and ids, built once per sealer or opener: the object key is
 * HKDF-Expand(sealKey, `keyLabel` ‖ salt, 32) and the associated data is `aadPrefix` ‖ salt ‖ id.
 */
export interface AeadContext {
  readonly keyLabel: Uint8Array;
  readonly aadPrefix: Uint8Array;
}

/** One result of `sealFiles`: sealed (`errno` 0, with the fstat after reading) or a failed system call. */
export type SealFileResult =
  | { errno: 0; id: Buffer; sealed?: Buffer; bytes: number; size: number; mtimeSec: number; mtimeNsec: number; ctimeSec: number; ctimeNsec: number }
  | { errno: number; step: 'open' | 'read' };

/** One file of `writeFiles`. */
export interface WriteFileSpec {
  dir: number;
  temp: Uint8Array | string;
  name: Uint8Array | string;
  chunks: readonly Uint8Array[];
  mode: number;
  seconds: number;
  nanoseconds: number;
}

/** Every function the addon exports, with its type; each one's contract is written above its glue in native/napi/. */
export interface AddonFunctions {
  /** native/napi/statx.c: FIELDS numbers per path into `out`. */
  statxBatch(paths: readonly (string | Uint8Array)[], out: Float64Array): void;
  /** native/napi/statx.c: the data regions of an open file as start, end pairs, or null. */
  dataExtents(fd: number): Float64Array | null;
  /** native/napi/statx.c: utimensat without following a link; 0 or the errno. */
  setTimes(path: string, seconds: number, nanoseconds: number): number;
  /** native/napi/write_file.c: whole small files by folder descriptor; 0, {@link WRITE_SWAPPED} or an errno each. */
  writeFiles(files: readonly WriteFileSpec[]): Promise<Int32Array>;
  /** native/napi/fs_at.c: descriptor-relative calls; an fd or -errno, or 0 or an errno. */
  fsOpenDir(dir: number, name: Uint8Array): number;
  fsMkdir(dir: number, name: Uint8Array, mode: number): number;
  fsCreate(dir: number, name: Uint8Array, mode: number): number;
  fsRename(dir: number, from: Uint8Array, to: Uint8Array): number;
  fsSymlink(target: string, dir: number, name: Uint8Array): number;
  fsUnlink(dir: number, name: Uint8Array, folder: boolean): number;
  /** Fills `out` with mode, device, inode, owner uid. */
  fsStat(dir: number, name: Uint8Array | null, out: BigInt64Array): number;
  fsSetTimes(fd: number, seconds: number, nanoseconds: number): number;
  /** native/napi/crypto.c: whole small files read, identified and sealed, one job for the lot. */
  sealFiles(
    paths: readonly (string | Uint8Array)[],
    sizes: readonly number[],
    sealKey: Uint8Array,
    chunkIdKey: Uint8Array,
    keyLabel: Uint8Array,
    aadPrefix: Uint8Array,
    salts: Uint8Array,
    out?: Uint8Array | null,
    expect?: BigUint64Array | null,
  ): Promise<SealFileResult[]>;
  /** native/napi/crypto.c: a chunk given as parts identified (salt null) and/or sealed. */
  sealParts(
    parts: readonly Uint8Array[],
    sealKey: Uint8Array,
    chunkIdKey: Uint8Array,
    keyLabel: Uint8Array,
    aadPrefix: Uint8Array,
    salt: Uint8Array | null,
    id: Uint8Array | null,
    out?: Uint8Array | null,
  ): Promise<{ id: Buffer; sealed?: Buffer }>;
  /** native/napi/crypto.c: blobs read from open files and opened; the plaintext or { outcome, got } each. */
  openBlobs(
    specs: Float64Array,
    ids: Uint8Array,
    aadPrefixes: Uint8Array,
    sealKey: Uint8Array,
    chunkIdKey: Uint8Array,
    keyLabel: Uint8Array,
  ): Promise<(Buffer | { outcome: number; got: number })[]>;
  /** native/napi/crypto.c: as openBlobs, each plaintext written to its target; {@link OPEN_RESULT_SLOTS} per blob. */
  openBlobsInto(
    specs: Float64Array,
    ids: Uint8Array,
    aadPrefixes: Uint8Array,
    sealKey: Uint8Array,
    chunkIdKey: Uint8Array,
    keyLabel: Uint8Array,
    targets: Float64Array,
  ): Promise<Float64Array>;
  /** native/napi/pack.c: a pack file written from a staged file's ranges then parts; resolves to its SHA-256. */
  writePack(path: string, parts: readonly Uint8Array[], from?: string, ranges?: Float64Array): Promise<Buffer>;
  /** native/napi/memory.c: anonymous mapped memory, unmapped on demand. */
  mapBuffer(length: number): ArrayBuffer;
  unmapBuffer(buffer: ArrayBuffer): boolean;
  /** native/napi/gear.c: the chunker's gear-hash scan. */
  gearScan(buf: Uint8Array, start: number, limit: number, state: Int32Array, gear: Int32Array): number;
}

/** Every name of {@link AddonFunctions}, to hold a build to the declaration (the type check fails on one missing). */
export const ADDON_FUNCTIONS = Object.freeze([
  'statxBatch', 'dataExtents', 'setTimes', 'writeFiles', 'fsOpenDir', 'fsMkdir', 'fsCreate', 'fsRename', 'fsSymlink',
  'fsUnlink', 'fsStat', 'fsSetTimes', 'sealFiles', 'sealParts', 'openBlobs', 'openBlobsInto', 'writePack', 'mapBuffer',
  'unmapBuffer', 'gearScan',
] as const satisfies readonly (keyof AddonFunctions)[]);
type Undeclared = Exclude<keyof AddonFunctions, (typeof ADDON_FUNCTIONS)[number]>;
const everyFunctionListed: [Undeclared] extends [never] ? true : Undeclared = true;
void everyFunctionListed;

/** The addon's exports: its functions (any may be missing from a partial build), its ABI version, statx's FIELDS. */
export type Addon = Partial<AddonFunctions> & { readonly abiVersion: number; readonly FIELDS?: number };

let loaded: Addon | null | undefined;

/** The exports of a loaded addon when they are of interface {@link ADDON_ABI}, else `null` (use the portable code). */
export function usableAddon(exports: Readonly<Record<string, unknown>>): Addon | null {
  return exports['abiVersion'] === ADDON_ABI ? (exports as unknown as Addon) : null;
}

/** The addon's exports, or `null` when it is not built here. */
export function addon(): Addon | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') return loaded;
  const require = createRequire(import.meta.url);
  // From src/native/ or dist/native/ the package root is two levels up; from a nested build output (bench), three.
  for (const candidate of [`../../build/Release/${ADDON_FILE}`, `../../../build/Release/${ADDON_FILE}`]) {
    try {
      loaded = usableAddon(require(candidate) as Record<string, unknown>);
      break;
    } catch {
      // not built here; try the next place, then let each user fall back
    }
  }
  return loaded;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The name of an errno an addon function reports (`EEXIST`, `ELOOP`, …), or `errno N` for one this platform does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** The addon's function `name`, typed as {@link AddonFunctions} declares it, or `null` when the addon or the function is missing. */
export function nativeFunction<K extends keyof AddonFunctions>(name: K): AddonFunctions[K] | null {
  const fn = addon()?.[name];
  return typeof fn === 'function' ? (fn as AddonFunctions[K]) : null;
}
