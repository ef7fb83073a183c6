/**
 * Packs: many sealed blobs in one stored file, with a sealed table of contents at the end.
 *
 * ```
 *  pack = blob_1 ‖ blob_2 ‖ … ‖ blob_n ‖ header ‖ trailer
 *
 *  blob_i   bare sealed blob (salt ‖ ciphertext ‖ tag), type data or tree; blob_1 starts at offset 0 and each
 *           next blob starts where the previous one ends
 *  header   bare sealed blob of type packHeader under the all-zero id; its plaintext:
 *             offset  size  field
 *             0       4     entry count n                 (u32 little-endian)
 *             4       44·n  entries, in file order:
 *                             +0   1   object type        (data 0x03 or tree 0x04)
 *                             +1   1   codec              (0x00 none)
 *                             +2   2   reserved           (0x0000)
 *                             +4   4   sealed length      (u32 LE, bytes in the pack)
 *                             +8   4   plaintext length   (u32 LE, after opening and decoding)
 *                             +12  32  blob id
 *  trailer  8 bytes:  header length (u32 LE) ‖ "VPK" ‖ format version (0x01)
 * ```
 *
 * A pack's id (its name, `data/<id>`) is the SHA-256 of all its bytes, so storage-level corruption is found without
 * the key, and uploading the same pack twice writes the same name. The header is only read to rebuild a lost
 * index: each entry it names is still checked against the blob's own authenticated id, so a header moved from
 * another pack cannot make a wrong blob pass. Blobs are bare, so a pack's bytes do not show where blobs begin.
 *
 * @module
 */
import { VaultpathError } from '../errors.js';
import { toHex } from '../bytes.js';
import { type SealKeys, BLOB_OVERHEAD, Codec, openBlob, sealBlob } from '../crypto/envelope.js';
import { ObjectType, describeType } from '../crypto/object-type.js';

/** Bytes of the fixed trailer at the end of every pack. */
export const PACK_TRAILER_LENGTH = 8;
/** Bytes of one pack header entry. */
export const PACK_ENTRY_LENGTH = 44;
/** The pack format version. */
export const PACK_VERSION = 1;
/** The id the pack header is sealed under. */
export const PACK_HEADER_ID = new Uint8Array(32);
/** The largest pack this format addresses (offsets are u32). */
export const MAX_PACK_SIZE = 0xffff_ffff;

const TRAILER_MAGIC = Buffer.from('VPK', 'latin1');
/** Bytes of the sealed header of a pack with no blobs: its count, sealed. */
const EMPTY_HEADER_LENGTH = 4 + BLOB_OVERHEAD;

/** The blob types a pack holds. */
export type PackedType = typeof ObjectType.data | typeof ObjectType.tree;

/** Where one blob sits in a pack. */
export interface PackEntry {
  readonly type: PackedType;
  readonly codec: number;
  readonly id: Buffer;
  /** Offset of the sealed blob from the start of the pack. */
  readonly offset: number;
  /** Sealed length in the pack. */
  readonly length: number;
  /** Length after opening. */
  readonly plaintextLength: number;
}

/**
 * The bytes that end a pack whose blobs are `entries` (in file order): the sealed header, then the trailer. For a
 * writer that places the blobs itself (pack-file.ts).
 */
export function packTail(keys: SealKeys, entries: readonly PackEntry[]): Buffer[] {
  const header = sealBlob(keys, ObjectType.packHeader, PACK_HEADER_ID, encodePackHeader(entries));
  const trailer = Buffer.alloc(PACK_TRAILER_LENGTH);
  trailer.writeUInt32LE(header.length, 0);
  TRAILER_MAGIC.copy(trailer, 4);
  trailer[7] = PACK_VERSION;
  return [...header.parts, trailer];
}

/**
 * Encodes the plaintext of a pack header.
 * @throws {RangeError} an entry of a type packs do not hold, or one past the largest pack.
 */
export function encodePackHeader(entries: readonly PackEntry[]): Buffer {
  const out = Buffer.alloc(4 + entries.length * PACK_ENTRY_LENGTH);
  out.writeUInt32LE(entries.length, 0);
  let o = 4;
  for (const e of entries) {
    if (e.type !== ObjectType.data && e.type !== ObjectType.tree) throw new RangeError(`"type" cannot be packed: ${e.type}`);
    if (e.offset + e.length > MAX_PACK_SIZE) throw new RangeError('pack would exceed 4 GiB');
    out[o] = e.type;
    out[o + 1] = e.codec;
    out.writeUInt16LE(0, o + 2);
    out.writeUInt32LE(e.length, o + 4);
    out.writeUInt32LE(e.plaintextLength, o + 8);
    e.id.copy(out, o + 12);
    o += PACK_ENTRY_LENGTH;
  }
  return out;
}

/**
 * Reads the trailer (the last 8 bytes of a pack) and returns the sealed header's length.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT`, `VP_UNSUPPORTED_VERSION`.
 */
export function readPackTrailer(trailer: Uint8Array, packSize: number, where: string): number {
  const t = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (t.length !== PACK_TRAILER_LENGTH || !t.subarray(4, 7).equals(TRAILER_MAGIC)) {
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${where} has no pack trailer; it is truncated or not a pack.`);
  }
  if (t[7] !== PACK_VERSION) {
    throw new VaultpathError(
      'VP_UNSUPPORTED_VERSION',
      `${where} has pack format version ${t[7]}; this vaultpath reads version ${PACK_VERSION}. Upgrade vaultpath.`,
    );
  }
  const headerLength = t.readUInt32LE(0);
  if (headerLength + PACK_TRAILER_LENGTH > packSize) {
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${where} claims a ${headerLength}-byte header but is only ${packSize} bytes.`);
  }
  // A header of n entries is a sealed 4 + 44·n bytes, and each of its n blobs takes at least a sealed blob's
  // overhead: a length that fits neither is refused before the header is read into memory.
  const entryBytes = headerLength - EMPTY_HEADER_LENGTH;
  if (entryBytes < 0 || entryBytes % PACK_ENTRY_LENGTH !== 0) {
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${where} claims a ${headerLength}-byte header, which no number of entries makes; the pack is damaged.`);
  }
  const entries = entryBytes / PACK_ENTRY_LENGTH;
  if (headerLength + PACK_TRAILER_LENGTH + entries * BLOB_OVERHEAD > packSize) {
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${where} claims ${entries} blobs, more than its ${packSize} bytes can hold; the pack is damaged.`);
  }
  return headerLength;
}

/**
 * Opens a pack's sealed header (the `headerLength` bytes before the trailer) and checks that its entries tile the
 * pack exactly.
 * @throws {VaultpathError} `VP_AUTH_FAILED`, `VP_MALFORMED_OBJECT`.
 */
export function openPackHeader(keys: SealKeys, sealedHeader: Uint8Array, packSize: number, where: string): PackEntry[] {
  const plain = openBlob(keys, ObjectType.packHeader, PACK_HEADER_ID, sealedHeader, { where: `The header of ${where}` });
  const bad = (what: string): VaultpathError =>
    new VaultpathError('VP_MALFORMED_OBJECT', `The header of ${where} ${what}; the pack is damaged.`);
  if (plain.length < 4) throw bad('is too short');
  const n = plain.readUInt32LE(0);
  if (plain.length !== 4 + n * PACK_ENTRY_LENGTH) throw bad(`lists ${n} entries but holds ${plain.length} bytes`);
  const entries: PackEntry[] = [];
  let offset = 0;
  for (let i = 0, o = 4; i < n; i++, o += PACK_ENTRY_LENGTH) {
    const type = plain[o]!;
    if (type !== ObjectType.data && type !== ObjectType.tree) throw bad(`has an entry of type ${describeType(type)}`);
    if (plain.readUInt16LE(o + 2) !== 0) throw bad('has a non-zero reserved field');
    const codec = plain[o + 1]!;
    const length = plain.readUInt32LE(o + 4);
    const plaintextLength = plain.readUInt32LE(o + 8);
    const problem = blobLocationProblem(offset, length, codec, plaintextLength);
    if (problem !== undefined) throw bad(`has an entry (${i}) that ${problem}`);
    entries.push({ type, codec, length, plaintextLength, id: Buffer.from(plain.subarray(o + 12, o + 44)), offset });
    offset += length;
  }
  if (offset + sealedHeader.length + PACK_TRAILER_LENGTH !== packSize) {
    throw bad(`accounts for ${offset} bytes of blobs, which does not match the pack size ${packSize}`);
  }
  return entries;
}

/**
 * Checks where a blob is said to be, wherever that is read from (an index entry, a pack header): it must hold at
 * least a sealed blob's overhead, end within the largest pack (two u32 fields can add up past it), and, stored
 * without compression, be exactly its plaintext plus the overhead. Returns what is wrong with it (to follow "the
 * entry"), or `undefined`: no call or closure per blob where every blob of a vault is checked. @internal
 */
export function blobLocationProblem(offset: number, length: number, codec: number, plaintextLength: number): string | undefined {
  if (length < BLOB_OVERHEAD) return `has a sealed length of ${length} bytes, less than a sealed blob's ${BLOB_OVERHEAD}`;
  if (offset + length > MAX_PACK_SIZE) return `ends at byte ${offset + length}, beyond the largest pack (${MAX_PACK_SIZE} bytes)`;
  if (codec === Codec.none && plaintextLength !== length - BLOB_OVERHEAD) {
    return `has a plaintext length of ${plaintextLength} bytes for a sealed length of ${length}`;
  }
  return undefined;
}

/** A short label for a pack in messages. */
export function packLabel(id: Uint8Array): string {
  return `pack ${toHex(id)}`;
}
