/**
 * Trees and snapshots: the JSON documents of FORMAT.md §10.
 *
 * A tree lists one folder: its nodes sorted by name, each a file (with its chunk ids), a folder (with the id of
 * its own tree) or a symbolic link. Large folders continue in further trees through `next`, so no tree blob grows
 * beyond {@link MAX_TREE_NODES} nodes. Decoding checks the shape of every field before anything uses it; whether a
 * name is safe to create on disk is checked by the restorer, per node, with {@link checkNodeName}.
 *
 * @module
 */
import { VaultpathError } from '../errors.js';
import { type JsonBounds, isBoundedString, isIntegerIn, isJsonObject, isTimeString, parseBoundedJsonObject } from '../json.js';

/** Nodes per tree blob; a longer listing continues through `next`. Readers refuse a tree blob with more. */
export const MAX_TREE_NODES = 10_000;

/**
 * Folders nested below a snapshot's root tree, at most: readers walking trees (restore, verify, a backup's parent)
 * refuse deeper nesting with `VP_FORMAT_LIMIT` instead of following it, so a hostile chain of trees costs bounded
 * time and memory. Linux paths stop at 4096 bytes, about 2,048 levels of one-letter names; 1,024 is ample.
 */
export const MAX_TREE_DEPTH = 1024;

export type NodeType = 'file' | 'dir' | 'symlink';

export interface TreeNode {
  /** The name, when it is valid UTF-8. Exactly one of `name` and `nameRaw` is set. */
  readonly name?: string;
  /** Base64 of the name's bytes, when they are not valid UTF-8 (FORMAT.md §10). */
  readonly nameRaw?: string;
  readonly type: NodeType;
  /** Permission bits (`mode & 0o7777`). */
  readonly mode: number;
  /** Modification time, ns since the epoch, decimal; negative before 1970. */
  readonly mtimeNs: string;
  /** Change time and inode as seen at backup, decimal: with size and mtime they decide "unchanged". */
  readonly ctimeNs?: string;
  readonly inode?: string;
  /** Files: length in bytes. */
  readonly size?: number;
  /** Files: data chunk ids, hex, in order. The bytes of all data regions, holes left out. */
  readonly content?: readonly string[];
  /** Files: sparse holes as [offset, length], in order; never stored as data. */
  readonly holes?: readonly (readonly [number, number])[];
  /** Files: the support-rule decision that applied (`backup`, `backup-full`, `backup-sparse`). */
  readonly decision?: string;
  /** Folders: tree id, hex. */
  readonly subtree?: string;
  /** Symbolic links: the target, as is. */
  readonly linkTarget?: string;
}

export interface Tree {
  readonly nodes: readonly TreeNode[];
  /** The tree that continues this listing, hex. */
  readonly next?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const DECIMAL = /^\d{1,30}$/;
/** A time in nanoseconds since the epoch: negative before 1970. */
const SIGNED_DECIMAL = /^-?\d{1,30}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Brackets open at once in a tree's JSON, at most: the tree, its `nodes`, a node, its `holes` (or `content`), one
 * hole. Deeper text is refused before it is parsed.
 */
export const TREE_JSON_DEPTH = 5;
/** Brackets open at once in a snapshot's JSON, at most: the snapshot, its `paths` or `stats`. */
export const SNAPSHOT_JSON_DEPTH = 2;
/**
 * Bytes of a name, at most. Names read from a folder stop at 255 bytes (NAME_MAX), but a root node's name gets a
 * `-2`, `-3`, … suffix when two roots end alike, so the bound is a path's (PATH_MAX less its NUL), not a name's.
 */
export const MAX_NAME_BYTES = 4095;
/** Bytes of a symbolic link's target, at most (Linux PATH_MAX less its NUL). */
export const MAX_LINK_TARGET_BYTES = 4095;
/** Bytes of one source root in a snapshot's `paths`, at most (Linux PATH_MAX less its NUL). */
export const MAX_PATH_BYTES = 4095;
/** The support-rule decisions a file node may name. */
const DECISIONS: ReadonlySet<unknown> = new Set(['backup', 'backup-full', 'backup-sparse']);
/** Bytes one data chunk holds, at most, under any vault's chunker (CHUNKER_LIMITS.maxSize). */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/** Encodes a tree (nodes must already be sorted by name). */
export function encodeTree(tree: Tree): Buffer {
  return Buffer.from(JSON.stringify(tree.next ? { nodes: tree.nodes, next: tree.next } : { nodes: tree.nodes }), 'utf8');
}

/**
 * Decodes and checks a tree: its nesting before it is parsed, then every field of every node (types, ids, sizes
 * against holes and content, times, name bytes, link targets) before anything uses it. Whether a name is safe to
 * create on disk is checked by the restorer, per node, with {@link checkNodeName}; a name must still be one name
 * (`name` or `nameRaw`, not both), and appear once in the blob.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT`; `VP_FORMAT_LIMIT` for more than {@link MAX_TREE_NODES} nodes or
 *   JSON nested deeper than {@link TREE_JSON_DEPTH}.
 */
export function decodeTree(bytes: Uint8Array, where: string): Tree {
  const bad = (what: string): VaultpathError =>
    new VaultpathError('VP_MALFORMED_OBJECT', `${where} ${what}; the snapshot is damaged or was written by another program.`);
  const limit = (what: string): VaultpathError =>
    new VaultpathError('VP_FORMAT_LIMIT', `${where} ${what}; the snapshot is damaged or was written by another program.`);
  const o = parseBoundedJsonObject(bytes, { maxDepth: TREE_JSON_DEPTH }, (what, problem) => (problem === 'limit' ? limit(what) : bad(what)));
  const nodes = o['nodes'];
  if (!Array.isArray(nodes)) throw bad('has no "nodes" list');
  if (nodes.length > MAX_TREE_NODES) throw limit(`lists ${nodes.length} nodes, more than the ${MAX_TREE_NODES} a tree blob may hold`);
  if (o['next'] !== undefined && !isHex64(o['next'])) throw bad('has an invalid "next"');
  const seen = new Set<string>();
  for (let i = 0; i < nodes.length; i++) {
    const n: unknown = nodes[i];
    const at = `node ${i}`;
    if (!isJsonObject(n)) throw bad(`${at} is not an object`);
    const nameBytes = checkedNameBytes(n, (what) => bad(`${at} ${what}`));
    const key = nameBytes.toString('latin1');
    if (seen.has(key)) throw bad(`${at} repeats the name of an earlier node`);
    seen.add(key);
    const type = n['type'];
    if (type !== 'file' && type !== 'dir' && type !== 'symlink') throw bad(`${at} has an unknown type`);
    if (!isIntegerIn(n['mode'], 0, 0o7777)) throw bad(`${at} has an invalid mode`);
    if (!isSignedDecimal(n['mtimeNs'])) throw bad(`${at} has an invalid mtimeNs`);
    if (n['ctimeNs'] !== undefined && !isSignedDecimal(n['ctimeNs'])) throw bad(`${at} has an invalid ctimeNs`);
    if (n['inode'] !== undefined && (typeof n['inode'] !== 'string' || !DECIMAL.test(n['inode']))) throw bad(`${at} has an invalid inode`);
    if (type === 'file') checkFileNode(n, (what) => bad(`${at} ${what}`));
    else if (n['size'] !== undefined || n['content'] !== undefined || n['holes'] !== undefined || n['decision'] !== undefined) {
      throw bad(`${at} is a ${type} with the fields of a file`);
    }
    if ((type === 'dir') !== (n['subtree'] !== undefined)) throw bad(type === 'dir' ? `${at} has no subtree` : `${at} is a ${type} with a subtree`);
    if (type === 'dir' && !isHex64(n['subtree'])) throw bad(`${at} has no valid subtree`);
    if ((type === 'symlink') !== (n['linkTarget'] !== undefined)) throw bad(type === 'symlink' ? `${at} has no link target` : `${at} is a ${type} with a link target`);
    if (type === 'symlink') {
      const target = n['linkTarget'];
      if (typeof target !== 'string' || target === '' || target.includes('\0') || Buffer.byteLength(target, 'utf8') > MAX_LINK_TARGET_BYTES) {
        throw bad(`${at} has an invalid link target (empty, over ${MAX_LINK_TARGET_BYTES} bytes, or with a NUL)`);
      }
    }
  }
  return o as unknown as Tree;
}

/** The name bytes of a node: exactly one of `name` (a string) and `nameRaw` (canonical base64 of 1 or more bytes). */
function checkedNameBytes(n: Record<string, unknown>, bad: (what: string) => VaultpathError): Buffer {
  const name = n['name'];
  const raw = n['nameRaw'];
  let bytes: Buffer;
  if (name !== undefined) {
    if (typeof name !== 'string' || raw !== undefined) throw bad('has no valid name (a "name" string, or "nameRaw" instead)');
    // A long string is refused by its length before it is encoded: UTF-8 takes at least a byte per UTF-16 unit.
    if (name.length > MAX_NAME_BYTES || Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) throw bad(`has a name over ${MAX_NAME_BYTES} bytes`);
    bytes = Buffer.from(name, 'utf8');
  } else {
    if (typeof raw !== 'string' || raw === '' || raw.length > 4 * Math.ceil(MAX_NAME_BYTES / 3) + 4 || !BASE64.test(raw)) {
      throw bad('has no valid name (a "name" string, or "nameRaw" instead)');
    }
    bytes = Buffer.from(raw, 'base64');
    // Base64 decoding skips what it cannot read; only text that encodes back to itself names exactly these bytes.
    if (bytes.length === 0 || bytes.toString('base64') !== raw) throw bad('has a "nameRaw" that is not canonical base64 of a name');
    if (bytes.length > MAX_NAME_BYTES) throw bad(`has a name over ${MAX_NAME_BYTES} bytes`);
  }
  return bytes;
}

/** Checks a file node's size, content, holes and decision against each other. */
function checkFileNode(n: Record<string, unknown>, bad: (what: string) => VaultpathError): void {
  const size = n['size'];
  if (!isIntegerIn(size, 0, Number.MAX_SAFE_INTEGER)) throw bad('has an invalid size');
  const content = n['content'];
  if (!Array.isArray(content)) throw bad('has an invalid content list');
  for (const id of content) if (!isHex64(id)) throw bad('has an invalid content list');
  let holeBytes = 0;
  const holes = n['holes'];
  if (holes !== undefined) {
    if (!Array.isArray(holes)) throw bad('has invalid holes');
    let end = 0;
    for (const h of holes) {
      if (!Array.isArray(h) || h.length !== 2) throw bad('has invalid holes');
      const [offset, length] = h as unknown[];
      if (!isIntegerIn(offset, 0, size) || !isIntegerIn(length, 1, size)) throw bad('has invalid holes');
      if (offset < end || offset + length > size) throw bad('has holes out of order or beyond its size');
      end = offset + length;
      holeBytes += length;
    }
  }
  const dataBytes = size - holeBytes;
  // Every chunk holds at least one byte and at most the largest chunk any vault may use.
  if (content.length > dataBytes || content.length * MAX_CHUNK_BYTES < dataBytes) {
    throw bad(`lists ${content.length} chunks for ${dataBytes} bytes of data`);
  }
  if (n['decision'] !== undefined && !DECISIONS.has(n['decision'])) throw bad('has an unknown decision');
}

function isHex64(v: unknown): v is string {
  return typeof v === 'string' && HEX64.test(v);
}

function isSignedDecimal(v: unknown): v is string {
  return typeof v === 'string' && SIGNED_DECIMAL.test(v);
}

/** The bytes of a node's name: its `name` as UTF-8, or its `nameRaw` decoded. */
export function nodeNameBytes(node: TreeNode): Buffer {
  return node.name !== undefined ? Buffer.from(node.name, 'utf8') : Buffer.from(node.nameRaw ?? '', 'base64');
}

/**
 * A string that names a node's name bytes one-to-one, for maps keyed by name: the name itself, or for a name that
 * is not UTF-8, NUL and its base64 (a NUL never stands in a valid name, so the two kinds never collide).
 */
export function nodeNameKey(node: TreeNode): string {
  return node.name ?? `\0${node.nameRaw ?? ''}`;
}

/** A node's name for messages and paths shown to people: bytes that are not UTF-8 shown as U+FFFD. */
export function nodeDisplayName(node: TreeNode): string {
  return node.name ?? nodeNameBytes(node).toString('utf8');
}

/** Orders nodes by the bytes of their names, as FORMAT.md §10 sorts them. */
export function compareNodes(a: TreeNode, b: TreeNode): number {
  if (a.name !== undefined && b.name !== undefined && isAscii(a.name) && isAscii(b.name)) return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  return Buffer.compare(nodeNameBytes(a), nodeNameBytes(b));
}

function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s);
}

/** `ns` nanoseconds since the epoch as whole seconds (floor) and 0 ≤ nanoseconds < 10^9: right before 1970 too. */
export function splitTimeNs(ns: bigint): { seconds: bigint; nanoseconds: number } {
  let seconds = ns / 1_000_000_000n;
  let rest = ns % 1_000_000_000n;
  if (rest < 0n) {
    rest += 1_000_000_000n;
    seconds -= 1n;
  }
  return { seconds, nanoseconds: Number(rest) };
}

/**
 * Why a node's name cannot be created safely inside a target folder, or `undefined` when it can: a name must be
 * non-empty, not `.` or `..`, and free of `/` and NUL, so it can never lead outside the folder it is in. A `\` is an
 * ordinary byte of a name on Linux (FORMAT.md §10): refusing it would lose such files at restore.
 */
export function checkNodeName(name: string | Uint8Array): string | undefined {
  const text = typeof name === 'string' ? name : Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
  if (text === '') return 'an empty name';
  if (text === '.' || text === '..') return `the name "${text}"`;
  if (text.includes('/')) return 'a path separator in the name';
  if (text.includes('\0')) return 'a NUL character in the name';
  return undefined;
}

/** A snapshot document (FORMAT.md §10). */
export interface Snapshot {
  readonly version: 1;
  /** When the backup started, ISO 8601 UTC. */
  readonly time: string;
  readonly hostname: string;
  /** The source roots, absolute. */
  readonly paths: readonly string[];
  /** Root tree id, hex: one folder node per source root. */
  readonly tree: string;
  /** The snapshot this one was incremental to, hex, or null. */
  readonly parent: string | null;
  /** `complete`, or `warnings` when some files could not be backed up (listed in the backup's report). */
  readonly status: 'complete' | 'warnings';
  readonly warnings: number;
  readonly stats: {
    readonly files: number;
    readonly dirs: number;
    readonly bytesRead: number;
    readonly bytesNew: number;
    readonly bytesStored: number;
    readonly skipped: number;
  };
  readonly program: string;
}

export function encodeSnapshot(s: Snapshot): Buffer {
  return Buffer.from(JSON.stringify(s), 'utf8');
}

/**
 * The JSON object in `bytes` (UTF-8), for the decoders of the vault's JSON objects to check field by field. Its
 * nesting is measured before it is parsed (see json.ts): deeper than `bounds.maxDepth` (2 by default: an object
 * and the lists or objects in it) is refused, as is more than `bounds.maxBytes`.
 * @throws what `bad` makes of "is not valid JSON" or "is not a JSON object" (an array, a string, null, …), and
 *   what `limit` (by default `bad`) makes of a document over a bound.
 */
export function decodeJsonObject(
  bytes: Uint8Array,
  bad: (what: string) => Error,
  bounds: JsonBounds = { maxDepth: 2 },
  limit: (what: string) => Error = bad,
): Record<string, unknown> {
  return parseBoundedJsonObject(bytes, bounds, (what, problem) => (problem === 'limit' ? limit(what) : bad(what)));
}

/**
 * Decodes and checks a snapshot: every field's type and range, before anything uses it.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT`, `VP_UNSUPPORTED_VERSION`, `VP_FORMAT_LIMIT` (JSON nested deeper
 *   than {@link SNAPSHOT_JSON_DEPTH}).
 */
export function decodeSnapshot(bytes: Uint8Array, where: string): Snapshot {
  const bad = (what: string): VaultpathError => new VaultpathError('VP_MALFORMED_OBJECT', `${where} ${what}.`);
  const limit = (what: string): VaultpathError => new VaultpathError('VP_FORMAT_LIMIT', `${where} ${what}.`);
  const s = decodeJsonObject(bytes, bad, { maxDepth: SNAPSHOT_JSON_DEPTH }, limit);
  if (typeof s['version'] !== 'number') throw bad('has no valid version');
  if (s['version'] !== 1) {
    throw new VaultpathError('VP_UNSUPPORTED_VERSION', `${where} has version ${s['version']}; this vaultpath reads version 1. Upgrade vaultpath.`);
  }
  if (!isHex64(s['tree'])) throw bad('has no valid tree id');
  if (!isTimeString(s['time'])) throw bad('has no valid time');
  if (!isBoundedString(s['hostname'], 1024)) throw bad('has no valid hostname');
  const paths = s['paths'];
  if (!Array.isArray(paths)) throw bad('has no paths');
  for (const p of paths) {
    if (!isBoundedString(p, MAX_PATH_BYTES, 1) || Buffer.byteLength(p, 'utf8') > MAX_PATH_BYTES) throw bad('has a path that is not a string of 1 to 4095 bytes');
  }
  if (s['parent'] !== null && !isHex64(s['parent'])) throw bad('has an invalid parent');
  if (s['status'] !== 'complete' && s['status'] !== 'warnings') throw bad('has no valid status');
  if (!isIntegerIn(s['warnings'], 0, Number.MAX_SAFE_INTEGER)) throw bad('has no valid warnings count');
  const stats = s['stats'];
  if (!isJsonObject(stats)) throw bad('has no stats');
  for (const k of ['files', 'dirs', 'bytesRead', 'bytesNew', 'bytesStored', 'skipped']) {
    if (!isIntegerIn(stats[k], 0, Number.MAX_SAFE_INTEGER)) throw bad(`has no valid stats.${k}`);
  }
  if (!isBoundedString(s['program'], 1024)) throw bad('has no valid program');
  return s as unknown as Snapshot;
}
