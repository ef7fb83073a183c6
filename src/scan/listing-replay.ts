/**
 * The scan's folder listings, kept for the backup's walk, so that a backup lists and probes each folder once.
 *
 * A backup first scans its sources for totals (they size the scratch cache and enforce the per-source limit before
 * any data is read), then walks them to read. Both list every folder and probe every entry, which at a million
 * files is most of an unchanged backup's work. So the scan records each folder's listing here ({@link record}), and
 * the walk, meeting the same folder, takes it back ({@link take}) instead of listing and probing it again.
 *
 * **Bounded memory.** Listings go to a file, not to memory: a temporary file in the folder given (the scratch
 * folder, on disk, not the temp folder, which may be memory), unlinked as soon as it is made, so only this
 * process's descriptor reaches it and nothing is left behind by a crash ({@link ListingReplay.open}). Records are written in 1 MiB blocks and
 * read back through a buffer; the most held at once is one folder's record (the largest folder's listing, which
 * the walk holds anyway). About 80 bytes an entry on disk.
 *
 * **What is trusted.** A kept listing is used only for the folder it was made from: the one the walk has open now
 * (through descriptors, as always: scan/folder.ts), with the same device, inode, mtime and ctime as when the scan
 * listed it (its fstat, taken before the listing). A folder in which any entry was added, removed, renamed or
 * replaced since has another mtime and is listed again, so is one the scan could not list or did not reach. An
 * entry's attributes are those the scan read: a file whose contents are to be read MUST be probed again first
 * ({@link FolderLister.refresh}) so the read is checked against what is there then; a file reused unchanged from the
 * parent snapshot is taken as the scan saw it, at the start of the run.
 *
 * **Order.** The scan and the walk both go depth first, folders in name order, so the records come back in the order
 * the walk asks for them, read once from start to end: records of folders the walk does not enter are passed over,
 * and a folder with no record (or one that fails the checks) is listed as before. Any failure to write or read the
 * file only turns the replay off: the walk then lists folders itself.
 *
 * @module
 */
import { type BigIntStats, closeSync, constants, existsSync, fstatSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { sep } from 'node:path';
import type { EntryAttributes, EntryKind, ProbedEntry } from './attributes.js';
import type { Decision } from './rules.js';
import type { ScanEntry } from './scan.js';
import { type OpenFolder, accessOf, compareCodePoints } from './folder.js';

/** Descriptor-relative paths work here: Linux with /proc mounted. */
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');
/** Records are written once this many bytes wait. */
const WRITE_BLOCK = 1024 * 1024;
/** Fewer distinct decisions than this are recorded (an index byte); more turns recording off. */
const MAX_DECISIONS = 255;

const KINDS: readonly EntryKind[] = ['file', 'dir', 'symlink', 'other'];
const KIND_CODE: Record<EntryKind, number> = { file: 0, dir: 1, symlink: 2, other: 3 };
const HAS_STATS = 4;
const HAS_RAW = 8;
const HAS_DETAIL = 16;
const HAS_ACCESS = 32;
/** Bytes of an entry's attributes from the probe. */
const STATS_BYTES = 67;
/** Attributes are stored as base-3 digits: 0 false, 1 true, 2 unknown. */
const ATTRIBUTE_ORDER = ['encrypted', 'compressed', 'sparse', 'hardLink', 'reparsePoint', 'compressedStream', 'sparseStream'] as const;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** How a folder is found in the records: its root's number in the scan, and its path relative to that root. */
interface Place {
  readonly root: number;
  readonly relDir: string;
}

/** The scan's listings, written by the scan and read back, once, in order, by the walk. */
export class ListingReplay {
  readonly #fd: number;
  #broken = false;
  // Writing.
  #out = Buffer.allocUnsafe(WRITE_BLOCK * 2);
  #outLength = 0;
  #written = 0;
  readonly #decisionIndex = new Map<Decision, number>();
  readonly #decisionByKey = new Map<string, number>();
  readonly #decisions: Decision[] = [];
  // Reading.
  #in = Buffer.allocUnsafe(64 * 1024);
  #inStart = 0;
  #inLength = 0;
  #readAt = 0;
  #next: (Place & { readonly at: number; readonly length: number }) | undefined;
  readonly #attributes = new Map<number, EntryAttributes>();
  #replayed = 0;
  #listed = 0;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * A new, empty record file in folder `dir`, private to this process; undefined (no replay: the walk lists every
   * folder) where that cannot be done safely. `dir` must already exist, be a folder (not a link) that belongs to this
   * user and that no other user may write in: the file is created there with O_EXCL and O_NOFOLLOW, owner-only,
   * through the folder's descriptor (only its own name is resolved), and removed at once the same way, so no other
   * user can open, swap or read it, and a crash leaves nothing behind. Linux (with /proc) only.
   */
  static open(dir: string): ListingReplay | undefined {
    if (!PROC_FD) return undefined;
    let dirFd: number | undefined;
    try {
      dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      const st = fstatSync(dirFd);
      if (st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) return undefined;
      const name = `/proc/self/fd/${dirFd}/listing-${process.pid}-${randomBytes(6).toString('hex')}`;
      const fd = openSync(name, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        unlinkSync(name);
      } catch {
        closeSync(fd);
        return undefined;
      }
      return new ListingReplay(fd);
    } catch {
      return undefined;
    } finally {
      if (dirFd !== undefined) closeSync(dirFd);
    }
  }

  /** Folders the walk took from the records. */
  get replayed(): number {
    return this.#replayed;
  }

  /** Folders the walk asked for and had to list itself (no record, or not the folder recorded, or changed since). */
  get listed(): number {
    return this.#listed;
  }

  /** Whether records are still kept and replayed (false after a failure to write or read them). */
  get working(): boolean {
    return !this.#broken;
  }

  /**
   * Keeps the listing `entries` of open folder `folder`, the `root`-th root of the scan (counting from 0), whose
   * fstat before it was listed is `st`. Calls MUST come in the walk's order: depth first, folders in name order.
   */
  record(root: number, folder: OpenFolder, st: BigIntStats, entries: readonly ScanEntry[]): void {
    if (this.#broken) return;
    // A folder that could not be listed gives one entry for itself: the walk tries it again.
    if (entries.length === 1 && entries[0]!.relativePath === folder.relDir && entries[0]!.decision.kind === 'skip') return;
    this.#reserve(4 + 4 + 4 + 3 * folder.relDir.length + 32 + 4);
    const start = this.#outLength;
    let o = start + 4; // the record's length goes first, once known
    o = this.#out.writeUInt32LE(root, o);
    const relLength = this.#out.write(folder.relDir, o + 4, 'utf8');
    o = this.#out.writeUInt32LE(relLength, o) + relLength;
    o = this.#out.writeBigUInt64LE(BigInt(st.dev), o);
    o = this.#out.writeBigUInt64LE(st.ino, o);
    o = this.#out.writeBigInt64LE(st.mtimeNs, o);
    o = this.#out.writeBigInt64LE(st.ctimeNs, o);
    o = this.#out.writeUInt32LE(entries.length, o);
    this.#outLength = o;
    for (const e of entries) {
      if (!this.#entry(e)) {
        this.#broken = true;
        return;
      }
    }
    this.#out.writeUInt32LE(this.#outLength - start - 4, start);
    if (this.#outLength >= WRITE_BLOCK) this.#flush();
  }

  /** Encodes one entry after the others; false when it cannot be (too many decisions: nothing more is kept). */
  #entry(e: ScanEntry): boolean {
    const decision = this.#decisionOf(e.decision);
    if (decision === undefined) return false;
    const raw = e.nameRaw;
    const name = raw ? undefined : e.relativePath.slice(e.relativePath.lastIndexOf('/') + 1);
    const detail = e.detail;
    const s = e.stats;
    // Strings are written straight into the block (at most 3 bytes a UTF-16 unit), not through a Buffer each.
    this.#reserve(2 + 4 + (raw ? raw.length : 3 * name!.length) + (detail !== undefined ? 4 + 3 * detail.length : 0) + (s ? STATS_BYTES : 0));
    const out = this.#out;
    let o = this.#outLength;
    const flags = KIND_CODE[e.kind] | (s ? HAS_STATS : 0) | (raw ? HAS_RAW : 0) | (detail !== undefined ? HAS_DETAIL : 0) | (e.access !== undefined ? HAS_ACCESS : 0);
    out[o] = flags;
    out[o + 1] = decision;
    const nameLength = raw ? raw.copy(out, o + 6) : out.write(name!, o + 6, 'utf8');
    out.writeUInt32LE(nameLength, o + 2);
    o += 6 + nameLength;
    if (detail !== undefined) {
      const n = out.write(detail, o + 4, 'utf8');
      out.writeUInt32LE(n, o);
      o += 4 + n;
    }
    if (s) {
      o = out.writeUInt32LE(s.mode, o);
      o = out.writeDoubleLE(s.size, o);
      o = out.writeDoubleLE(s.allocated ?? -1, o);
      o = out.writeUInt32LE(s.nlink, o);
      o = out.writeDoubleLE(s.dev, o);
      o = putBig(out, o, s.ino);
      o = putBig(out, o, s.mtimeNs);
      o = putBig(out, o, s.ctimeNs);
      o = out.writeUInt32LE(s.uid, o);
      o = out.writeUInt32LE(s.gid, o);
      o = out.writeUInt16LE(attributeCode(s.attributes), o);
      o = out.writeUInt8(KIND_CODE[s.kind], o);
    }
    this.#outLength = o;
    return true;
  }

  #decisionOf(d: Decision): number | undefined {
    let i = this.#decisionIndex.get(d);
    if (i !== undefined) return i;
    // Decisions are mostly shared objects (the rules table's); the others are found by their contents.
    const key = `${d.kind}\u0000${'reason' in d ? d.reason : ''}\u0000${d.rule}`;
    i = this.#decisionByKey.get(key);
    if (i === undefined) {
      if (this.#decisions.length >= MAX_DECISIONS) return undefined;
      i = this.#decisions.push(d) - 1;
      this.#decisionByKey.set(key, i);
    }
    if (this.#decisionIndex.size < 4 * MAX_DECISIONS) this.#decisionIndex.set(d, i);
    return i;
  }

  #reserve(bytes: number): void {
    if (this.#outLength + bytes <= this.#out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#out.length * 2, this.#outLength + bytes));
    this.#out.copy(grown, 0, 0, this.#outLength);
    this.#out = grown;
  }

  /** Writes the whole records waiting (a record being encoded stays). */
  #flush(): void {
    try {
      let done = 0;
      while (done < this.#outLength) done += writeSync(this.#fd, this.#out, done, this.#outLength - done, this.#written + done);
      this.#written += this.#outLength;
      this.#outLength = 0;
      if (this.#out.length > WRITE_BLOCK * 2) this.#out = Buffer.allocUnsafe(WRITE_BLOCK * 2); // after a large folder
    } catch {
      this.#broken = true; // the disk is full, say: the walk lists what was not kept
      this.#outLength = 0;
    }
  }

  /** Ends recording: what the scan kept is written; {@link take} may be called from now on. */
  finish(): void {
    if (!this.#broken && this.#outLength > 0) this.#flush();
    this.#out = Buffer.alloc(0);
  }

  /**
   * The entries of open folder `folder` of the `root`-th root, as the scan listed them, for a walk by `lister`'s
   * rules (the scan's); undefined when the walk must list it itself: no record of it, or the folder open now (fstat
   * `st`) is not the one listed or has changed since. Calls MUST come in the order the scan recorded.
   */
  take(root: number, lister: { readonly root: string }, folder: OpenFolder, st: BigIntStats): KeptListing | undefined {
    const found = this.#seek({ root, relDir: folder.relDir });
    if (found === undefined) {
      this.#listed++;
      return undefined;
    }
    const entries = this.#decode(found, lister.root, folder, st);
    if (entries) this.#replayed++;
    else this.#listed++;
    return entries;
  }

  /** Passes over the records before `want`; gives the one of `want` (taken) if it comes next. */
  #seek(want: Place): { readonly at: number; readonly length: number } | undefined {
    for (;;) {
      const next = this.#peek();
      if (next === undefined) return undefined;
      const order = comparePlaces(next, want);
      if (order > 0) return undefined; // the walk is at a folder the scan did not record: listed, and the record waits
      this.#next = undefined;
      this.#readAt = next.at + next.length;
      if (order === 0) return next;
    }
  }

  /** The next record's place, its start and length (the record is not read beyond its place). */
  #peek(): (Place & { readonly at: number; readonly length: number }) | undefined {
    if (this.#next !== undefined || this.#broken) return this.#next;
    const head = this.#read(this.#readAt, 12);
    if (head === undefined) return undefined;
    const length = head.readUInt32LE(0);
    const root = head.readUInt32LE(4);
    const relLength = head.readUInt32LE(8);
    const rel = this.#read(this.#readAt + 12, relLength);
    if (rel === undefined) return undefined;
    this.#next = { root, relDir: rel.toString('utf8'), at: this.#readAt + 4, length };
    return this.#next;
  }

  /** `length` bytes of the file at `at`, through the read buffer; undefined at the end (or after a failed read). */
  #read(at: number, length: number): Buffer | undefined {
    if (at >= this.#inStart && at + length <= this.#inStart + this.#inLength) return this.#in.subarray(at - this.#inStart, at - this.#inStart + length);
    if (length > this.#in.length) this.#in = Buffer.allocUnsafe(Math.max(length, this.#in.length * 2));
    else if (this.#in.length > 4 * 1024 * 1024) this.#in = Buffer.allocUnsafe(Math.max(length, 64 * 1024)); // after a large folder
    try {
      let got = 0;
      for (;;) {
        const n = readSync(this.#fd, this.#in, got, this.#in.length - got, at + got);
        got += n;
        if (n === 0 || got >= length) break;
      }
      this.#inStart = at;
      this.#inLength = got;
    } catch {
      this.#broken = true;
      return undefined;
    }
    return this.#inLength >= length ? this.#in.subarray(0, length) : undefined;
  }

  /** The entries of the record at `at` (its place already read), or undefined when `folder` is not what it lists. */
  #decode(record: { readonly at: number; readonly length: number }, root: string, folder: OpenFolder, st: BigIntStats): KeptListing | undefined {
    const b = this.#read(record.at, record.length);
    if (b === undefined) return undefined;
    let o = 4;
    const relLength = b.readUInt32LE(o);
    o += 4 + relLength;
    const same = getBig(b, o, UNSIGNED) === BigInt(st.dev) && getBig(b, o + 8, UNSIGNED) === st.ino && getBig(b, o + 16, SIGNED) === st.mtimeNs && getBig(b, o + 24, SIGNED) === st.ctimeNs;
    if (!same) return undefined;
    o += 32;
    const count = b.readUInt32LE(o);
    // A copy: the read buffer serves the subfolders' records while this folder's entries are still being walked.
    return new KeptListing(Buffer.from(b.subarray(o + 4)), count, { root, folder, decisions: this.#decisions, attributes: (code) => this.#attributesOf(code) });
  }

  #attributesOf(code: number): EntryAttributes {
    let a = this.#attributes.get(code);
    if (a === undefined) {
      const values: Partial<Record<keyof EntryAttributes, boolean | undefined>> = {};
      let c = code;
      for (const name of ATTRIBUTE_ORDER) {
        const digit = c % 3;
        c = (c - digit) / 3;
        values[name] = digit === 2 ? undefined : digit === 1;
      }
      a = Object.freeze(values as EntryAttributes);
      this.#attributes.set(code, a);
    }
    return a;
  }

  /** Closes the record file (it is gone with its descriptor). */
  close(): void {
    this.#broken = true;
    closeSync(this.#fd);
  }
}

/** What entries of a kept listing are decoded with. */
interface DecodeContext {
  readonly root: string;
  readonly folder: OpenFolder;
  readonly decisions: readonly Decision[];
  readonly attributes: (code: number) => EntryAttributes;
}

/**
 * One folder's kept listing, as the walk goes through it: its entries, in order, decoded one at a time from the
 * record's bytes (about 80 bytes an entry, where the entries as objects would take several times that: a folder of
 * 200,000 files is then a few tens of MB less at its peak), and its subfolders at once (to read their parent trees
 * ahead). Each iteration decodes the entries anew.
 */
export class KeptListing implements Iterable<ScanEntry> {
  readonly #bytes: Buffer;
  readonly #count: number;
  readonly #context: DecodeContext;

  constructor(bytes: Buffer, count: number, context: DecodeContext) {
    this.#bytes = bytes;
    this.#count = count;
    this.#context = context;
  }

  /** The number of entries. */
  get size(): number {
    return this.#count;
  }

  /** The entries that are folders (whatever their decision), in order. */
  get dirs(): ScanEntry[] {
    const out: ScanEntry[] = [];
    let o = 0;
    for (let i = 0; i < this.#count; i++) {
      if ((this.#bytes[o]! & 3) === KIND_CODE.dir) out.push(decodeEntry(this.#bytes, o, this.#context).entry);
      o = skipEntry(this.#bytes, o);
    }
    return out;
  }

  *[Symbol.iterator](): Iterator<ScanEntry> {
    let o = 0;
    for (let i = 0; i < this.#count; i++) {
      const { entry, next } = decodeEntry(this.#bytes, o, this.#context);
      o = next;
      yield entry;
    }
  }
}

/** The offset of the entry after the one at `o`. */
function skipEntry(b: Buffer, o: number): number {
  const flags = b[o]!;
  o += 6 + b.readUInt32LE(o + 2);
  if (flags & HAS_DETAIL) o += 4 + b.readUInt32LE(o);
  if (flags & HAS_STATS) o += STATS_BYTES;
  return o;
}

/** The entry encoded at `o`, and the offset after it. */
function decodeEntry(b: Buffer, o: number, c: DecodeContext): { entry: ScanEntry; next: number } {
  const flags = b[o]!;
  const decision = c.decisions[b[o + 1]!]!;
  const nameLength = b.readUInt32LE(o + 2);
  o += 6;
  const nameRaw = flags & HAS_RAW ? Buffer.from(b.subarray(o, o + nameLength)) : undefined;
  const name = b.toString('utf8', o, o + nameLength);
  o += nameLength;
  let detail: string | undefined;
  if (flags & HAS_DETAIL) {
    const n = b.readUInt32LE(o);
    detail = b.toString('utf8', o + 4, o + 4 + n);
    o += 4 + n;
  }
  let stats: ProbedEntry | undefined;
  if (flags & HAS_STATS) {
    const allocated = b.readDoubleLE(o + 12);
    stats = {
      kind: KINDS[b[o + 66]!]!,
      mode: b.readUInt32LE(o),
      size: b.readDoubleLE(o + 4),
      allocated: allocated < 0 ? undefined : allocated,
      nlink: b.readUInt32LE(o + 20),
      dev: b.readDoubleLE(o + 24),
      ino: getBig(b, o + 32, UNSIGNED),
      mtimeNs: getBig(b, o + 40, SIGNED),
      ctimeNs: getBig(b, o + 48, SIGNED),
      uid: b.readUInt32LE(o + 56),
      gid: b.readUInt32LE(o + 60),
      attributes: c.attributes(b.readUInt16LE(o + 64)),
    };
    o += STATS_BYTES;
  }
  const { folder } = c;
  const rel = folder.relDir === '' ? name : `${folder.relDir}/${name}`;
  const e: Mutable<ScanEntry> = { root: c.root, path: folder.path + sep + name, relativePath: rel, kind: KINDS[flags & 3]!, decision };
  if (stats) e.stats = stats;
  if (detail !== undefined) e.detail = detail;
  if (flags & HAS_ACCESS) e.access = accessOf(folder, name, nameRaw);
  if (nameRaw) e.nameRaw = nameRaw;
  return { entry: e, next: o };
}

// 64-bit integers go through one 8-byte scratch: Buffer's BigInt readers and writers make several BigInts a call,
// which at three a file was a fair share of a replay's time and garbage.
const scratch = new ArrayBuffer(8);
const scratchBytes = new Uint8Array(scratch);
const SIGNED = new BigInt64Array(scratch);
const UNSIGNED = new BigUint64Array(scratch);

/** Writes `v` (a 64-bit integer, signed or not: the same bytes) at `o`; the offset after it. */
function putBig(out: Buffer, o: number, v: bigint): number {
  if (v < 0n) SIGNED[0] = v;
  else UNSIGNED[0] = v;
  for (let k = 0; k < 8; k++) out[o + k] = scratchBytes[k]!;
  return o + 8;
}

/** The 64-bit integer at `o`, read as `as` (signed or not). */
function getBig(b: Buffer, o: number, as: BigInt64Array | BigUint64Array): bigint {
  for (let k = 0; k < 8; k++) scratchBytes[k] = b[o + k]!;
  return as[0]!;
}

// Probes share one attribute object per combination (scan/probe.ts): its code is worked out once.
const codes = new WeakMap<EntryAttributes, number>();

function attributeCode(a: EntryAttributes): number {
  const known = codes.get(a);
  if (known !== undefined) return known;
  let code = 0;
  for (let i = ATTRIBUTE_ORDER.length - 1; i >= 0; i--) {
    const v = a[ATTRIBUTE_ORDER[i]!];
    code = code * 3 + (v === undefined ? 2 : v ? 1 : 0);
  }
  codes.set(a, code);
  return code;
}

/**
 * The order of two folders in a depth-first walk that takes names in byte order: by root, then name by name along
 * their paths, a folder before those below it. (A name shown with U+FFFD may sort otherwise than its bytes: its
 * record is then passed over, or not found, and the folder is listed again; nothing else follows from it.)
 */
function comparePlaces(a: Place, b: Place): number {
  if (a.root !== b.root) return a.root - b.root;
  if (a.relDir === b.relDir) return 0;
  if (a.relDir === '') return -1;
  if (b.relDir === '') return 1;
  const x = a.relDir.split('/');
  const y = b.relDir.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return compareCodePoints(x[i]!, y[i]!);
  }
  return x.length - y.length;
}
