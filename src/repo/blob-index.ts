/**
 * The in-memory blob index: blob id → where the blob lives (pack, offset, lengths, type, codec), in typed arrays,
 * with no object per blob and no count limit below the machine's memory (a `Map` stops at 2^24 entries and costs
 * about 150 bytes a blob; a vault of 54 TB at 1 MiB chunks holds about 54 million blobs).
 *
 * Layout. Blob ids are keyed MACs, uniformly random, so the index needs no hash slots: entries sit in sorted runs,
 * each one `Uint32Array` of fixed-width records plus one `Uint8Array` of codecs, sized exactly. A record is the key
 * (the id's first 12 bytes as 3 big-endian words in prefix mode, all 32 bytes as 8 words in full-id mode), then the
 * pack ordinal with the type in its top bit (set for a tree), the offset, the sealed length and the plaintext length.
 * Prefix mode: 7 words + 1 byte = 29 bytes a blob; full-id mode: 12 words + 1 byte = 49 bytes a blob. Pack ids are
 * interned once each (32 bytes in one growing buffer, found through an open-addressing table of ordinals keyed by
 * the id's first word: inserts stay O(1), where a sorted array would shift on every new pack), 32 bytes a pack
 * plus at most 11 of table, under 3 bytes a blob at 16 blobs a pack (the id buffer grows by a quarter and is trimmed
 * after a bulk load).
 *
 * Inserts append to a pending area (chunks of {@link PENDING_CHUNK} records, so it never copies as it grows). The
 * first lookup after inserts settles it: the records are scattered by the top byte of their first key word into
 * a new run (sequential reads), the pending chunks let go, and each of the 256 buckets sorted in cache (a radix sort
 * of (word, position) pairs in two 12-bit passes, the rare equal first words then put in order by the remaining
 * words), duplicates dropped; the run is pushed onto the list of runs, which are merged geometrically (a run is
 * merged into the one before it while that one is at most twice its size). So a bulk load (appends, then one
 * lookup) sorts once, an insert costs amortised O(log n) moves however inserts and lookups interleave, and a lookup
 * searches at most log2(n) runs, usually one or two, by interpolation on the first word (ids are uniform: a few
 * probes, not log2(n)). A bulk settle holds the pending records and the new run at once, briefly: about twice the
 * index's size.

 * Duplicates: the first location added for an id wins, as with a `Map` kept with "add if absent". Within the
 * pending area the radix sort is stable and keeps the first; against older runs, a settled entry that an older run
 * already holds is dropped, so runs never share a key and {@link BlobIndex.size} counts distinct ids.
 *
 * Prefix mode and false matches. With 12-byte keys two different ids can share a key. For n random ids the chance
 * that any two share 96 bits is at most n²/2^97: about 2·10^-14 at 54 million blobs, 7·10^-18 at a million. A false
 * match cannot produce wrong data on read: `get` returns the other blob's location, and opening it under the asked
 * id fails authentication (the id is in the envelope's associated data), so a restore fails loudly. On the dedup
 * path (`has` while saving) a false match would skip storing the new blob, and a snapshot would name a blob the
 * vault lacks: verify reports it and restores of that file fail; data is missing, never wrong. What would close the
 * gap: confirm each prefix hit against full ids kept in a sorted local file (32 bytes a blob on disk, one pread a
 * hit), or build the index in full-id mode (49 bytes a blob). Full-id mode is also the only one whose
 * {@link BlobIndex.entries} can name blobs (verify needs that).
 *
 * @module
 */

/** Records per pending chunk. */
export const PENDING_CHUNK = 1 << 16; // `>>> 16` below

/** Pending entries below which a settle uses a comparison sort rather than the radix sort. */
const SMALL_SORT = 1024;

const TREE_BIT = 0x80000000;
/** The type values the format packs (ObjectType.data, ObjectType.tree). */
const DATA = 0x03;
const TREE = 0x04;

/** An index as one sorted run: what a cache file holds. */
export interface BlobIndexSnapshot {
  readonly fullIds: boolean;
  readonly count: number;
  /** `count` records of 12 words (whole ids) or 7 (prefixes), sorted by key, no key twice. */
  readonly records: Uint32Array;
  readonly codecs: Uint8Array;
  /** Pack ids, 32 bytes each, in ordinal order. */
  readonly packIds: Buffer;
}

/** Where a blob lives, as {@link BlobIndex.get} returns it. */
export interface BlobIndexLocation {
  readonly packId: Buffer;
  readonly type: 0x03 | 0x04;
  readonly codec: number;
  readonly offset: number;
  readonly length: number;
  readonly plaintextLength: number;
}

export interface BlobIndexOptions {
  /**
   * Keep all 32 bytes of each id (49 bytes a blob) rather than the first 12 (29 bytes a blob): lookups then never
   * match a different id, and {@link BlobIndex.entries} can yield ids. @default false
   */
  readonly fullIds?: boolean;
}

interface Run {
  readonly n: number;
  readonly w: Uint32Array;
  readonly codec: Uint8Array;
}

/** The value of hex digit `c` (a char code), or -1. */
const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);

const word = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/** Pack ids interned: ordinal → 32 bytes, and 32 bytes → ordinal through an open-addressing table. */
class PackTable {
  #ids = Buffer.alloc(32 * 64);
  #count = 0;
  #slots = new Int32Array(128); // ordinal + 1, 0 for empty

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#ids.byteLength + this.#slots.byteLength;
  }

  /** Ordinal of `id` (32 bytes at `at` in `b`), or -1. */
  find(b: Uint8Array, at: number): number {
    const mask = this.#slots.length - 1;
    for (let s = word(b, at) & mask; ; s = (s + 1) & mask) {
      const v = this.#slots[s]!;
      if (v === 0) return -1;
      if (this.#equals(v - 1, b, at)) return v - 1;
    }
  }

  /** Ordinal of `id` (32 bytes at `at` in `b`), interning it when new. */
  intern(b: Uint8Array, at: number): number {
    const found = this.find(b, at);
    if (found >= 0) return found;
    if (this.#count >= 0x7fffffff) throw new RangeError('more than 2^31 packs');
    if (4 * (this.#count + 1) > 3 * this.#slots.length) this.#grow();
    if (32 * (this.#count + 1) > this.#ids.length) {
      const ids = Buffer.alloc(32 * Math.max(Math.ceil((this.#ids.length / 32) * 1.25), 64));
      this.#ids.copy(ids);
      this.#ids = ids;
    }
    const ordinal = this.#count++;
    this.#ids.set(b.subarray(at, at + 32), 32 * ordinal);
    this.#place(ordinal);
    return ordinal;
  }

  /** Drops the spare room of the id buffer (after a bulk load, when few packs will follow). */
  trim(): void {
    if (this.#ids.length > 32 * this.#count) this.#ids = Buffer.from(this.#ids.subarray(0, 32 * this.#count));
  }

  /** Every pack id in ordinal order (a view of the table's own bytes). */
  ids(): Buffer {
    return this.#ids.subarray(0, 32 * this.#count);
  }

  /** A copy of pack `ordinal`'s id. */
  id(ordinal: number): Buffer {
    return Buffer.from(this.#ids.subarray(32 * ordinal, 32 * ordinal + 32));
  }

  #equals(ordinal: number, b: Uint8Array, at: number): boolean {
    const ids = this.#ids;
    const o = 32 * ordinal;
    for (let i = 0; i < 32; i++) if (ids[o + i] !== b[at + i]) return false;
    return true;
  }

  #place(ordinal: number): void {
    const mask = this.#slots.length - 1;
    let s = word(this.#ids, 32 * ordinal) & mask;
    while (this.#slots[s] !== 0) s = (s + 1) & mask;
    this.#slots[s] = ordinal + 1;
  }

  #grow(): void {
    this.#slots = new Int32Array(this.#slots.length * 2);
    for (let i = 0; i < this.#count; i++) this.#place(i);
  }
}

export class BlobIndex {
  /** Key words per record: 3 (prefix) or 8 (full ids). */
  readonly #k: number;
  /** Words per record: the key, then pack|type, offset, length, plaintext length. */
  readonly #stride: number;
  readonly #packs = new PackTable();
  /** Sorted runs, no key in two of them, sizes falling geometrically. */
  #runs: Run[] = [];
  #pending: Uint32Array[] = [];
  #pendingCodecs: Uint8Array[] = [];
  #pendingCount = 0;
  /** The key being looked up, as words. */
  readonly #probe = new Uint32Array(8);

  constructor(options: BlobIndexOptions = {}) {
    this.#k = options.fullIds ? 8 : 3;
    this.#stride = this.#k + 4;
  }

  /** True when ids are kept whole (see {@link BlobIndexOptions.fullIds}). */
  get fullIds(): boolean {
    return this.#k === 8;
  }

  /** Distinct ids held. */
  get size(): number {
    this.#settle();
    let n = 0;
    for (const r of this.#runs) n += r.n;
    return n;
  }

  /** Sorted runs now held (after settling): for tests and the benchmark. */
  get runCount(): number {
    this.#settle();
    return this.#runs.length;
  }

  /** Bytes of the typed arrays held (runs, pending area, pack table): what the index costs beyond a few objects. */
  get bytes(): number {
    let b = this.#packs.bytes;
    for (const r of this.#runs) b += r.w.byteLength + r.codec.byteLength;
    for (let i = 0; i < this.#pending.length; i++) b += this.#pending[i]!.byteLength + this.#pendingCodecs[i]!.byteLength;
    return b;
  }

  /**
   * The whole index as one sorted run and its pack ids, for a cache file: the runs are merged first (a copy of the
   * index, briefly). The arrays are the index's own: do not change them.
   */
  snapshot(): BlobIndexSnapshot {
    this.#settle();
    const runs = this.#runs;
    while (runs.length >= 2) {
      const b = runs.pop()!;
      const a = runs.pop()!;
      runs.push(this.#merge(a, b));
    }
    const run = runs[0] ?? { n: 0, w: new Uint32Array(0), codec: new Uint8Array(0) };
    return { fullIds: this.#k === 8, count: run.n, records: run.w, codecs: run.codec, packIds: this.#packs.ids() };
  }

  /**
   * An index holding `s` (from {@link snapshot}, e.g. read back from a cache file). The records must be sorted with
   * no key twice and name only the packs given: a cache file's authentication is what vouches for that.
   */
  static fromSnapshot(s: BlobIndexSnapshot): BlobIndex {
    const index = new BlobIndex({ fullIds: s.fullIds });
    const stride = index.#stride;
    if (s.records.length !== s.count * stride || s.codecs.length !== s.count || s.packIds.length % 32 !== 0) {
      throw new RangeError('a blob index snapshot whose arrays do not match its count');
    }
    for (let at = 0; at < s.packIds.length; at += 32) index.#packs.intern(s.packIds, at);
    index.#packs.trim();
    if (s.count > 0) index.#runs.push({ n: s.count, w: s.records, codec: s.codecs });
    return index;
  }

  /** Interns pack `id` (32 bytes at `at` in `b`) without adding a blob, and returns its ordinal. */
  internPack(b: Uint8Array, at = 0): number {
    return this.#packs.intern(b, at);
  }

  hasPack(id: Uint8Array): boolean {
    return id.length === 32 && this.#packs.find(id, 0) >= 0;
  }

  /**
   * Adds blob `id` (32 bytes at `at` in `b`) in pack `pack` (an ordinal from {@link internPack}); a later add of
   * the same id is ignored.
   */
  add(b: Uint8Array, at: number, pack: number, type: number, codec: number, offset: number, length: number, plaintextLength: number): void {
    if (type !== DATA && type !== TREE) throw new RangeError(`blob type ${type} is not packed`);
    const i = this.#pendingCount & (PENDING_CHUNK - 1);
    const w = this.#chunk();
    const k = this.#k;
    let o = i * this.#stride;
    for (let j = 0; j < k; j++, o++) w[o] = word(b, at + 4 * j);
    w[o] = type === TREE ? (pack | TREE_BIT) >>> 0 : pack;
    w[o + 1] = offset;
    w[o + 2] = length;
    w[o + 3] = plaintextLength;
    this.#pendingCodecs[this.#pendingCount >>> 16]![i] = codec;
    this.#pendingCount++;
  }

  /**
   * Adds `count` entries laid out as in an index object (52 bytes each from `first` in `plain`: id, pack ordinal
   * into `packs`, offset, length, plaintext length as u32 LE, type, codec), already checked by the reader.
   */
  addEncoded(plain: Buffer, first: number, count: number, packs: Uint32Array): void {
    const k = this.#k;
    const stride = this.#stride;
    const v = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
    for (let e = 0, at = first; e < count; ) {
      // A chunk's worth of entries at a time: the chunk and its codecs are looked up once for them.
      const i0 = this.#pendingCount & (PENDING_CHUNK - 1);
      const w = this.#chunk();
      const codecs = this.#pendingCodecs[this.#pendingCount >>> 16]!;
      const n = Math.min(count - e, PENDING_CHUNK - i0);
      for (let i = i0, end = i0 + n, o = i0 * stride; i < end; i++, at += 52, o += stride) {
        for (let j = 0; j < k; j++) w[o + j] = v.getUint32(at + 4 * j, false);
        const pack = packs[v.getUint32(at + 32, true)]!;
        w[o + k] = plain[at + 48] === TREE ? (pack | TREE_BIT) >>> 0 : pack;
        w[o + k + 1] = v.getUint32(at + 36, true);
        w[o + k + 2] = v.getUint32(at + 40, true);
        w[o + k + 3] = v.getUint32(at + 44, true);
        codecs[i] = plain[at + 49]!;
      }
      this.#pendingCount += n;
      e += n;
    }
  }

  /** The pending chunk the next entry goes to, added when full (the first one is kept across small settles). */
  #chunk(): Uint32Array {
    const c = this.#pendingCount >>> 16;
    if (c === this.#pending.length) {
      this.#pending.push(new Uint32Array(PENDING_CHUNK * this.#stride));
      this.#pendingCodecs.push(new Uint8Array(PENDING_CHUNK));
    }
    return this.#pending[c]!;
  }

  get(id: Uint8Array): BlobIndexLocation | undefined {
    if (id.length !== 32) return undefined;
    this.#settle();
    for (const r of this.#runs) {
      const p = this.#search(r, id, 0);
      if (p >= 0) return this.#location(r, p);
    }
    return undefined;
  }

  has(id: Uint8Array): boolean {
    if (id.length !== 32) return false;
    this.#settle();
    for (const r of this.#runs) if (this.#search(r, id, 0) >= 0) return true;
    return false;
  }

  /**
   * {@link has} for an id written as 64 hex digits (a tree's chunk list), decoded straight into the key: the check
   * that an unchanged file's chunks are indexed runs once a chunk, where a Buffer for each id is most of its cost.
   * False for anything but 64 hex digits.
   */
  hasHex(hex: string): boolean {
    if (!this.#probeHex(hex)) return false;
    this.#settle();
    for (const r of this.#runs) if (search(r, this.#stride, this.#k, this.#probe, 0) >= 0) return true;
    return false;
  }

  /** {@link positionOf} for an id written as 64 hex digits. */
  positionOfHex(hex: string): number {
    if (this.#pendingCount !== 0 || this.#runs.length !== 1 || !this.#probeHex(hex)) return -1;
    return search(this.#runs[0]!, this.#stride, this.#k, this.#probe, 0);
  }

  /** Decodes the key words of the id `hex` into the probe; false when it is not 64 hex digits. */
  #probeHex(hex: string): boolean {
    if (hex.length !== 64) return false;
    const key = this.#probe;
    for (let j = 0; j < 8; j++) {
      let w = 0;
      for (let c = 8 * j, end = c + 8; c < end; c++) {
        const d = hexDigit(hex.charCodeAt(c));
        if (d < 0) return false;
        w = w * 16 + d;
      }
      if (j < this.#k) key[j] = w;
    }
    return true;
  }

  /**
   * Where the key of `id` sits in an index of one run that nothing was added to (one read from a cache file:
   * {@link fromSnapshot}), or -1; the position is the record's in the snapshot too.
   */
  positionOf(id: Uint8Array): number {
    if (id.length !== 32 || this.#pendingCount !== 0 || this.#runs.length !== 1) return -1;
    return this.#search(this.#runs[0]!, id, 0);
  }

  /** The location of the record at `p` (from {@link positionOf}). */
  locationAt(p: number): BlobIndexLocation {
    return this.#location(this.#runs[0]!, p);
  }

  /**
   * Every id with its location, run by run (each run in id order). Needs full ids.
   * @throws {Error} in prefix mode, where ids are not kept whole.
   */
  *entries(): IterableIterator<[Buffer, BlobIndexLocation]> {
    if (this.#k !== 8) throw new Error('This blob index keeps id prefixes only; build it with fullIds to list its entries.');
    this.#settle();
    for (const r of this.#runs) {
      for (let p = 0; p < r.n; p++) {
        const id = Buffer.allocUnsafe(32);
        for (let j = 0; j < 8; j++) id.writeUInt32BE(r.w[p * this.#stride + j]!, 4 * j);
        yield [id, this.#location(r, p)];
      }
    }
  }

  #location(r: Run, p: number): BlobIndexLocation {
    const o = p * this.#stride + this.#k;
    const packWord = r.w[o]!;
    return {
      packId: this.#packs.id((packWord & ~TREE_BIT) >>> 0),
      type: packWord & TREE_BIT ? TREE : DATA,
      codec: r.codec[p]!,
      offset: r.w[o + 1]!,
      length: r.w[o + 2]!,
      plaintextLength: r.w[o + 3]!,
    };
  }

  /** Position in `r` of the key of id `b` (32 bytes at `at`), or -1. */
  #search(r: Run, b: Uint8Array, at: number): number {
    const key = this.#probe;
    for (let j = 0; j < this.#k; j++) key[j] = word(b, at + 4 * j);
    return search(r, this.#stride, this.#k, key, 0);
  }

  /** Sorts the pending area into a run, drops keys already held, and merges runs geometrically. */
  #settle(): void {
    const n = this.#pendingCount;
    if (n === 0) return;
    const run = buildRun(this.#pending, this.#pendingCodecs, this.#stride, this.#k, n, this.#runs);
    // After a bulk settle the spare room of the pack ids goes too (the next new pack copies them again: once a
    // load, not once an insert).
    if (n >= SMALL_SORT) this.#packs.trim();
    this.#pendingCount = 0;
    const runs = this.#runs;
    if (run.n > 0) runs.push(run);
    while (runs.length >= 2 && runs[runs.length - 2]!.n <= 2 * runs[runs.length - 1]!.n) {
      const b = runs.pop()!;
      const a = runs.pop()!;
      runs.push(this.#merge(a, b));
    }
  }

  /** Merges two runs that share no key. */
  #merge(a: Run, b: Run): Run {
    const stride = this.#stride;
    const k = this.#k;
    const n = a.n + b.n;
    const w = new Uint32Array(n * stride);
    const codec = new Uint8Array(n);
    let i = 0;
    let j = 0;
    for (let p = 0; p < n; p++) {
      let fromA: boolean;
      if (i === a.n) fromA = false;
      else if (j === b.n) fromA = true;
      else {
        let c = 0;
        const oa = i * stride;
        const ob = j * stride;
        for (let x = 0; c === 0 && x < k; x++) c = a.w[oa + x]! - b.w[ob + x]!;
        fromA = c < 0;
      }
      const src = fromA ? a : b;
      const q = fromA ? i++ : j++;
      for (let x = 0, so = q * stride, o = p * stride; x < stride; x++) w[o + x] = src.w[so + x]!;
      codec[p] = src.codec[q]!;
    }
    return { n, w, codec };
  }
}

// The steps of settling, as plain functions over typed arrays (what V8 compiles best).

const SHIFT = 16; // log2(PENDING_CHUNK)
const MASK = PENDING_CHUNK - 1;

/** Compares record `p` of run `r` with the key at `so` in `key`. */
function compareAt(r: Run, p: number, stride: number, k: number, key: Uint32Array, so: number): number {
  const w = r.w;
  const o = p * stride;
  let c = 0;
  for (let j = 0; c === 0 && j < k; j++) c = w[o + j]! - key[so + j]!;
  return c;
}

/**
 * Position in `r` of the key at `so` in `key`, or -1. Ids are uniformly random, so an interpolation search on the
 * first word finds a key in a few probes (log log n expected); a step that fails to halve the range is followed by a
 * halving one, so a skewed run still costs at most about twice log2(n) probes.
 */
function search(r: Run, stride: number, k: number, key: Uint32Array, so: number): number {
  const w = r.w;
  const t = key[so]!;
  let lo = 0;
  let hi = r.n - 1;
  let halve = false;
  while (lo <= hi) {
    const lw = w[lo * stride]!;
    const hw = w[hi * stride]!;
    if (t < lw || t > hw) return -1;
    const span = hi - lo;
    let mid = lo + (span >>> 1);
    if (!halve && hw > lw) mid = lo + Math.floor(((t - lw) / (hw - lw)) * span);
    const c = compareAt(r, mid, stride, k, key, so);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
    halve = !halve && hi - lo > span >>> 1;
  }
  return -1;
}

/**
 * Sorts the `n` pending records into a new run, stably, dropping a key equal to the one before it (a later add of
 * the same id) or held by one of `runs` (added before). The records are first scattered by the top byte of their
 * first word into 256 buckets (sequential reads, 256 write streams), the pending chunks are let go, and each bucket
 * (1/256 of the records, in cache) is sorted: (first word, position) pairs radix-sorted in two 12-bit passes, or
 * compared when few, equal first words put in order by the remaining words. A gather over the whole pending area
 * in key order would instead read every record from a random place: most of the time of a large load.
 */
function buildRun(chunks: Uint32Array[], codecs: Uint8Array[], stride: number, k: number, n: number, runs: readonly Run[]): Run {
  const count = new Uint32Array(257);
  for (let i = 0; i < n; i++) count[(chunks[i >>> SHIFT]![(i & MASK) * stride]! >>> 24) + 1]!++;
  for (let d = 1; d <= 256; d++) count[d]! += count[d - 1]!;
  const starts = count.slice();
  const w = new Uint32Array(n * stride);
  const codec = new Uint8Array(n);
  for (let c = 0, i = 0; c < chunks.length && i < n; c++) {
    const src = chunks[c]!;
    const cs = codecs[c]!;
    for (let q = 0; q < PENDING_CHUNK && i < n; q++, i++) {
      const so = q * stride;
      const p = count[src[so]! >>> 24]!++;
      for (let j = 0, o = p * stride; j < stride; j++) w[o + j] = src[so + j]!;
      codec[p] = cs[q]!;
    }
  }
  // Let the pending chunks go before sorting, except the first after a small settle: inserts between lookups
  // reuse it rather than allocate a chunk each.
  chunks.length = n < SMALL_SORT ? 1 : 0;
  codecs.length = chunks.length;

  let largest = 0;
  for (let d = 0; d < 256; d++) largest = Math.max(largest, starts[d + 1]! - starts[d]!);
  const scratch = { keys: new Uint32Array(largest), ords: new Uint32Array(largest), keys2: new Uint32Array(largest), ords2: new Uint32Array(largest) };
  const tw = new Uint32Array(largest * stride);
  const tc = new Uint8Array(largest);
  let kept = 0;
  for (let d = 0; d < 256; d++) {
    const s = starts[d]!;
    const m = starts[d + 1]! - s;
    if (m === 0) continue;
    const { keys, ords } = sortSlice(w, stride, k, s, m, scratch);
    // Sorted into the side buffer, then back at the write position (never past the read position: kept ≤ s).
    for (let i = 0; i < m; i++) {
      const so = (s + ords[i]!) * stride;
      for (let j = 0, o = i * stride; j < stride; j++) tw[o + j] = w[so + j]!;
      tc[i] = codec[s + ords[i]!]!;
    }
    // The common case, a bulk load of new ids: nothing dropped, the bucket copied back in one block.
    let drops = false;
    for (let i = 1; !drops && i < m; i++) drops = keys[i] === keys[i - 1] && compareRest(tw, k, (i - 1) * stride, i * stride) === 0;
    if (!drops && runs.length === 0) {
      w.set(tw.subarray(0, m * stride), kept * stride);
      codec.set(tc.subarray(0, m), kept);
      kept += m;
      continue;
    }
    for (let i = 0; i < m; i++) {
      const so = i * stride;
      if (i > 0 && keys[i] === keys[i - 1] && compareRest(tw, k, so - stride, so) === 0) continue;
      let held = false;
      for (let r = 0; !held && r < runs.length; r++) held = search(runs[r]!, stride, k, tw, so) >= 0;
      if (held) continue;
      for (let j = 0, o = kept * stride; j < stride; j++) w[o + j] = tw[so + j]!;
      codec[kept++] = tc[i]!;
    }
  }
  if (kept === n) return { n, w, codec };
  return { n: kept, w: w.slice(0, kept * stride), codec: codec.slice(0, kept) };
}

/** Compares the records at `a` and `b` of `w` on their key words after the first. */
function compareRest(w: Uint32Array, k: number, a: number, b: number): number {
  for (let j = 1; j < k; j++) {
    const c = w[a + j]! - w[b + j]!;
    if (c !== 0) return c;
  }
  return 0;
}

interface Scratch {
  keys: Uint32Array;
  ords: Uint32Array;
  keys2: Uint32Array;
  ords2: Uint32Array;
}

/** Orders the `m` records of `w` from record `s` by key, stably: their first words and positions in `s…`. */
function sortSlice(w: Uint32Array, stride: number, k: number, s: number, m: number, scratch: Scratch): { keys: Uint32Array; ords: Uint32Array } {
  let keys = scratch.keys.subarray(0, m);
  let ords = scratch.ords.subarray(0, m);
  for (let i = 0; i < m; i++) {
    keys[i] = w[(s + i) * stride]!;
    ords[i] = i;
  }
  if (m < SMALL_SORT) {
    // A few records: a comparison sort, rather than passes over 2^12 counters.
    ords.sort((a, b) => keys[a]! - keys[b]! || a - b);
    const sorted = scratch.keys2.subarray(0, m);
    for (let i = 0; i < m; i++) sorted[i] = keys[ords[i]!]!;
    keys = sorted;
  } else {
    let keys2 = scratch.keys2.subarray(0, m);
    let ords2 = scratch.ords2.subarray(0, m);
    // The top byte is the bucket's: two 12-bit passes order the rest.
    const count = new Uint32Array(4096);
    for (let shift = 0; shift <= 12; shift += 12) {
      count.fill(0);
      for (let i = 0; i < m; i++) count[(keys[i]! >>> shift) & 0xfff]!++;
      let sum = 0;
      for (let d = 0; d < 4096; d++) {
        const c = count[d]!;
        count[d] = sum;
        sum += c;
      }
      for (let i = 0; i < m; i++) {
        const key = keys[i]!;
        const d = count[(key >>> shift) & 0xfff]!++;
        keys2[d] = key;
        ords2[d] = ords[i]!;
      }
      const tk = keys;
      keys = keys2;
      keys2 = tk;
      const to = ords;
      ords = ords2;
      ords2 = to;
    }
  }
  // Equal first words (rare: random ids), stably by the remaining words (insertion sort within each tie).
  for (let i = 1; i < m; i++) {
    if (keys[i] !== keys[i - 1]) continue;
    let start = i - 1;
    while (start > 0 && keys[start - 1] === keys[i]) start--;
    const x = ords[i]!;
    let j = i - 1;
    while (j >= start && compareRest(w, k, (s + ords[j]!) * stride, (s + x) * stride) > 0) {
      ords[j + 1] = ords[j]!;
      j--;
    }
    ords[j + 1] = x;
  }
  return { keys, ords };
}
