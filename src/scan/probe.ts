/**
 * The attribute probes that come with vaultpath.
 *
 * - {@link StatxProbe} (Linux, the default there): one `statx(2)` per entry through a small native addon
 *   (native/kernels/statx.c), batched. It reads what the platform really tells: the inode flags COMPRESSED (`chattr +c`,
 *   lsattr's `c`) and ENCRYPTED (fscrypt, lsattr's `E`) and the MOUNT_ROOT flag, each only where the file system's
 *   `attributes_mask` says it can report it; otherwise the attribute is unknown.
 * - {@link LstatProbe} (every platform; the fallback when the addon did not build): Node's `lstat`. Link counts,
 *   allocated blocks and devices are real; compressed and encrypted are unknown.
 * - {@link TableProbe}: attributes from a table supplied by the caller (tests, or an agent that reads Windows
 *   attributes itself), over the stats of another probe.
 *
 * Both take paths as strings or, for names that are not UTF-8, as bytes ({@link bytesProbe}). Both also check that
 * each regular file can be opened for reading, so a file the backup could not read is
 * reported as `unreadable` before any data moves.
 *
 * Derivations shared by all: a symbolic link, or a folder on another device than the scan root or flagged as a
 * mount root, is a reparse point; a regular file with more than one link is a hard link; a regular file with fewer
 * bytes allocated than its size is sparse. POSIX file systems have no named streams, so on Linux the two stream
 * attributes are false; elsewhere they are unknown.
 *
 * @module
 */
import { accessSync, closeSync, constants, lstatSync, openSync } from 'node:fs';
import { addon } from '../native/addon.js';
import { splitTimeNs } from '../repo/tree.js';
import {
  type AttributeProbe,
  type EntryAttributes,
  type ProbeContext,
  type ProbeResult,
  type ProbedEntry,
  kindOfMode,
} from './attributes.js';

// statx attribute bits (linux/stat.h).
const STATX_ATTR_COMPRESSED = 0x4;
const STATX_ATTR_ENCRYPTED = 0x800;
const STATX_ATTR_MOUNT_ROOT = 0x2000;

// Field offsets in the enum of native/kernels/statx.h, for each path.
const F = {
  errno: 0, mode: 1, nlink: 2, size: 3, blocks: 4, inoHi: 5, inoLo: 6, devMajor: 7, devMinor: 8,
  mtimeSec: 9, mtimeNsec: 10, ctimeSec: 11, ctimeNsec: 12, attributes: 13, attributesMask: 14, uid: 15, gid: 16, readErrno: 17,
} as const;

interface StatxAddon {
  readonly FIELDS: number;
  statxBatch(paths: readonly (string | Buffer)[], out: Float64Array): void;
  dataExtents(fd: number): Float64Array | null;
  setTimes(path: string, seconds: number, nanoseconds: number): number;
}

/** The statx addon, or `null` when it is not built or not on Linux. */
function loadAddon(): StatxAddon | null {
  const a = addon();
  return a && typeof a['statxBatch'] === 'function' ? (a as unknown as StatxAddon) : null;
}

/**
 * The data regions of a file as `[start, end)` pairs (holes left out), or `undefined` when the platform cannot say
 * (then the whole file is data). Linux with the addon: lseek SEEK_DATA / SEEK_HOLE on a descriptor.
 *
 * Give the descriptor of the file being read (the backup does): the regions are then those of that very file, never
 * of another renamed over its path meanwhile. A path is opened here without following a final symbolic link and
 * without blocking (a FIFO gives `undefined`), and closed again.
 */
export function dataExtents(file: number | string): [number, number][] | undefined {
  const a = loadAddon();
  if (!a) return undefined;
  let fd = typeof file === 'number' ? file : -1;
  if (typeof file !== 'number') {
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch {
      return undefined;
    }
  }
  try {
    const raw = a.dataExtents(fd);
    if (!raw) return undefined;
    const out: [number, number][] = [];
    for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
    return out;
  } finally {
    if (typeof file !== 'number') closeSync(fd);
  }
}

/**
 * Sets a path's access and modification times to `ns` nanoseconds since the epoch, without following a link: to
 * the nanosecond with the addon (utimensat), else through Node's `lutimes`: to the microsecond, or to the millisecond
 * before 1970.
 */
export async function setTimesNs(path: string, ns: bigint): Promise<void> {
  // Floor split: before 1970 the seconds are negative and the nanoseconds still 0..999999999, as utimensat takes them.
  const { seconds, nanoseconds } = splitTimeNs(ns);
  const a = loadAddon();
  if (a) {
    const rc = a.setTimes(path, Number(seconds), nanoseconds);
    if (rc !== 0) throw Object.assign(new Error(`utimensat failed for ${path}`), { code: ERRNO_NAMES[rc] ?? `errno ${rc}` });
    return;
  }
  const { lutimes } = await import('node:fs/promises');
  // Node's own call takes seconds as a double (microseconds at best), and a negative number as "now": a Date then.
  const at = seconds >= 0n ? Number(seconds) + nanoseconds / 1e9 : new Date(Number(seconds) * 1000 + Math.floor(nanoseconds / 1e6));
  await lutimes(path, at, at);
}

/** True when the statx addon is built and loads on this machine. */
export function statxAvailable(): boolean {
  return loadAddon() !== null;
}

/** Linux device number as `fs.Stats.dev` reports it: glibc's makedev(), in arithmetic that stays exact above 2^32. */
function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 2 ** 8 + Math.floor(minor / 2 ** 8) * 2 ** 20 + Math.floor(major / 2 ** 12) * 2 ** 44;
}

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 5: 'EIO', 13: 'EACCES', 20: 'ENOTDIR', 36: 'ENAMETOOLONG', 40: 'ELOOP' };

// Attribute sets repeat (most files: all false); share one frozen object per combination instead of allocating.
const interned = new Map<number, EntryAttributes>();
const tri = (v: boolean | undefined): number => (v === undefined ? 2 : v ? 1 : 0);

/**
 * The shared attribute set of an entry: what the probe read (encrypted, compressed, the stream flags) and what
 * follows from its kind, link count, sizes and mount (sparse, hard link, reparse point). Built without a temporary
 * object: this runs once per entry of every scan.
 */
function attributesOf(
  kind: ProbedEntry['kind'],
  nlink: number,
  size: number,
  allocated: number | undefined,
  foreignMount: boolean,
  encrypted: boolean | undefined,
  compressed: boolean | undefined,
  streams: boolean | undefined,
): EntryAttributes {
  const sparse = kind === 'file' ? (allocated === undefined ? undefined : allocated < size) : false;
  const hardLink = kind === 'file' ? nlink > 1 : false;
  const reparsePoint = kind === 'symlink' || (kind === 'dir' && foreignMount);
  const key = (((((tri(encrypted) * 3 + tri(compressed)) * 3 + tri(sparse)) * 3 + tri(hardLink)) * 3 + tri(reparsePoint)) * 3 + tri(streams)) * 3 + tri(streams);
  let shared = interned.get(key);
  if (!shared) {
    shared = Object.freeze({ encrypted, compressed, sparse, hardLink, reparsePoint, compressedStream: streams, sparseStream: streams });
    interned.set(key, shared);
  }
  return shared;
}

/** Whether a statx attribute is set: undefined when the file system cannot tell (its bit is not in the mask). */
function statxAttribute(attrs: number, mask: number, bit: number): boolean | undefined {
  return (mask & bit) !== 0 ? (attrs & bit) !== 0 : undefined;
}

/** One `statx(2)` per entry, in batches, through the native addon. Linux only; see {@link statxAvailable}. */
export class StatxProbe implements AttributeProbe {
  readonly name = 'statx';
  readonly #addon: StatxAddon;
  #out = new Float64Array(0);

  constructor() {
    const a = loadAddon();
    if (!a) throw new Error('the statx addon is not available on this machine');
    this.#addon = a;
  }

  probe(paths: readonly (string | Buffer)[], context: ProbeContext): ProbeResult[] {
    const n = this.#addon.FIELDS;
    if (this.#out.length < paths.length * n) this.#out = new Float64Array(paths.length * n);
    const out = this.#out;
    this.#addon.statxBatch(paths, out);
    const results: ProbeResult[] = [];
    for (let i = 0; i < paths.length; i++) {
      const o = i * n;
      const errno = out[o + F.errno]!;
      if (errno !== 0) {
        results.push({ ok: false, code: ERRNO_NAMES[errno] ?? `errno ${errno}` });
        continue;
      }
      const readErrno = out[o + F.readErrno]!;
      if (readErrno !== 0) {
        results.push({ ok: false, code: ERRNO_NAMES[readErrno] ?? `errno ${readErrno}` });
        continue;
      }
      const mode = out[o + F.mode]!;
      const kind = kindOfMode(mode);
      const size = out[o + F.size]!;
      const allocated = out[o + F.blocks]! * 512;
      const nlink = out[o + F.nlink]!;
      const dev = makedev(out[o + F.devMajor]!, out[o + F.devMinor]!);
      const attrs = out[o + F.attributes]!;
      const mask = out[o + F.attributesMask]!;
      const mountRoot = statxAttribute(attrs, mask, STATX_ATTR_MOUNT_ROOT) === true;
      const attributes = attributesOf(
        kind,
        nlink,
        size,
        allocated,
        dev !== context.rootDev || mountRoot,
        statxAttribute(attrs, mask, STATX_ATTR_ENCRYPTED),
        statxAttribute(attrs, mask, STATX_ATTR_COMPRESSED),
        false,
      );
      const inoHi = out[o + F.inoHi]!;
      const inoLo = out[o + F.inoLo]!;
      results.push({
        ok: true,
        entry: {
          kind,
          mode,
          size,
          allocated,
          nlink,
          dev,
          ino: inoHi === 0 ? BigInt(inoLo) : (BigInt(inoHi) << 32n) | BigInt(inoLo),
          mtimeNs: BigInt(out[o + F.mtimeSec]!) * 1_000_000_000n + BigInt(out[o + F.mtimeNsec]!),
          ctimeNs: BigInt(out[o + F.ctimeSec]!) * 1_000_000_000n + BigInt(out[o + F.ctimeNsec]!),
          uid: out[o + F.uid]!,
          gid: out[o + F.gid]!,
          attributes,
        },
      });
    }
    return results;
  }

  deviceOf(path: string): number {
    return lstatSync(path).dev;
  }
}

/** Node's `lstat`, on any platform: compressed and encrypted are unknown. */
export class LstatProbe implements AttributeProbe {
  readonly name = 'lstat';

  probe(paths: readonly (string | Buffer)[], context: ProbeContext): ProbeResult[] {
    const streams = process.platform === 'linux' ? false : undefined;
    return paths.map((path): ProbeResult => {
      let st;
      try {
        st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
      } catch (e) {
        return { ok: false, code: (e as NodeJS.ErrnoException).code ?? 'EIO' };
      }
      if (!st) return { ok: false, code: 'ENOENT' };
      const mode = Number(st.mode);
      const kind = kindOfMode(mode);
      if (kind === 'file') {
        try {
          accessSync(path, constants.R_OK);
        } catch (e) {
          return { ok: false, code: (e as NodeJS.ErrnoException).code ?? 'EACCES' };
        }
      }
      const size = Number(st.size);
      const nlink = Number(st.nlink);
      const dev = Number(st.dev);
      // Windows reports no blocks; there sparseness is unknown.
      const allocated = process.platform === 'win32' ? undefined : Number(st.blocks) * 512;
      return {
        ok: true,
        entry: {
          kind,
          mode,
          size,
          allocated,
          nlink,
          dev,
          ino: st.ino,
          mtimeNs: st.mtimeNs,
          ctimeNs: st.ctimeNs,
          uid: Number(st.uid),
          gid: Number(st.gid),
          attributes: attributesOf(kind, nlink, size, allocated, dev !== context.rootDev, undefined, undefined, streams),
        },
      };
    });
  }

  deviceOf(path: string): number {
    return lstatSync(path).dev;
  }
}

/**
 * Attributes from a table, keyed by absolute path, laid over another probe's stats. Entries absent from the table
 * keep the base probe's attributes. For tests, and for agents that read platform attributes themselves.
 *
 * @example
 * ```ts
 * const probe = new TableProbe(new Map([['/data/a.pst', { encrypted: true }]]));
 * ```
 */
export class TableProbe implements AttributeProbe {
  readonly name = 'table';
  readonly #table: ReadonlyMap<string, Partial<EntryAttributes>>;
  readonly #base: AttributeProbe;

  constructor(table: ReadonlyMap<string, Partial<EntryAttributes>>, base: AttributeProbe = defaultProbe()) {
    this.#table = table;
    this.#base = base;
  }

  async probe(paths: readonly string[], context: ProbeContext): Promise<ProbeResult[]> {
    const results = await this.#base.probe(paths, context);
    return results.map((r, i) => {
      const override = this.#table.get(paths[i]!);
      if (!r.ok || !override) return r;
      return { ok: true, entry: { ...r.entry, attributes: { ...r.entry.attributes, ...override } } };
    });
  }

  deviceOf(path: string): number {
    return this.#base.deviceOf(path);
  }
}

/** The best probe this machine offers: {@link StatxProbe} where the addon is built, else {@link LstatProbe}. */
export function defaultProbe(): AttributeProbe {
  return statxAvailable() ? new StatxProbe() : new LstatProbe();
}

/**
 * The best probe this machine offers, taking paths as bytes too: for names that are not UTF-8, which a probe of
 * strings cannot name (scan/folder.ts probes those with it, whatever probe the scan was given).
 */
export function bytesProbe(): StatxProbe | LstatProbe {
  return statxAvailable() ? new StatxProbe() : new LstatProbe();
}
