/**
 * One folder at a time, in name order: the listing the backup engine walks depth first, so that each folder's
 * tree can be written as soon as its contents are.
 *
 * It applies the same rules as the streamed scan (walk.ts, scan.ts): exclusions with the same glob semantics
 * (fast-glob's picomatch, dot files included, case-insensitive), case collisions by {@link caseCollisions}, the same
 * probe and the same support rules. A test holds the two to the same entries and decisions.
 *
 * **Descriptors, not paths.** Other users may write in the folders walked, and swap an entry for a symbolic link, a
 * FIFO or another file between the scan and the read. So a folder is opened once ({@link OpenFolder}: O_DIRECTORY
 * and O_NOFOLLOW, checked by fstat to be the folder the scan saw, by device and inode) and everything below it is
 * reached through that descriptor: its listing, and each entry's {@link ScanEntry.access} path,
 * `/proc/self/fd/<folder>/<name>`, in which the kernel resolves only the last name, inside the open folder. Whoever
 * opens an entry adds O_NOFOLLOW (and O_NONBLOCK for files) and checks with fstat that it is what the scan saw
 * ({@link sameFile}); a mismatch is reported as `replaced`. Where /proc is not mounted (not Linux), the access path
 * is the entry's own path: the last name is still opened with O_NOFOLLOW and checked, but a folder above it swapped
 * for a link between the listing and the open would be followed.
 *
 * Names that are not UTF-8 are probed by {@link bytesProbe} (a probe takes strings), whatever probe was given.
 *
 * The probe still reads attributes by path (a probe is a port that takes paths): a folder swapped meanwhile can only
 * make it describe some other file, which then fails the descriptor's identity check. Nothing is read by path.
 *
 * **Names as bytes.** A name that is not valid UTF-8 is kept as its bytes ({@link ScanEntry.nameRaw}), shown with
 * U+FFFD in `path` and `relativePath`, probed and opened by its bytes, never turned into a string that would name
 * another file (or none). Such names take no part in case collisions (the vault compares them as bytes). Folders are
 * listed as strings, which costs a fraction of a listing as bytes (no Buffer, no UTF-8 check, no decoding per
 * name); Node decodes a name that is not UTF-8 with U+FFFD in it, so a folder in whose string listing some name
 * holds U+FFFD is listed again, as bytes, through the same descriptor, and that listing alone is used (a genuine
 * U+FFFD, valid UTF-8, costs that second listing too: the bytes decide).
 *
 * **Byte order.** Entries are sorted by their name bytes, the order of a tree (FORMAT.md §10). For strings decoded
 * from UTF-8 that is the order of code points ({@link compareCodePoints}), not JavaScript's order of UTF-16 code
 * units, which puts a character above U+FFFF (two surrogates, 0xD800–0xDFFF) before one in U+E000–U+FFFF.
 *
 * @module
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { sep } from 'node:path';
import picomatch from 'picomatch';
import type { AttributeProbe, EntryKind, ProbeContext, ProbeResult, ProbedEntry } from './attributes.js';
import { bytesProbe } from './probe.js';
import { type SupportRule, FILE_RULES, decide } from './rules.js';
import type { ScanEntry } from './scan.js';
import { caseCollisions, caseKey, excludePatterns, folderKeys, kindOfDirent, reasonOf } from './walk.js';

export interface FolderListerOptions {
  readonly root: string;
  readonly probe: AttributeProbe;
  readonly rules?: readonly SupportRule[];
  readonly exclude?: readonly string[];
  /** Globs a file must match to be included (folders are always walked). @default all files */
  readonly include?: readonly string[];
  readonly excludeFilesIn?: readonly string[];
}

/** A folder of the walk, open: listed and entered through its descriptor. Close it with {@link FolderLister.close}. */
export interface OpenFolder {
  /** Relative to the root, `/`-separated ('' for the root); names that are not UTF-8 shown with U+FFFD. */
  readonly relDir: string;
  /** Its absolute path, for reports (names that are not UTF-8 shown with U+FFFD). */
  readonly path: string;
  /** Its absolute path as bytes, when a name in it is not UTF-8 (then `path` does not name it). */
  readonly pathBytes?: Buffer;
  readonly fd: number;
  /** What its entries' access paths start with: `/proc/self/fd/<fd>/`, or its path and a separator without /proc. */
  readonly prefix: string | Buffer;
}

/** Descriptor-relative paths work here: Linux with /proc mounted. */
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Whether the file open on a descriptor (its fstat) is the entry the scan saw: the same type, device and inode.
 * `undefined` when it is; else what is there instead, in words, for the report.
 */
export function sameFile(
  st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; dev: number | bigint; ino: number | bigint },
  seen: ProbedEntry,
): string | undefined {
  const want = seen.kind;
  if (want === 'file' && !st.isFile()) return st.isDirectory() ? 'a folder' : 'something other than a regular file (a FIFO, a device or a socket)';
  if (want === 'dir' && !st.isDirectory()) return st.isFile() ? 'a file' : 'something other than a folder';
  if (BigInt(st.dev) !== BigInt(seen.dev) || BigInt(st.ino) !== seen.ino) return want === 'dir' ? 'another folder' : 'another file';
  return undefined;
}

/** What an open that refused an entry means: a link (ELOOP) or a non-folder (ENOTDIR) put in its place. */
function replacedBy(code: string | undefined): string | undefined {
  return code === 'ELOOP' ? 'a symbolic link' : code === 'ENOTDIR' ? 'something other than a folder' : undefined;
}

/** Lists folders of one root, applying exclusions, collisions, the probe and the rules. */
export class FolderLister {
  readonly root: string;
  readonly rootDev: number;
  readonly #probe: AttributeProbe;
  readonly #rules: readonly SupportRule[];
  readonly #excluded: (path: string) => boolean;
  readonly #included: ((path: string) => boolean) | undefined;
  readonly #filesExcludedIn: Set<string>;

  constructor(options: FolderListerOptions) {
    this.root = options.root;
    this.#probe = options.probe;
    this.rootDev = options.probe.deviceOf(options.root);
    this.#rules = options.rules ?? FILE_RULES;
    const ignore = excludePatterns(options.exclude ?? []);
    this.#excluded = ignore.length > 0 ? picomatch(ignore, { dot: true, nocase: true }) : () => false;
    this.#included = options.include && options.include.length > 0 ? picomatch([...options.include], { dot: true, nocase: true }) : undefined;
    this.#filesExcludedIn = folderKeys(options.excludeFilesIn);
  }

  /**
   * Opens the root (not through a symbolic link), or gives the entry that reports why it cannot be (`unreadable`,
   * `vanished`, or `replaced` for a root that is no longer a folder).
   */
  openRoot(): OpenFolder | ScanEntry {
    let fd: number;
    try {
      fd = openSync(this.root, DIR_FLAGS);
    } catch (e) {
      return this.#folderFailed('', this.root, e);
    }
    return this.#opened(fd, '', this.root, undefined);
  }

  /**
   * Opens subfolder `e` of `parent` (an entry of its listing) through the parent's descriptor, and checks that it is
   * the folder the scan saw. Gives the entry that reports why not otherwise: `replaced` (a link, a file or another
   * folder in its place), `vanished` or `unreadable`.
   */
  openChild(parent: OpenFolder, e: ScanEntry): OpenFolder | ScanEntry {
    let fd: number;
    try {
      fd = openSync(e.access ?? e.path, DIR_FLAGS);
    } catch (err) {
      return this.#folderFailed(e.relativePath, e.path, err);
    }
    const st = fstatSync(fd, { bigint: true });
    const other = e.stats ? sameFile(st, e.stats) : undefined;
    if (other !== undefined) {
      closeSync(fd);
      return replaced(this.root, e.path, e.relativePath, 'dir', other);
    }
    const pathBytes = e.nameRaw || parent.pathBytes ? Buffer.concat([parent.pathBytes ?? Buffer.from(parent.path), Buffer.from(sep), e.nameRaw ?? Buffer.from(nameOf(e))]) : undefined;
    return this.#opened(fd, e.relativePath, e.path, pathBytes);
  }

  /** Closes a folder opened by {@link openRoot} or {@link openChild}. */
  close(folder: OpenFolder): void {
    closeSync(folder.fd);
  }

  /**
   * The entries of folder `relDir` ('' for the root), sorted by name, each with its decision; a folder that cannot
   * be listed gives one `unreadable` (or `vanished`) entry for itself instead. The folders on the way are opened one
   * by one from the root, without following links; prefer {@link openChild} and {@link listOpen} for a walk.
   */
  async list(relDir: string): Promise<ScanEntry[]> {
    const opened: OpenFolder[] = [];
    try {
      let at = this.openRoot();
      if ('fd' in at) opened.push(at);
      for (const name of relDir === '' ? [] : relDir.split('/')) {
        if (!('fd' in at)) break;
        const path = at.path + sep + name;
        const child: ScanEntry = { root: this.root, path, relativePath: at.relDir === '' ? name : `${at.relDir}/${name}`, kind: 'dir', decision: { kind: 'backup', rule: 'folder' }, access: `${String(at.prefix)}${name}` };
        at = this.openChild(at, child);
        if ('fd' in at) opened.push(at);
      }
      return 'fd' in at ? await this.listOpen(at) : [at];
    } finally {
      for (const f of opened) this.close(f);
    }
  }

  /**
   * The entries of an open folder, sorted by name bytes, each with its decision and its access path; a folder that
   * cannot be listed gives one `unreadable` (or `vanished`) entry for itself instead.
   */
  async listOpen(folder: OpenFolder): Promise<ScanEntry[]> {
    const { relDir } = folder;
    const dirPath = folder.path;
    let listed: Listed[];
    try {
      // Synchronous, like the probe's statx batch after it: a listing costs tens of microseconds, less than the
      // round trip through the thread pool, and the walk waits for it either way.
      listed = listSorted(PROC_FD ? `/proc/self/fd/${folder.fd}` : (folder.pathBytes ?? dirPath));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      const reason = reasonOf(code);
      return [{ root: this.root, path: dirPath, relativePath: relDir, kind: 'dir', decision: { kind: 'skip', reason, rule: reason }, detail: `${code}: could not list the folder` }];
    }
    const collided = caseCollisions(listed.filter((l) => l.raw === undefined).map((l) => l.name));
    const filesExcluded = this.#filesExcludedIn.has(caseKey(relDir));
    const slots: (ScanEntry | undefined)[] = new Array(listed.length);
    const toProbe: ToProbe[] = [];
    for (const [at, { name, raw: nameRaw, kind }] of listed.entries()) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (this.#excluded(rel)) continue;
      if (kind !== 'dir' && (filesExcluded || (this.#included && !this.#included(rel)))) continue;
      const path = dirPath + sep + name;
      const kept = nameRaw === undefined ? collided.get(name) : undefined;
      if (kept !== undefined) {
        slots[at] = { root: this.root, path, relativePath: rel, kind, decision: { kind: 'skip', reason: 'case-collision', rule: 'case-collision' }, detail: `same name as "${kept}" but for case` };
        continue;
      }
      toProbe.push(toProbeOf(folder, at, name, nameRaw, rel, path));
    }
    await this.#probeInto(toProbe, slots);
    return slots.filter((e): e is ScanEntry => e !== undefined);
  }

  /**
   * Entries of open folder `folder` (from its listing, possibly an earlier one) probed again, in order: what each is
   * now, with its decision, or the entry that reports it vanished or unreadable. For entries listed a while ago whose
   * contents are about to be read: the read is then checked against what is there now, not against the listing.
   */
  async refresh(folder: OpenFolder, entries: readonly ScanEntry[]): Promise<ScanEntry[]> {
    const slots: (ScanEntry | undefined)[] = new Array(entries.length);
    const toProbe = entries.map((e, at) => toProbeOf(folder, at, nameOf(e), e.nameRaw, e.relativePath, e.path));
    await this.#probeInto(toProbe, slots);
    return slots as ScanEntry[];
  }

  /** Probes `toProbe` and puts each one's entry, with its decision, into `slots` at its place. */
  async #probeInto(toProbe: readonly ToProbe[], slots: (ScanEntry | undefined)[]): Promise<void> {
    const results = toProbe.length > 0 ? await this.#probeAll(toProbe.map((t) => t.probePath)) : [];
    for (const [i, t] of toProbe.entries()) {
      const r = results[i]!;
      // One object per entry (no spread of a temporary): this runs for every entry of every scan and walk.
      let e: Mutable<ScanEntry>;
      if (!r.ok) {
        const reason = reasonOf(r.code);
        e = { root: this.root, path: t.path, relativePath: t.rel, kind: 'file', decision: { kind: 'skip', reason, rule: reason }, detail: `${r.code}: ${reason === 'vanished' ? 'it vanished during the scan' : 'it cannot be read'}`, access: t.access };
      } else {
        e = { root: this.root, path: t.path, relativePath: t.rel, kind: r.entry.kind, decision: decide(r.entry.kind, r.entry.attributes, this.#rules), stats: r.entry, access: t.access };
      }
      if (t.nameRaw) e.nameRaw = t.nameRaw;
      slots[t.at] = e;
    }
  }

  /** The probe's results for `paths`, in order: those given as bytes (names that are not UTF-8) by {@link bytesProbe}. */
  async #probeAll(paths: (string | Buffer)[]): Promise<ProbeResult[]> {
    return probeMixed(this.#probe, paths, { rootDev: this.rootDev });
  }

  #opened(fd: number, relDir: string, path: string, pathBytes: Buffer | undefined): OpenFolder {
    const prefix = PROC_FD ? `/proc/self/fd/${fd}/` : pathBytes ? Buffer.concat([pathBytes, Buffer.from(sep)]) : path + sep;
    return { relDir, path, fd, prefix, ...(pathBytes ? { pathBytes } : {}) };
  }

  #folderFailed(relDir: string, path: string, err: unknown): ScanEntry {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const other = replacedBy(code);
    if (other !== undefined) return replaced(this.root, path, relDir, 'dir', other);
    const reason = reasonOf(code);
    return { root: this.root, path, relativePath: relDir, kind: 'dir', decision: { kind: 'skip', reason, rule: reason }, detail: `${code}: could not open the folder` };
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An entry of a listing to probe: its place in the listing, its paths, and how it is opened. */
interface ToProbe {
  readonly at: number;
  readonly rel: string;
  readonly path: string;
  readonly probePath: string | Buffer;
  readonly access: string | Buffer;
  readonly nameRaw?: Buffer;
}

function toProbeOf(folder: OpenFolder, at: number, name: string, nameRaw: Buffer | undefined, rel: string, path: string): ToProbe {
  // Bytes only where a string cannot name the entry: its name, or a folder above it, is not UTF-8.
  // (The prefix is bytes only where the folder's path is: without /proc, below a name that is not UTF-8.)
  const nameBytes = nameRaw ?? (folder.pathBytes ? Buffer.from(name) : undefined);
  const probePath = nameBytes ? Buffer.concat([folder.pathBytes ?? Buffer.from(folder.path), Buffer.from(sep), nameBytes]) : path;
  return { at, rel, path, probePath, access: accessOf(folder, name, nameRaw), ...(nameRaw ? { nameRaw } : {}) };
}

/** The path that opens entry `name` (bytes `nameRaw` when it is not UTF-8) of open folder `folder`: see {@link ScanEntry.access}. */
export function accessOf(folder: OpenFolder, name: string, nameRaw: Buffer | undefined): string | Buffer {
  const prefix = folder.prefix;
  if (typeof prefix === 'string' && !nameRaw) return prefix + name;
  return Buffer.concat([Buffer.from(prefix), nameRaw ?? Buffer.from(name)]);
}

let shared: ReturnType<typeof bytesProbe> | undefined;

/**
 * `probe`'s results for `paths`, in order, where a path may be bytes (a name that is not UTF-8): those are probed by
 * {@link bytesProbe}, as a probe takes strings.
 */
export async function probeMixed(probe: AttributeProbe, paths: readonly (string | Buffer)[], context: ProbeContext): Promise<ProbeResult[]> {
  if (paths.every((p) => typeof p === 'string')) return probe.probe(paths as string[], context);
  const strings = paths.filter((p): p is string => typeof p === 'string');
  const bytes = paths.filter((p): p is Buffer => typeof p !== 'string');
  const fromStrings = strings.length > 0 ? await probe.probe(strings, context) : [];
  const fromBytes = (shared ??= bytesProbe()).probe(bytes, context);
  let s = 0;
  let b = 0;
  return paths.map((p) => (typeof p === 'string' ? fromStrings[s++]! : fromBytes[b++]!));
}

/** One name of a listing: as a string (U+FFFD for bytes that are not UTF-8), its bytes when it is not UTF-8, its kind. */
interface Listed {
  readonly name: string;
  readonly raw?: Buffer;
  readonly kind: EntryKind;
}

/** A code unit at or above the surrogates: where UTF-16 order may differ from code point order, or U+FFFD. */
const HIGH_UNIT = /[\uD800-\uFFFF]/;

/**
 * Lists folder `at` sorted by name bytes: as strings, or, when a name in the string listing holds U+FFFD (it may
 * not be UTF-8), as bytes, from a second listing that alone is used (the folder may have changed in between).
 *
 * @throws the listing's error (ENOENT, EACCES, ...).
 */
function listSorted(at: string | Buffer): Listed[] {
  const dirents = readdirSync(at, { withFileTypes: true });
  let high = false;
  for (const d of dirents) {
    if (!HIGH_UNIT.test(d.name)) continue;
    if (d.name.includes('\uFFFD')) return listBytes(at);
    high = true;
  }
  const listed: Listed[] = dirents.map((d) => ({ name: d.name, kind: kindOfDirent(d) }));
  // Below U+D800, code unit order is code point order: the engine's own comparison is exact there.
  listed.sort(high ? (a, b) => compareCodePoints(a.name, b.name) : (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return listed;
}

function listBytes(at: string | Buffer): Listed[] {
  const dirents = readdirSync(at, { withFileTypes: true, encoding: 'buffer' });
  dirents.sort((a, b) => Buffer.compare(a.name, b.name));
  return dirents.map((d) => ({ name: d.name.toString('utf8'), raw: isUtf8(d.name) ? undefined : d.name, kind: kindOfDirent(d) }));
}

/**
 * Orders two well-formed strings as their UTF-8 bytes are ordered: by code points. At the first code unit that
 * differs, a surrogate (part of a character above U+FFFF) ranks above U+E000–U+FFFF; all else keeps its order.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return rankHigh(x) - rankHigh(y);
    return x - y;
  }
  return a.length - b.length;
}

/** Surrogates moved above U+E000–U+FFFF, which move down into their place. */
function rankHigh(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** The entry that reports `path` replaced since the scan by `other` (in words). */
export function replaced(root: string, path: string, relativePath: string, kind: ScanEntry['kind'], other: string): ScanEntry {
  return { root, path, relativePath, kind, decision: { kind: 'skip', reason: 'replaced', rule: 'replaced' }, detail: `replaced after the scan by ${other}: not read` };
}

function nameOf(e: ScanEntry): string {
  return e.relativePath.slice(e.relativePath.lastIndexOf('/') + 1);
}
