/**
 * Index objects (`index/<id>`): which pack holds each blob, and where in it.
 *
 * Sealed as a standalone object of type `index` under its own random id. The plaintext is binary, 52 bytes a blob
 * (about 55 MB per million 1-MiB chunks, a TiB of unique data), since the whole index is read at every backup:
 *
 * ```
 *  offset  size   field
 *  0       4      pack count P                     (u32 little-endian)
 *  4       32·P   pack ids, in order (SHA-256 of each pack)
 *  …       4      blob count N                     (u32 LE)
 *  …       52·N   entries:
 *                   +0   32  blob id
 *                   +32  4   pack ordinal          (u32 LE, index into the pack ids above)
 *                   +36  4   offset in the pack    (u32 LE)
 *                   +40  4   sealed length         (u32 LE)
 *                   +44  4   plaintext length      (u32 LE)
 *                   +48  1   object type           (data 0x03 or tree 0x04)
 *                   +49  1   codec                 (0x00 none)
 *                   +50  2   reserved              (0x0000)
 *  …       4      superseded index count S         (u32 LE)
 *  …       32·S   ids of index objects this one replaces (written by compaction; empty for a backup)
 * ```
 *
 * Write ordering: an index object is written only after every pack it names has been acknowledged by the store,
 * and a snapshot only after the index objects covering everything it references.
 *
 * @module
 */
import { VaultpathError } from '../errors.js';
import { type SealKeys, joinSealed, openObject, sealObject } from '../crypto/envelope.js';
import { ObjectType } from '../crypto/object-type.js';
import { type PackedType, blobLocationProblem } from './pack.js';

/** Bytes of one index entry. */
export const INDEX_ENTRY_LENGTH = 52;

/** Where one blob lives. */
export interface IndexEntry {
  readonly id: Buffer;
  readonly type: PackedType;
  readonly codec: number;
  readonly packId: Buffer;
  readonly offset: number;
  readonly length: number;
  readonly plaintextLength: number;
}

/** The content of one index object. */
export interface IndexContent {
  readonly entries: readonly IndexEntry[];
  /** Ids of index objects this one replaces. */
  readonly supersedes: readonly Buffer[];
}

/** Encodes the plaintext of an index object. Pack ids are numbered in the order first seen. */
export function encodeIndex(content: IndexContent): Buffer {
  const packOrdinals = new Map<string, number>();
  const packIds: Buffer[] = [];
  for (const e of content.entries) {
    const key = e.packId.toString('hex');
    if (!packOrdinals.has(key)) {
      packOrdinals.set(key, packIds.length);
      packIds.push(e.packId);
    }
  }
  const size = 4 + 32 * packIds.length + 4 + INDEX_ENTRY_LENGTH * content.entries.length + 4 + 32 * content.supersedes.length;
  const out = Buffer.alloc(size);
  let o = out.writeUInt32LE(packIds.length, 0);
  for (const p of packIds) o += checked(p, 'packId').copy(out, o);
  o = out.writeUInt32LE(content.entries.length, o);
  for (const e of content.entries) {
    checked(e.id, 'id').copy(out, o);
    out.writeUInt32LE(packOrdinals.get(e.packId.toString('hex'))!, o + 32);
    out.writeUInt32LE(e.offset, o + 36);
    out.writeUInt32LE(e.length, o + 40);
    out.writeUInt32LE(e.plaintextLength, o + 44);
    out[o + 48] = e.type;
    out[o + 49] = e.codec;
    out.writeUInt16LE(0, o + 50);
    o += INDEX_ENTRY_LENGTH;
  }
  o = out.writeUInt32LE(content.supersedes.length, o);
  for (const s of content.supersedes) o += checked(s, 'supersedes').copy(out, o);
  return out;
}

/**
 * Decodes the plaintext of an index object, checking every count against the bytes present before trusting it.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT`.
 */
export function decodeIndex(plain: Buffer, where = 'index'): IndexContent {
  return indexContent(readIndex(plain, where));
}

function indexContent(reader: IndexReader): IndexContent {
  const entries: IndexEntry[] = [];
  reader.forEach((plain, at, location) => entries.push({ id: Buffer.from(plain.subarray(at, at + 32)), ...location }));
  return { entries, supersedes: reader.supersedes };
}

/**
 * An index object's plaintext with its counts checked, its entries visited in place: what a reader that adds
 * entries straight into a map uses, without an {@link IndexEntry} and a copy of the id for each. @internal
 */
export interface IndexReader {
  readonly packIds: readonly Buffer[];
  readonly supersedes: readonly Buffer[];
  /**
   * Calls `visit` for each entry in order with its location, after checking the pack ordinal, the type and the
   * reserved field. The entry's id is the 32 bytes of `plain` at `at`, left in place.
   * @throws {VaultpathError} `VP_MALFORMED_OBJECT` at the first entry that fails a check.
   */
  forEach(visit: (plain: Buffer, at: number, location: Omit<IndexEntry, 'id'>) => void): void;
  /**
   * The entries in place, for a bulk reader that decodes them itself (no call and no object per entry): `count`
   * entries of {@link INDEX_ENTRY_LENGTH} bytes from `first` in `plain`, laid out as in the header.
   */
  readonly plain: Buffer;
  readonly first: number;
  readonly count: number;
  /**
   * Runs {@link forEach}'s checks on every entry without visiting any.
   * @throws {VaultpathError} `VP_MALFORMED_OBJECT` at the first entry that fails a check.
   */
  check(): void;
}

/**
 * Checks an index object's counts and length and returns a reader of its entries.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT`.
 * @internal
 */
export function readIndex(plain: Buffer, where = 'index'): IndexReader {
  const bad = (what: string): VaultpathError =>
    new VaultpathError('VP_MALFORMED_OBJECT', `${where} ${what}; the index is damaged. Rebuild the index from the packs.`);
  let o = 0;
  const need = (n: number, what: string): void => {
    if (o + n > plain.length) throw bad(`ends inside its ${what}`);
  };
  need(4, 'pack count');
  const packCount = plain.readUInt32LE(o);
  o += 4;
  need(32 * packCount, 'pack ids');
  const packIds: Buffer[] = [];
  for (let i = 0; i < packCount; i++, o += 32) packIds.push(Buffer.from(plain.subarray(o, o + 32)));
  need(4, 'blob count');
  const n = plain.readUInt32LE(o);
  o += 4;
  need(INDEX_ENTRY_LENGTH * n, 'entries');
  const first = o;
  o += INDEX_ENTRY_LENGTH * n;
  need(4, 'superseded count');
  const s = plain.readUInt32LE(o);
  o += 4;
  need(32 * s, 'superseded ids');
  const supersedes: Buffer[] = [];
  for (let i = 0; i < s; i++, o += 32) supersedes.push(Buffer.from(plain.subarray(o, o + 32)));
  if (o !== plain.length) throw bad(`has ${plain.length - o} bytes after its last field`);
  // Plain reads through one view (bounds were checked above) and no closure for an entry that passes: this loop
  // runs once for every blob of the vault at every load.
  const v = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
  const problem = (at: number): string | undefined => {
    const ordinal = v.getUint32(at + 32, true);
    if (ordinal >= packCount) return `names pack ${ordinal} of ${packCount}`;
    const type = plain[at + 48]!;
    if (type !== ObjectType.data && type !== ObjectType.tree) return `has type ${type}`;
    if ((plain[at + 50]! | plain[at + 51]!) !== 0) return 'has a non-zero reserved field';
    return blobLocationProblem(v.getUint32(at + 36, true), v.getUint32(at + 40, true), plain[at + 49]!, v.getUint32(at + 44, true));
  };
  const each = (visit?: (plain: Buffer, at: number, location: Omit<IndexEntry, 'id'>) => void): void => {
    for (let i = 0, at = first; i < n; i++, at += INDEX_ENTRY_LENGTH) {
      const wrong = problem(at);
      if (wrong !== undefined) throw bad(`entry ${i} ${wrong}`);
      visit?.(plain, at, {
        packId: packIds[v.getUint32(at + 32, true)]!,
        type: plain[at + 48] as PackedType,
        codec: plain[at + 49]!,
        offset: v.getUint32(at + 36, true),
        length: v.getUint32(at + 40, true),
        plaintextLength: v.getUint32(at + 44, true),
      });
    }
  };
  return { packIds, supersedes, plain, first, count: n, forEach: each, check: () => each() };
}

/** Seals an index object stored under `index/<id>`. */
export function sealIndex(keys: SealKeys, id: Uint8Array, content: IndexContent): Buffer {
  return joinSealed(sealObject(keys, ObjectType.index, id, encodeIndex(content)));
}

/** Opens the index object stored under `index/<id>` and checks its counts (see {@link readIndex}). @internal */
export function openIndexReader(keys: SealKeys, id: Uint8Array, sealed: Uint8Array): IndexReader {
  const where = `index ${Buffer.from(id).toString('hex')}`;
  return readIndex(openObject(keys, ObjectType.index, id, sealed, { where }), where);
}

/** Opens and decodes the index object stored under `index/<id>`. */
export function openIndex(keys: SealKeys, id: Uint8Array, sealed: Uint8Array): IndexContent {
  return indexContent(openIndexReader(keys, id, sealed));
}

function checked(b: Buffer, label: string): Buffer {
  if (b.length !== 32) throw new RangeError(`"${label}" expected 32 bytes, got ${b.length}`);
  return b;
}
