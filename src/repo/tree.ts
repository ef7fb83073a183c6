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

/** Encodes a tree (nodes must already be sorted by name). */
export function encodeTree(tree: Tree): Buffer {
  return Buffer.from(JSON.stringify(tree.next ? { nodes: tree.nodes, next: tree.next } : { nodes: tree.nodes }), 'utf8');
}

/**
 * Decodes and checks a tree's shape: types, ids, sizes and times. Names are checked for safety by the restorer.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT`.
 */
export function decodeTree(bytes: Uint8Array, where: string): Tree {
  const bad = (what: string): VaultpathError =>
    new VaultpathError('VP_MALFORMED_OBJECT', `${where} ${what}; the snapshot is damaged or was written by another program.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw bad('is not valid JSON');
  }
  const o = parsed as { nodes?: unknown; next?: unknown };
  if (typeof o !== 'object' || o === null || !Array.isArray(o.nodes)) throw bad('has no "nodes" list');
  if (o.next !== undefined && (typeof o.next !== 'string' || !HEX64.test(o.next))) throw bad('has an invalid "next"');
  for (const [i, raw] of o.nodes.entries()) {
    const n = raw as Record<string, unknown>;
    const at = `node ${i}`;
    if (typeof n !== 'object' || n === null) throw bad(`${at} is not an object`);
    if (n['name'] !== undefined ? typeof n['name'] !== 'string' || n['nameRaw'] !== undefined : typeof n['nameRaw'] !== 'string' || !BASE64.test(n['nameRaw'])) {
      throw bad(`${at} has no name`);
    }
    if (n['type'] !== 'file' && n['type'] !== 'dir' && n['type'] !== 'symlink') throw bad(`${at} has an unknown type`);
    if (!Number.isInteger(n['mode']) || (n['mode'] as number) < 0 || (n['mode'] as number) > 0o7777) throw bad(`${at} has an invalid mode`);
    if (typeof n['mtimeNs'] !== 'string' || !SIGNED_DECIMAL.test(n['mtimeNs'])) throw bad(`${at} has an invalid mtimeNs`);
    if (n['ctimeNs'] !== undefined && (typeof n['ctimeNs'] !== 'string' || !SIGNED_DECIMAL.test(n['ctimeNs']))) throw bad(`${at} has an invalid ctimeNs`);
    if (n['inode'] !== undefined && (typeof n['inode'] !== 'string' || !DECIMAL.test(n['inode']))) throw bad(`${at} has an invalid inode`);
    if (n['type'] === 'file') {
      if (!Number.isSafeInteger(n['size']) || (n['size'] as number) < 0) throw bad(`${at} has an invalid size`);
      if (!Array.isArray(n['content']) || !n['content'].every((id) => typeof id === 'string' && HEX64.test(id))) {
        throw bad(`${at} has an invalid content list`);
      }
      if (n['holes'] !== undefined) {
        if (!Array.isArray(n['holes'])) throw bad(`${at} has invalid holes`);
        let end = 0;
        for (const h of n['holes'] as unknown[]) {
          const [offset, length] = h as [unknown, unknown];
          if (!Array.isArray(h) || h.length !== 2 || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) throw bad(`${at} has invalid holes`);
          if ((offset as number) < end || (length as number) <= 0 || (offset as number) + (length as number) > (n['size'] as number)) {
            throw bad(`${at} has holes out of order or beyond its size`);
          }
          end = (offset as number) + (length as number);
        }
      }
    }
    if (n['type'] === 'dir' && (typeof n['subtree'] !== 'string' || !HEX64.test(n['subtree']))) throw bad(`${at} has no valid subtree`);
    if (n['type'] === 'symlink' && typeof n['linkTarget'] !== 'string') throw bad(`${at} has no link target`);
  }
  return o as Tree;
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
 * non-empty, not `.` or `..`, and free of `/`, `\` and NUL, so it can never lead outside the folder it is in.
 */
export function checkNodeName(name: string | Uint8Array): string | undefined {
  const text = typeof name === 'string' ? name : Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
  if (text === '') return 'an empty name';
  if (text === '.' || text === '..') return `the name "${text}"`;
  if (text.includes('/') || text.includes('\\')) return 'a path separator in the name';
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
 * The JSON object in `bytes` (UTF-8), for the decoders of the vault's JSON objects to check field by field.
 * @throws what `bad` makes of "is not valid JSON" or "is not a JSON object" (an array, a string, null, …).
 */
export function decodeJsonObject(bytes: Uint8Array, bad: (what: string) => Error): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw bad('is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('is not a JSON object');
  return parsed as Record<string, unknown>;
}

/** @throws {VaultpathError} `VP_MALFORMED_OBJECT`, `VP_UNSUPPORTED_VERSION`. */
export function decodeSnapshot(bytes: Uint8Array, where: string): Snapshot {
  const bad = (what: string): VaultpathError => new VaultpathError('VP_MALFORMED_OBJECT', `${where} ${what}.`);
  const s = decodeJsonObject(bytes, bad);
  if (s['version'] !== 1) {
    throw new VaultpathError('VP_UNSUPPORTED_VERSION', `${where} has version ${String(s['version'])}; this vaultpath reads version 1. Upgrade vaultpath.`);
  }
  if (typeof s['tree'] !== 'string' || !HEX64.test(s['tree'])) throw bad('has no valid tree id');
  if (typeof s['time'] !== 'string' || Number.isNaN(Date.parse(s['time']))) throw bad('has no valid time');
  if (!Array.isArray(s['paths'])) throw bad('has no paths');
  if (s['parent'] !== null && (typeof s['parent'] !== 'string' || !HEX64.test(s['parent']))) throw bad('has an invalid parent');
  return s as unknown as Snapshot;
}
