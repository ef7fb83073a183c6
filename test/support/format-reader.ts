/**
 * An independent reader of the vault format v1, written from FORMAT.md alone, for a local vault folder.
 *
 * It shares no code with src/: its only primitives are @noble/hashes and @noble/ciphers, and node:fs to read the
 * folder. It opens a vault with its passphrase (key slots, config, index objects, packs), then lists every snapshot
 * and walks its trees into a listing (path bytes, type, mode, times, size, content hash, link target) that a test
 * compares with the source folder on disk. If the code and FORMAT.md ever disagree on a byte or a rule, this
 * reader fails where the code succeeds, or the listing differs.
 *
 * Contracts: read-only (it never writes into the vault folder); every object is checked against the document
 * (types, bounds, lengths, authentication, recomputed ids, sort order, limits) before anything uses it, and a
 * failure throws a {@link FormatReaderError} whose `code` is the one FORMAT.md names, or VP_MALFORMED_OBJECT where
 * the document names none. It is slow (noble AES-GCM) and holds a pack in memory while it checks it: test-sized
 * vaults only.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gcm } from '@noble/ciphers/aes.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { argon2id } from '@noble/hashes/argon2.js';
import { expand, hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

export class FormatReaderError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'FormatReaderError';
  }
}

const fail = (code: string, message: string): never => {
  throw new FormatReaderError(code, message);
};
const malformed = (message: string): never => fail('VP_MALFORMED_OBJECT', message);

// §2 object types
const T_CONFIG = 0x01;
const T_KEY_SLOT = 0x02;
const T_DATA = 0x03;
const T_TREE = 0x04;
const T_PACK_HEADER = 0x05;
const T_INDEX = 0x06;
const T_SNAPSHOT = 0x07;
const T_LOCK = 0x08;

const ZERO_ID = new Uint8Array(32);
const HEX64 = /^[0-9a-f]{64}$/;

// §10 "Limits readers enforce"
export const TREE_NODES_LIMIT = 10_000;
export const TREE_DEPTH_LIMIT = 1024;
/** tree object → nodes array → node object → holes array → one [offset, length] pair. */
export const TREE_JSON_NESTING_LIMIT = 5;

// ---------------------------------------------------------------------------------------------------------------
// little helpers

const u32 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isIsoUtc(s: unknown): s is string {
  return typeof s === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(s) && !Number.isNaN(Date.parse(s));
}

const isU53 = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/**
 * The deepest nesting of arrays and objects in a JSON text, found by scanning it (strings skipped) before it is
 * parsed: a reader refuses too deep a text without handing it to a recursive parser.
 */
export function jsonNesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

function parseJson(plain: Uint8Array, what: string, nestingLimit: number): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(plain);
  } catch {
    return malformed(`${what} is not UTF-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) malformed(`${what} starts with a byte order mark`);
  if (jsonNesting(text) > nestingLimit) fail('VP_FORMAT_LIMIT', `${what} nests JSON deeper than ${nestingLimit}`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return malformed(`${what} is not JSON`);
  }
}

function plainObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) malformed(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) malformed(`${what} has an unknown field "${k}"`);
}

// ---------------------------------------------------------------------------------------------------------------
// §1 names

export type ObjectKind = 'config' | 'keys' | 'data' | 'index' | 'snapshots' | 'locks';

/** The object a store name denotes (§1), or undefined for names readers ignore. */
export function classifyName(name: string): { kind: ObjectKind; id: string } | undefined {
  if (name === 'config') return { kind: 'config', id: '0'.repeat(64) };
  let m = /^(keys|index|snapshots|locks)\/([0-9a-f]{64})$/.exec(name);
  if (m) return { kind: m[1] as ObjectKind, id: m[2]! };
  m = /^data\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(name);
  if (m && m[2]!.startsWith(m[1]!)) return { kind: 'data', id: m[2]! };
  return undefined;
}

/** Every file below `root` as a store name (`/`-separated), sorted. */
async function listNames(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(rel === '' ? root : join(root, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  await walk('');
  return out.sort();
}

// ---------------------------------------------------------------------------------------------------------------
// §3 key slots, §4 subkeys

export interface KdfParameters {
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/** Checks a key slot up to (not including) the KDF, in the order §3 gives; returns its parameters. */
export function checkKeySlot(slot: Uint8Array): KdfParameters {
  if (slot.length < 4 || !equalBytes(slot.subarray(0, 4), utf8ToBytes('VPKS'))) fail('VP_KEY_SLOT_DAMAGED', 'not a key slot (magic)');
  if (slot[4] !== 0x01) fail('VP_UNSUPPORTED_VERSION', `key slot version ${slot[4]}, this reader knows 1`);
  if (slot.length !== 156) fail('VP_KEY_SLOT_DAMAGED', `key slot of ${slot.length} bytes, not 156`);
  if (!equalBytes(sha256(slot.subarray(0, 124)), slot.subarray(124))) fail('VP_KEY_SLOT_DAMAGED', 'key slot checksum mismatch');
  if (slot[5] !== T_KEY_SLOT || slot[7] !== 0) fail('VP_KEY_SLOT_DAMAGED', 'key slot type or reserved byte');
  if (slot[6] !== 0x01) fail('VP_UNSUPPORTED_VERSION', `key slot KDF algorithm ${slot[6]}, this reader knows 1 (Argon2id)`);
  const p = { memoryKiB: u32(slot, 8), iterations: u32(slot, 12), parallelism: u32(slot, 16) };
  const okLanes = p.parallelism >= 1 && p.parallelism <= 16;
  const okMemory = p.memoryKiB >= 8 && p.memoryKiB <= 2 * 1024 * 1024 && p.memoryKiB >= 8 * p.parallelism;
  if (!okLanes || !okMemory || p.iterations < 1 || p.iterations > 64) fail('VP_KDF_PARAMS', `key slot KDF parameters out of bounds: ${JSON.stringify(p)}`);
  return p;
}

/** The master key a slot wraps, or undefined when the passphrase does not unwrap it. */
export function unwrapKeySlot(slot: Uint8Array, slotId: Uint8Array, passphrase: string): Uint8Array | undefined {
  const p = checkKeySlot(slot);
  const kek = argon2id(utf8ToBytes(passphrase.normalize('NFC')), slot.subarray(20, 52), {
    m: p.memoryKiB,
    t: p.iterations,
    p: p.parallelism,
    dkLen: 32,
    version: 0x13,
  });
  try {
    const key = xchacha20poly1305(kek, slot.subarray(52, 76), concatBytes(slot.subarray(0, 76), slotId)).decrypt(slot.subarray(76, 124));
    return key.length === 32 ? key : malformed('wrapped master key is not 32 bytes');
  } catch (e) {
    if (e instanceof FormatReaderError) throw e;
    return undefined;
  }
}

interface Subkeys {
  readonly seal: Uint8Array;
  readonly chunkId: Uint8Array;
  /** The FastCDC gear table: 256 words. */
  readonly gear: Uint32Array;
}

function subkeys(master: Uint8Array): Subkeys {
  const sub = (label: string, n: number): Uint8Array => hkdf(sha256, master, new Uint8Array(0), utf8ToBytes(label), n);
  const table = sub('vaultpath/v1/chunker-gear', 1024);
  const gear = Uint32Array.from({ length: 256 }, (_, i) => u32(table, 4 * i));
  return { seal: sub('vaultpath/v1/seal', 32), chunkId: sub('vaultpath/v1/chunk-id', 32), gear };
}

// ---------------------------------------------------------------------------------------------------------------
// §9 chunking

/** The chunk lengths §9's rule cuts `data` into, with gear table `gear` and the config's sizes. */
export function chunkLengths(data: Uint8Array, gear: Uint32Array, sizes: ReaderConfig['chunker']): number[] {
  const { minSize: min, avgSize: avg, maxSize: max } = sizes;
  const b = Math.log2(avg);
  const maskS = (0xffffffff << (32 - (b + 2))) >>> 0;
  const maskL = (0xffffffff << (32 - (b - 2))) >>> 0;
  const out: number[] = [];
  for (let s = 0; s < data.length; ) {
    let length = Math.min(max, data.length - s);
    let h = 0;
    for (let i = min; i < max && s + i < data.length; i++) {
      h = ((h << 1) + gear[data[s + i]!]!) >>> 0;
      if ((i < avg && (h & maskS) === 0) || (i >= avg && (h & maskL) === 0)) {
        length = i + 1;
        break;
      }
    }
    out.push(length);
    s += length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// §5 sealed objects

function openSealed(sealKey: Uint8Array, type: number, codec: number, id: Uint8Array, bare: Uint8Array, what: string): Uint8Array {
  if (bare.length < 48) malformed(`${what} is shorter than the sealed overhead`);
  const salt = bare.subarray(0, 32);
  const key = expand(sha256, sealKey, concatBytes(utf8ToBytes('vaultpath/v1/object-key'), salt), 32);
  const ad = concatBytes(Uint8Array.of(0x01, type, codec, 0x00), salt, id);
  let plain: Uint8Array;
  try {
    plain = gcm(key, new Uint8Array(12), ad).decrypt(bare.subarray(32));
  } catch {
    return fail('VP_AUTH_FAILED', `${what} does not authenticate`);
  }
  // Only after authentication: a codec this reader does not know is refused, never guessed at.
  if (codec !== 0x00) fail('VP_UNKNOWN_CODEC', `${what} uses codec ${codec}`);
  return plain;
}

/** Opens a standalone object (config, index, snapshot, lock) written under `id` (its name's id). */
export function openStandalone(sealKey: Uint8Array, type: number, id: Uint8Array, sealed: Uint8Array, what: string): Uint8Array {
  if (sealed.length < 52) malformed(`${what} is shorter than 52 bytes`);
  if (sealed[0] !== 0x01) fail('VP_UNSUPPORTED_VERSION', `${what} has envelope version ${sealed[0]}, this reader knows 1`);
  if (sealed[1] !== type) malformed(`${what} has object type ${sealed[1]}, expected ${type}`);
  if (sealed[3] !== 0x00) malformed(`${what} has a non-zero reserved byte`);
  return openSealed(sealKey, type, sealed[2]!, id, sealed.subarray(4), what);
}

// ---------------------------------------------------------------------------------------------------------------
// §6 config

export interface ReaderConfig {
  readonly version: 1;
  readonly id: string;
  readonly createdAt: string;
  readonly chunker: { readonly minSize: number; readonly avgSize: number; readonly maxSize: number };
}

export function parseConfig(plain: Uint8Array): ReaderConfig {
  const o = plainObject(parseJson(plain, 'config', 2), 'config');
  if (o['version'] !== 1) fail('VP_UNSUPPORTED_VERSION', `config version ${String(o['version'])}, this reader knows 1`);
  onlyKeys(o, ['version', 'id', 'createdAt', 'chunker'], 'config');
  if (typeof o['id'] !== 'string' || !HEX64.test(o['id'])) malformed('config id');
  if (!isIsoUtc(o['createdAt'])) malformed('config createdAt');
  const c = plainObject(o['chunker'], 'config chunker');
  onlyKeys(c, ['minSize', 'avgSize', 'maxSize'], 'config chunker');
  const { minSize, avgSize, maxSize } = c;
  if (!isU53(minSize) || !isU53(avgSize) || !isU53(maxSize)) return malformed('config chunker sizes');
  const pow2 = (avgSize & (avgSize - 1)) === 0;
  if (!(64 <= minSize && minSize < avgSize && avgSize < maxSize && maxSize <= 64 * 1024 * 1024) || !pow2 || avgSize < 256 || avgSize > 16 * 1024 * 1024) {
    malformed(`config chunker sizes ${minSize}/${avgSize}/${maxSize}`);
  }
  return { version: 1, id: o['id'] as string, createdAt: o['createdAt'] as string, chunker: { minSize, avgSize, maxSize } };
}

// ---------------------------------------------------------------------------------------------------------------
// §7 packs

export interface ReaderPackEntry {
  readonly type: number;
  readonly offset: number;
  readonly sealedLength: number;
  readonly plainLength: number;
  readonly id: string;
}

/** Checks a whole pack without the key (id, trailer, tiling), opens its header; returns its entries. */
export function parsePack(sealKey: Uint8Array, packId: string, pack: Uint8Array): ReaderPackEntry[] {
  if (bytesToHex(sha256(pack)) !== packId) malformed(`pack ${packId} does not hash to its name`);
  if (pack.length < 8 + 48) malformed(`pack ${packId} is too short`);
  const t = pack.subarray(pack.length - 8);
  if (t[4] !== 0x56 || t[5] !== 0x50 || t[6] !== 0x4b) malformed(`pack ${packId} has no trailer`);
  if (t[7] !== 0x01) fail('VP_UNSUPPORTED_VERSION', `pack ${packId} has version ${t[7]}, this reader knows 1`);
  const headerLength = u32(t, 0);
  if (headerLength < 48 + 4 || headerLength > pack.length - 8) malformed(`pack ${packId} header length ${headerLength}`);
  const headerAt = pack.length - 8 - headerLength;
  const header = openSealed(sealKey, T_PACK_HEADER, 0x00, ZERO_ID, pack.subarray(headerAt, headerAt + headerLength), `pack ${packId} header`);
  const n = u32(header, 0);
  if (header.length !== 4 + 44 * n) malformed(`pack ${packId} header holds ${header.length} bytes for ${n} entries`);
  const entries: ReaderPackEntry[] = [];
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const e = header.subarray(4 + 44 * i, 4 + 44 * (i + 1));
    const type = e[0]!;
    if ((type !== T_DATA && type !== T_TREE) || e[1] !== 0 || e[2] !== 0 || e[3] !== 0) malformed(`pack ${packId} entry ${i} type/codec/reserved`);
    const sealedLength = u32(e, 4);
    const plainLength = u32(e, 8);
    if (sealedLength !== plainLength + 48) malformed(`pack ${packId} entry ${i}: sealed ${sealedLength} for plaintext ${plainLength}`);
    entries.push({ type, offset, sealedLength, plainLength, id: bytesToHex(e.subarray(12, 44)) });
    offset += sealedLength;
  }
  if (offset !== headerAt) malformed(`pack ${packId}: entries do not tile the pack`);
  return entries;
}

// ---------------------------------------------------------------------------------------------------------------
// §8 index objects

export interface ReaderIndexEntry {
  readonly id: string;
  readonly pack: string;
  readonly offset: number;
  readonly sealedLength: number;
  readonly plainLength: number;
  readonly type: number;
}

export function parseIndex(plain: Uint8Array, what: string): { entries: ReaderIndexEntry[]; supersedes: string[] } {
  let at = 0;
  const need = (n: number): void => {
    if (n > plain.length - at) malformed(`${what} is truncated`);
  };
  need(4);
  const packCount = u32(plain, at);
  at += 4;
  need(32 * packCount);
  const packs: string[] = [];
  for (let i = 0; i < packCount; i++, at += 32) packs.push(bytesToHex(plain.subarray(at, at + 32)));
  need(4);
  const blobCount = u32(plain, at);
  at += 4;
  need(52 * blobCount);
  const entries: ReaderIndexEntry[] = [];
  for (let i = 0; i < blobCount; i++, at += 52) {
    const e = plain.subarray(at, at + 52);
    const ordinal = u32(e, 32);
    if (ordinal >= packCount) malformed(`${what} entry ${i} names pack ${ordinal} of ${packCount}`);
    const type = e[48]!;
    if ((type !== T_DATA && type !== T_TREE) || e[49] !== 0 || e[50] !== 0 || e[51] !== 0) malformed(`${what} entry ${i} type/codec/reserved`);
    entries.push({
      id: bytesToHex(e.subarray(0, 32)),
      pack: packs[ordinal]!,
      offset: u32(e, 36),
      sealedLength: u32(e, 40),
      plainLength: u32(e, 44),
      type,
    });
  }
  need(4);
  const superseded = u32(plain, at);
  at += 4;
  need(32 * superseded);
  const supersedes: string[] = [];
  for (let i = 0; i < superseded; i++, at += 32) supersedes.push(bytesToHex(plain.subarray(at, at + 32)));
  if (at !== plain.length) malformed(`${what} has trailing bytes`);
  return { entries, supersedes };
}

// ---------------------------------------------------------------------------------------------------------------
// §10 trees and snapshots

export type ReaderNodeType = 'file' | 'dir' | 'symlink';

export interface ReaderNode {
  readonly nameBytes: Uint8Array;
  readonly type: ReaderNodeType;
  readonly mode: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs?: bigint;
  readonly inode?: bigint;
  readonly size?: number;
  readonly content?: readonly string[];
  readonly holes?: readonly (readonly [number, number])[];
  readonly decision?: string;
  readonly subtree?: string;
  readonly linkTarget?: string;
}

export interface ReaderTree {
  readonly nodes: readonly ReaderNode[];
  readonly next?: string;
}

const NODE_FIELDS: Record<ReaderNodeType, readonly string[]> = {
  file: ['name', 'nameRaw', 'type', 'mode', 'mtimeNs', 'ctimeNs', 'inode', 'size', 'content', 'holes', 'decision'],
  dir: ['name', 'nameRaw', 'type', 'mode', 'mtimeNs', 'subtree'],
  symlink: ['name', 'nameRaw', 'type', 'mode', 'mtimeNs', 'linkTarget'],
};

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function nodeName(n: Record<string, unknown>, at: string): Uint8Array {
  const hasName = n['name'] !== undefined;
  const hasRaw = n['nameRaw'] !== undefined;
  if (hasName === hasRaw) malformed(`${at} must have exactly one of name and nameRaw`);
  let bytes: Uint8Array;
  if (hasName) {
    if (typeof n['name'] !== 'string') return malformed(`${at} name is not a string`);
    if (!n['name'].isWellFormed()) malformed(`${at} name has an unpaired surrogate`);
    bytes = utf8ToBytes(n['name']);
  } else {
    if (typeof n['nameRaw'] !== 'string' || !BASE64.test(n['nameRaw'])) return malformed(`${at} nameRaw is not base64`);
    // A writer spells a UTF-8 name as `name`; a reader goes by the bytes either way, so a second spelling of the
    // same bytes is caught as a duplicate by the order check.
    bytes = new Uint8Array(Buffer.from(n['nameRaw'], 'base64'));
  }
  const dot = 0x2e;
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === dot) || (bytes.length === 2 && bytes[0] === dot && bytes[1] === dot)) malformed(`${at} has an empty, . or .. name`);
  // `\` is an ordinary byte of a Linux name (§10): only `/` and NUL could make a name a path.
  if (bytes.includes(0x2f) || bytes.includes(0)) malformed(`${at} name contains / or NUL`);
  return bytes;
}

function decimal(v: unknown, signed: boolean, at: string): bigint {
  if (typeof v !== 'string' || !(signed ? /^(0|-?[1-9][0-9]{0,29})$/ : /^(0|[1-9][0-9]{0,29})$/).test(v)) return malformed(`${at} is not a decimal string`);
  return BigInt(v);
}

function hexId(v: unknown, at: string): string {
  if (typeof v !== 'string' || !HEX64.test(v)) return malformed(`${at} is not a 64-hex id`);
  return v;
}

function parseNode(v: unknown, at: string): ReaderNode {
  const n = plainObject(v, at);
  const type = n['type'];
  if (type !== 'file' && type !== 'dir' && type !== 'symlink') return malformed(`${at} has type ${String(type)}`);
  onlyKeys(n, NODE_FIELDS[type], at);
  const nameBytes = nodeName(n, at);
  const mode = n['mode'];
  if (!isU53(mode) || mode > 0o7777) return malformed(`${at} mode`);
  const mtimeNs = decimal(n['mtimeNs'], true, `${at} mtimeNs`);
  if (type === 'dir') return { nameBytes, type, mode, mtimeNs, subtree: hexId(n['subtree'], `${at} subtree`) };
  if (type === 'symlink') {
    if (typeof n['linkTarget'] !== 'string' || n['linkTarget'] === '') return malformed(`${at} linkTarget`);
    return { nameBytes, type, mode, mtimeNs, linkTarget: n['linkTarget'] };
  }
  const size = n['size'];
  if (!isU53(size)) return malformed(`${at} size`);
  if (!Array.isArray(n['content'])) return malformed(`${at} content`);
  const content = (n['content'] as unknown[]).map((c, i) => hexId(c, `${at} content[${i}]`));
  const holes: [number, number][] = [];
  if (n['holes'] !== undefined) {
    if (!Array.isArray(n['holes'])) return malformed(`${at} holes`);
    let end = 0;
    for (const h of n['holes'] as unknown[]) {
      if (!Array.isArray(h) || h.length !== 2 || !isU53(h[0]) || !isU53(h[1]) || h[1] === 0) return malformed(`${at} holes`);
      if (h[0] < end || h[0] + h[1] > size) malformed(`${at} holes out of order or beyond the size`);
      end = h[0] + h[1];
      holes.push([h[0], h[1]]);
    }
  }
  const out: ReaderNode = {
    nameBytes,
    type,
    mode,
    mtimeNs,
    ...(n['ctimeNs'] !== undefined ? { ctimeNs: decimal(n['ctimeNs'], true, `${at} ctimeNs`) } : {}),
    ...(n['inode'] !== undefined ? { inode: decimal(n['inode'], false, `${at} inode`) } : {}),
    size,
    content,
    ...(n['holes'] !== undefined ? { holes } : {}),
  };
  if (n['decision'] !== undefined) {
    if (typeof n['decision'] !== 'string') malformed(`${at} decision`);
    return { ...out, decision: n['decision'] as string };
  }
  return out;
}

/** Parses a tree blob's plaintext: nesting checked before parsing, then every node, the order and the limits. */
export function parseTree(plain: Uint8Array, what = 'tree'): ReaderTree {
  const o = plainObject(parseJson(plain, what, TREE_JSON_NESTING_LIMIT), what);
  onlyKeys(o, ['nodes', 'next'], what);
  if (!Array.isArray(o['nodes'])) return malformed(`${what} has no nodes array`);
  const raw = o['nodes'] as unknown[];
  if (raw.length > TREE_NODES_LIMIT) fail('VP_FORMAT_LIMIT', `${what} holds ${raw.length} nodes, more than ${TREE_NODES_LIMIT}`);
  const nodes = raw.map((n, i) => parseNode(n, `${what} node ${i}`));
  for (let i = 1; i < nodes.length; i++) {
    if (compareBytes(nodes[i - 1]!.nameBytes, nodes[i]!.nameBytes) >= 0) malformed(`${what}: nodes not strictly sorted by name bytes at ${i}`);
  }
  return o['next'] === undefined ? { nodes } : { nodes, next: hexId(o['next'], `${what} next`) };
}

export interface ReaderSnapshot {
  readonly id: string;
  readonly version: 1;
  readonly time: string;
  readonly hostname: string;
  readonly paths: readonly string[];
  readonly tree: string;
  readonly parent: string | null;
  readonly status: 'complete' | 'warnings';
  readonly warnings: number;
  readonly stats: Readonly<Record<'files' | 'dirs' | 'bytesRead' | 'bytesNew' | 'bytesStored' | 'skipped', number>>;
  readonly program: string;
}

const SNAPSHOT_FIELDS = ['version', 'time', 'hostname', 'paths', 'tree', 'parent', 'status', 'warnings', 'stats', 'program'];
const STATS_FIELDS = ['files', 'dirs', 'bytesRead', 'bytesNew', 'bytesStored', 'skipped'] as const;

export function parseSnapshot(plain: Uint8Array, id: string): ReaderSnapshot {
  const what = `snapshot ${id}`;
  const o = plainObject(parseJson(plain, what, 2), what);
  if (o['version'] !== 1) fail('VP_UNSUPPORTED_VERSION', `${what} version ${String(o['version'])}, this reader knows 1`);
  for (const k of SNAPSHOT_FIELDS) if (!(k in o)) malformed(`${what} lacks "${k}"`);
  onlyKeys(o, SNAPSHOT_FIELDS, what);
  if (!isIsoUtc(o['time'])) malformed(`${what} time`);
  if (typeof o['hostname'] !== 'string') malformed(`${what} hostname`);
  const paths = o['paths'];
  if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string' && p.startsWith('/'))) return malformed(`${what} paths`);
  const parent = o['parent'] === null ? null : hexId(o['parent'], `${what} parent`);
  if (o['status'] !== 'complete' && o['status'] !== 'warnings') malformed(`${what} status`);
  if (!isU53(o['warnings'])) malformed(`${what} warnings`);
  const stats = plainObject(o['stats'], `${what} stats`);
  onlyKeys(stats, STATS_FIELDS, `${what} stats`);
  for (const k of STATS_FIELDS) if (!isU53(stats[k])) malformed(`${what} stats.${k}`);
  if (typeof o['program'] !== 'string') malformed(`${what} program`);
  return {
    id,
    version: 1,
    time: o['time'] as string,
    hostname: o['hostname'] as string,
    paths: paths as string[],
    tree: hexId(o['tree'], `${what} tree`),
    parent,
    status: o['status'] as 'complete' | 'warnings',
    warnings: o['warnings'] as number,
    stats: stats as ReaderSnapshot['stats'],
    program: o['program'] as string,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// §11 locks

export interface ReaderLock {
  readonly id: string;
  readonly time: string;
  readonly hostname: string;
  readonly pid: number;
  readonly exclusive: boolean;
}

export function parseLock(plain: Uint8Array, id: string): ReaderLock {
  const what = `lock ${id}`;
  const o = plainObject(parseJson(plain, what, 1), what);
  if (Object.keys(o).join(',') !== 'time,hostname,pid,exclusive') malformed(`${what} fields are ${Object.keys(o).join(',')}`);
  if (!isIsoUtc(o['time']) || typeof o['hostname'] !== 'string' || !isU53(o['pid']) || o['pid'] < 1 || typeof o['exclusive'] !== 'boolean') malformed(`${what} field types`);
  return { id, time: o['time'] as string, hostname: o['hostname'] as string, pid: o['pid'] as number, exclusive: o['exclusive'] as boolean };
}

// ---------------------------------------------------------------------------------------------------------------
// the vault

export interface ListingEntry {
  /** The path below the snapshot's root tree: node name bytes joined with `/`. */
  readonly path: Uint8Array;
  readonly type: ReaderNodeType;
  readonly mode: number;
  readonly mtimeNs: bigint;
  readonly size?: number;
  /** Files: hex SHA-256 of the whole content, holes read as zeros. */
  readonly sha256?: string;
  readonly holes?: readonly (readonly [number, number])[];
  readonly linkTarget?: string;
}

export class FormatReader {
  private constructor(
    readonly root: string,
    private readonly keys: Subkeys,
    readonly config: ReaderConfig,
    /** blob id → where it is (the union of the live index objects, each entry checked against its pack's header). */
    readonly index: ReadonlyMap<string, ReaderIndexEntry>,
    readonly snapshots: readonly ReaderSnapshot[],
    readonly locks: readonly ReaderLock[],
    /** Names in the folder that match no pattern of §1 (ignored, as §1 says). */
    readonly ignored: readonly string[],
  ) {}

  /** Opens the vault in folder `root` with `passphrase`, reading and checking every object it holds. */
  static async open(root: string, passphrase: string): Promise<FormatReader> {
    const names = await listNames(root);
    const byKind = new Map<ObjectKind, { name: string; id: string }[]>();
    const ignored: string[] = [];
    for (const name of names) {
      const c = classifyName(name);
      if (!c) ignored.push(name);
      else byKind.set(c.kind, [...(byKind.get(c.kind) ?? []), { name, id: c.id }]);
    }
    const read = (name: string): Promise<Uint8Array> => readFile(join(root, ...name.split('/'))).then((b) => new Uint8Array(b));

    // §3: the first slot the passphrase unwraps; a slot this reader cannot use does not stop it trying the others.
    let master: Uint8Array | undefined;
    const slots = byKind.get('keys') ?? [];
    if (slots.length === 0) fail('VP_KEY_SLOT_DAMAGED', 'the vault has no key slot');
    let refused = false;
    let firstError: unknown;
    for (const s of slots) {
      try {
        master = unwrapKeySlot(await read(s.name), hexToBytes(s.id), passphrase);
      } catch (e) {
        firstError ??= e;
        continue;
      }
      if (master) break;
      refused = true;
    }
    if (!master) throw refused || firstError === undefined ? new FormatReaderError('VP_WRONG_PASSPHRASE', 'no key slot opens with this passphrase') : firstError;
    const keys = subkeys(master);

    if (!names.includes('config')) fail('VP_MALFORMED_OBJECT', 'the vault has no config');
    const config = parseConfig(openStandalone(keys.seal, T_CONFIG, ZERO_ID, await read('config'), 'config'));

    // §7: every pack, checked whole, keyed by id.
    const packs = new Map<string, ReaderPackEntry[]>();
    for (const p of byKind.get('data') ?? []) packs.set(p.id, parsePack(keys.seal, p.id, await read(p.name)));

    // §8: the union of the index objects, minus the superseded ones.
    const indexObjects = new Map<string, ReturnType<typeof parseIndex>>();
    for (const x of byKind.get('index') ?? []) {
      indexObjects.set(x.id, parseIndex(openStandalone(keys.seal, T_INDEX, hexToBytes(x.id), await read(x.name), `index ${x.id}`), `index ${x.id}`));
    }
    const superseded = new Set([...indexObjects.values()].flatMap((x) => x.supersedes));
    const index = new Map<string, ReaderIndexEntry>();
    for (const [id, x] of indexObjects) {
      if (superseded.has(id)) continue;
      for (const e of x.entries) {
        const inPack = packs.get(e.pack)?.find((p) => p.offset === e.offset);
        if (!inPack) malformed(`index ${id}: blob ${e.id} is at offset ${e.offset} of pack ${e.pack}, which has no blob there`);
        if (inPack!.id !== e.id || inPack!.type !== e.type || inPack!.sealedLength !== e.sealedLength || inPack!.plainLength !== e.plainLength) {
          malformed(`index ${id}: entry for blob ${e.id} disagrees with the header of pack ${e.pack}`);
        }
        if (!index.has(e.id)) index.set(e.id, e);
      }
    }

    const snapshots: ReaderSnapshot[] = [];
    for (const s of byKind.get('snapshots') ?? []) {
      snapshots.push(parseSnapshot(openStandalone(keys.seal, T_SNAPSHOT, hexToBytes(s.id), await read(s.name), `snapshot ${s.id}`), s.id));
    }
    const locks: ReaderLock[] = [];
    for (const l of byKind.get('locks') ?? []) locks.push(parseLock(openStandalone(keys.seal, T_LOCK, hexToBytes(l.id), await read(l.name), `lock ${l.id}`), l.id));

    return new FormatReader(root, keys, config, index, snapshots, locks, ignored);
  }

  /** A blob's plaintext: located through the index, opened under its id and type, its id recomputed (§9). */
  async readBlob(id: string, type: number): Promise<Uint8Array> {
    const at = this.index.get(id);
    if (!at) return malformed(`blob ${id} is in no index`);
    if (at.type !== type) malformed(`blob ${id} has type ${at.type}, expected ${type}`);
    const pack = await readFile(join(this.root, 'data', at.pack.slice(0, 2), at.pack));
    const plain = openSealed(this.keys.seal, type, 0x00, hexToBytes(id), pack.subarray(at.offset, at.offset + at.sealedLength), `blob ${id}`);
    if (plain.length !== at.plainLength) malformed(`blob ${id} plaintext length`);
    if (bytesToHex(hmac(sha256, this.keys.chunkId, plain)) !== id) malformed(`blob ${id} does not hash to its id`);
    return plain;
  }

  /** A folder's whole listing: the tree `id` and its `next` continuations, which must not repeat a tree. */
  async readListing(id: string): Promise<ReaderNode[]> {
    const seen = new Set<string>();
    const nodes: ReaderNode[] = [];
    for (let at: string | undefined = id; at !== undefined; ) {
      if (seen.has(at)) fail('VP_FORMAT_LIMIT', `tree ${id}: the next chain repeats tree ${at}`);
      seen.add(at);
      const part = parseTree(await this.readBlob(at, T_TREE), `tree ${at}`);
      if (nodes.length > 0 && part.nodes.length > 0 && compareBytes(nodes.at(-1)!.nameBytes, part.nodes[0]!.nameBytes) >= 0) {
        malformed(`tree ${id}: continuation ${at} does not continue the order`);
      }
      nodes.push(...part.nodes);
      at = part.next;
    }
    return nodes;
  }

  /** The SHA-256 of a file's whole content: its chunks fill [0, size) minus the holes, which read as zeros. */
  async hashContent(node: ReaderNode): Promise<string> {
    const h = sha256.create();
    // The data regions, one stream, to check the chunk boundaries against §9 (test-sized files only).
    const stream: Uint8Array[] = [];
    const lengths: number[] = [];
    const holes = node.holes ?? [];
    const zeros = new Uint8Array(1 << 16);
    const feedZeros = (n: number): void => {
      for (let left = n; left > 0; left -= zeros.length) h.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
    };
    let pos = 0; // in the file
    let hole = 0;
    const skipHoles = (): void => {
      while (hole < holes.length && holes[hole]![0] === pos) {
        feedZeros(holes[hole]![1]);
        pos += holes[hole]![1];
        hole++;
      }
    };
    skipHoles();
    for (const c of node.content ?? []) {
      let chunk = await this.readBlob(c, T_DATA);
      stream.push(chunk);
      lengths.push(chunk.length);
      while (chunk.length > 0) {
        const regionEnd = hole < holes.length ? holes[hole]![0] : node.size!;
        const take = Math.min(chunk.length, regionEnd - pos);
        if (take <= 0) malformed(`file content runs past its size or into a hole`);
        h.update(chunk.subarray(0, take));
        chunk = chunk.subarray(take);
        pos += take;
        skipHoles();
      }
    }
    skipHoles();
    if (pos !== node.size) malformed(`file content fills ${pos} bytes of ${node.size}`);
    const want = chunkLengths(concatBytes(...stream), this.keys.gear, this.config.chunker);
    if (want.join() !== lengths.join()) malformed(`file chunks of ${lengths.join(', ')} bytes, where §9 cuts ${want.join(', ')}`);
    return bytesToHex(h.digest());
  }

  /**
   * Every entry of a snapshot, depth first, paths relative to its root tree (so each starts with a source root's
   * node name). Folders deeper than {@link TREE_DEPTH_LIMIT} levels below the root tree are refused.
   */
  async list(snapshot: ReaderSnapshot): Promise<ListingEntry[]> {
    const out: ListingEntry[] = [];
    const walk = async (tree: string, prefix: Uint8Array, depth: number): Promise<void> => {
      if (depth > TREE_DEPTH_LIMIT) fail('VP_FORMAT_LIMIT', `snapshot ${snapshot.id} nests folders deeper than ${TREE_DEPTH_LIMIT} levels`);
      for (const n of await this.readListing(tree)) {
        const path = prefix.length === 0 ? n.nameBytes : concatBytes(prefix, Uint8Array.of(0x2f), n.nameBytes);
        const base = { path, type: n.type, mode: n.mode, mtimeNs: n.mtimeNs };
        if (n.type === 'dir') {
          out.push(base);
          await walk(n.subtree!, path, depth + 1);
        } else if (n.type === 'symlink') out.push({ ...base, linkTarget: n.linkTarget! });
        else out.push({ ...base, size: n.size!, sha256: await this.hashContent(n), ...(n.holes ? { holes: n.holes } : {}) });
      }
    };
    const roots = await this.readListing(snapshot.tree);
    if (roots.length !== snapshot.paths.length || roots.some((r) => r.type !== 'dir')) malformed(`snapshot ${snapshot.id}: root tree must hold one dir node per source root`);
    await walk(snapshot.tree, new Uint8Array(0), 0);
    return out;
  }
}
