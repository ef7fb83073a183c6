/**
 * Locks: the JSON documents of FORMAT.md §11, and when a lock counts as abandoned.
 *
 * A backup takes a shared lock for its run: written before its first pack, removed once its snapshot is written.
 * A lock left behind therefore marks a run that may have stored packs no index lists, and only then does the next
 * backup list the vault's packs to adopt them (a listing that grows with the vault: one request per 5,000 packs on
 * Azure). Locks never guard data: a lock removed too early, or never written, costs at most a pack listing skipped
 * and the orphaned packs' blobs uploaded again, never a byte of a snapshot.
 *
 * @module
 */
import { VaultpathError } from '../errors.js';
import { isBoundedString, isIntegerIn, isTimeString } from '../json.js';
import { decodeJsonObject } from './tree.js';
import { isRunning } from '../processes.js';

export interface Lock {
  /** When the run started, ISO 8601 UTC. */
  readonly time: string;
  readonly hostname: string;
  readonly pid: number;
  /** Shared (backups) or exclusive (reserved for an operation that deletes; none in this version). */
  readonly exclusive: boolean;
}

/** A shared lock older than this is abandoned wherever it was taken (24 hours). */
export const LOCK_ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;

export function encodeLock(lock: Lock): Buffer {
  return Buffer.from(JSON.stringify({ time: lock.time, hostname: lock.hostname, pid: lock.pid, exclusive: lock.exclusive }), 'utf8');
}

/** Bytes of a lock's JSON, at most: four short fields. */
export const MAX_LOCK_BYTES = 64 * 1024;
/**
 * The largest pid a lock may name: process ids are positive 32-bit integers (Linux stops at 2^22), and a probe of
 * anything larger would fail as if the process were gone, making a live run's lock look abandoned.
 */
export const MAX_LOCK_PID = 0x7fff_ffff;

/**
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` when a field is missing or of the wrong kind or range;
 *   `VP_FORMAT_LIMIT` for a lock over {@link MAX_LOCK_BYTES} or with nested JSON.
 */
export function decodeLock(bytes: Uint8Array, where: string): Lock {
  const bad = (what: string): VaultpathError => new VaultpathError('VP_MALFORMED_OBJECT', `${where} ${what}.`);
  const limit = (what: string): VaultpathError => new VaultpathError('VP_FORMAT_LIMIT', `${where} ${what}.`);
  const s = decodeJsonObject(bytes, bad, { maxDepth: 1, maxBytes: MAX_LOCK_BYTES }, limit);
  if (!isTimeString(s['time'])) throw bad('has no valid time');
  if (!isBoundedString(s['hostname'], 1024)) throw bad('has no hostname');
  if (!isIntegerIn(s['pid'], 1, MAX_LOCK_PID)) throw bad('has no valid pid');
  if (typeof s['exclusive'] !== 'boolean') throw bad('does not say whether it is exclusive');
  return { time: s['time'], hostname: s['hostname'], pid: s['pid'] as number, exclusive: s['exclusive'] };
}

export interface AbandonedOptions {
  /** Now, in ms since the epoch. */
  readonly now: number;
  /** This machine's name. */
  readonly hostname: string;
  /** True when process `pid` of this machine is running. @default a signal-0 probe */
  readonly isRunning?: (pid: number) => boolean;
}

/**
 * True when a backup may remove `lock`: a shared lock taken on this machine by a process that is no longer running,
 * or taken anywhere more than {@link LOCK_ABANDONED_AFTER_MS} ago. An exclusive lock is never abandoned here.
 */
export function isAbandoned(lock: Lock, options: AbandonedOptions): boolean {
  if (lock.exclusive) return false;
  if (options.now - Date.parse(lock.time) > LOCK_ABANDONED_AFTER_MS) return true;
  return lock.hostname === options.hostname && !(options.isRunning ?? isRunning)(lock.pid);
}

