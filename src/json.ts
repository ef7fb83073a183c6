/**
 * Bounded JSON decoding, for every JSON document vaultpath reads from a vault or a local file.
 *
 * Such documents come from whoever could write the vault or the file, so a document is measured before it is
 * parsed: its size against the limit its kind states, then its nesting with a byte scan that counts brackets
 * outside strings and stops at the first one past the limit. Only a document within both is handed to
 * `JSON.parse`, so no input makes a reader walk, copy or recurse into a structure deeper than its format holds
 * (a tree is at most 5 levels: the tree, its nodes, a node, its holes, a hole), whatever the reader does next.
 *
 * The helpers here only say what is wrong; the caller turns that into its own error (`VP_FORMAT_LIMIT` for a vault
 * object over a limit, `VP_MALFORMED_OBJECT`, `VP_SETTINGS`, `VP_CREDENTIALS_INVALID`), so each reader keeps the
 * error code its callers act on. Field checks that every decoder needs (a string of bounded length, a safe
 * integer in a range) are here too, so they read alike everywhere.
 *
 * Local files (a credentials file, the agent's settings) are read through {@link readBoundedFile}: one descriptor,
 * a regular file only, at most the limit plus one byte, so a path to a FIFO, a device or a huge file costs nothing.
 *
 * @module
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { throwIfAborted } from './errors.js';

/** What a bounded parse refused: `limit` when the document breaks a stated limit, else `malformed`. */
export type JsonProblem = 'limit' | 'malformed';

/** Makes the caller's error for a document that `what` (e.g. "is not valid JSON"). */
export type JsonFailure = (what: string, problem: JsonProblem) => Error;

export interface JsonBounds {
  /** Brackets (`[` or `{`) open at once, at most; the top-level object counts as 1. */
  readonly maxDepth: number;
  /** Bytes of the document, at most. @default unbounded */
  readonly maxBytes?: number;
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when `bytes` (JSON text, UTF-8) opens more than `maxDepth` brackets at once, outside strings. One pass, no
 * allocation; it stops at the first bracket past the limit. Malformed text is left for the parser to refuse: the
 * scan only has to be right for text that parses, and never slow or deep for any text.
 */
export function jsonTooDeep(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/**
 * Parses `bytes` as JSON within `bounds`.
 * @throws what `fail` makes of a document over a bound (`limit`) or not valid JSON (`malformed`).
 */
export function parseBoundedJson(bytes: Uint8Array, bounds: JsonBounds, fail: JsonFailure): unknown {
  if (bounds.maxBytes !== undefined && bytes.length > bounds.maxBytes) {
    throw fail(`is ${bytes.length} bytes, more than the ${bounds.maxBytes} its format allows`, 'limit');
  }
  if (jsonTooDeep(bytes, bounds.maxDepth)) throw fail(`nests deeper than the ${bounds.maxDepth} levels its format allows`, 'limit');
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw fail('is not valid JSON', 'malformed');
  }
}

/**
 * Parses `bytes` as a JSON object (not an array, a string, a number or null) within `bounds`.
 * @throws what `fail` makes of it, as {@link parseBoundedJson}, or `malformed` "is not a JSON object".
 */
export function parseBoundedJsonObject(bytes: Uint8Array, bounds: JsonBounds, fail: JsonFailure): Record<string, unknown> {
  const parsed = parseBoundedJson(bytes, bounds, fail);
  if (!isJsonObject(parsed)) throw fail('is not a JSON object', 'malformed');
  return parsed;
}

/** True for a JSON object (not null, not an array). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True for a string of at most `maxLength` UTF-16 units (and at least `minLength`). */
export function isBoundedString(v: unknown, maxLength: number, minLength = 0): v is string {
  return typeof v === 'string' && v.length >= minLength && v.length <= maxLength;
}

/** True for a safe integer within [min, max]. */
export function isIntegerIn(v: unknown, min: number, max: number): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}

/** True for a string `Date.parse` reads, of a sane length (an ISO 8601 time is 24 characters). */
export function isTimeString(v: unknown): v is string {
  return isBoundedString(v, 64, 1) && !Number.isNaN(Date.parse(v));
}

/** Why {@link readBoundedFile} returned no bytes. */
export type BoundedFileProblem = 'unreadable' | 'not-a-file' | 'too-large';

/**
 * The bytes of the regular file at `path`, read through one descriptor, at most `maxBytes`; or why not: it cannot
 * be opened or read (`unreadable`, with the Node error), it is not a regular file (a folder, a FIFO, a device:
 * opened without blocking and never read), or it holds more than `maxBytes` (only `maxBytes` + 1 are ever read).
 */
export async function readBoundedFile(
  path: string,
  maxBytes: number,
  options: { signal?: AbortSignal } = {},
): Promise<{ bytes: Buffer } | { problem: BoundedFileProblem; cause?: unknown }> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (cause) {
    return { problem: 'unreadable', cause };
  }
  try {
    if (!(await handle.stat()).isFile()) return { problem: 'not-a-file' };
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buf.length) {
      throwIfAborted(options.signal);
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) return { problem: 'too-large' };
    return { bytes: buf.subarray(0, length) };
  } catch (cause) {
    if (options.signal?.aborted) throw cause;
    return { problem: 'unreadable', cause };
  } finally {
    await handle.close().catch(() => undefined);
  }
}
