/**
 * Per-user working folders: where reports, the scratch cache and the recovery folder live when no path is given.
 *
 * vaultpath often runs as root beside other users, so a default working folder is never one shared by every user
 * (a `/tmp/vaultpath` that whoever ran vaultpath first would own, and could fill with links). Each user gets their
 * own: `$XDG_CACHE_HOME/vaultpath/<kind>`, else `~/.cache/vaultpath/<kind>` (when the home folder is this user's),
 * else `<tmpdir>/vaultpath-<uid>/<kind>`, where `<tmpdir>` is the first of `TMPDIR`, `TMP`, `TEMP` that is set, else
 * `/tmp`. A variable that is empty or holds a relative path is passed over (the XDG base-directory rules say so for
 * `XDG_CACHE_HOME`, and the same holds for the others): a relative folder would be resolved against whatever the
 * current folder happens to be, so reports, scratch and recovery would land in a different place on every run.
 *
 * {@link ensureUserFolder} creates the folder owner-only (0700, whatever the umask) and refuses, with
 * `VP_UNSAFE_FOLDER`, one that:
 * - is a symbolic link, or not a folder;
 * - is not owned by this user, or is open to group or others;
 * - lies below a folder that another user could change: every folder above it (links resolved) must belong to this
 *   user or to root, and be writable by nobody else unless it is sticky (as `/tmp` is). Otherwise the other user
 *   could rename the working folder away and put a link in its place after the check.
 * It writes nothing into a folder it refuses.
 *
 * Clean-up: the reports in the reports folder are pruned when a new one is made there, keeping the newest
 * {@link KEEP_REPORTS} of each kind (scan/report.ts); scratch runs are removed when their process is gone
 * (stage/scratch-cache.ts).
 *
 * @module
 */
import { chmodSync, lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { VaultpathError } from '../errors.js';

/** The kinds of working folder vaultpath keeps per user. */
export type UserFolderKind = 'reports' | 'scratch' | 'recovery';

/** Reports of each kind kept in the reports folder: older ones are removed when a new one is made. */
export const KEEP_REPORTS = 20;

/** Where this user's working folder of `kind` is, by default; nothing is created. Always an absolute path. */
export function userFolder(kind: UserFolderKind, env: NodeJS.ProcessEnv = process.env): string {
  const cache = absolute(env['XDG_CACHE_HOME']);
  if (cache) return join(cache, 'vaultpath', kind);
  const home = absolute(env['HOME']) ?? absolute(safeHomedir());
  // A home that is not this user's (`sudo -u` keeping HOME) is not a place for this user's files.
  if (home && home !== '/' && ownedByMe(home)) return join(home, '.cache', 'vaultpath', kind);
  return join(tempFolder(env), `vaultpath-${process.getuid?.() ?? 'user'}`, kind);
}

/**
 * The temporary folder as `os.tmpdir()` finds it (`TMPDIR`, `TMP`, `TEMP`, else `/tmp`), read from `env` and passing
 * over empty and relative values, which `os.tmpdir()` returns as they are.
 */
function tempFolder(env: NodeJS.ProcessEnv): string {
  return absolute(env['TMPDIR']) ?? absolute(env['TMP']) ?? absolute(env['TEMP']) ?? '/tmp';
}

/** `path` when it is absolute, else undefined (unset, empty, or relative to a current folder that may be anything). */
function absolute(path: string | undefined): string | undefined {
  return path !== undefined && isAbsolute(path) ? path : undefined;
}

function ownedByMe(path: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  try {
    return statSync(path).uid === uid;
  } catch {
    return true; // a home not there yet is made by ensureUserFolder, which checks it
  }
}

function safeHomedir(): string | undefined {
  try {
    return homedir();
  } catch {
    return undefined;
  }
}

function unsafe(path: string, why: string): VaultpathError {
  return new VaultpathError('VP_UNSAFE_FOLDER', `The working folder ${path} ${why}; vaultpath writes nothing into it. Remove it, or give another folder.`);
}

/**
 * Creates `path` and the folders above it that are missing, each 0700, and checks that `path` is a real folder owned
 * by this user with no access for group or others, below folders no other user can change.
 * @throws {VaultpathError} `VP_UNSAFE_FOLDER` when it is a link, a file, another user's, or open to others, or lies
 *   below a folder another user can change.
 */
export function ensureUserFolder(path: string): string {
  const uid = process.getuid?.();
  const missing: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      lstatSync(p);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.unshift(p);
      if (dirname(p) === p) break;
    }
  }
  // The folders above must be checked before anything is created in them.
  checkAncestors(path, missing.length > 0 ? dirname(missing[0]!) : dirname(path), uid);
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o700 });
      chmodSync(p, 0o700); // the umask may have taken bits from the owner too
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const st = lstatSync(path);
  const why = !st.isDirectory()
    ? st.isSymbolicLink() ? 'is a symbolic link' : 'is not a folder'
    : uid !== undefined && st.uid !== uid ? `belongs to user ${st.uid}, not ${uid}`
    : (st.mode & 0o077) !== 0 ? `is open to other users (mode ${(st.mode & 0o777).toString(8)})`
    : undefined;
  if (why) throw unsafe(path, why);
  return path;
}

/** Refuses `path` when `existing` (the nearest folder above it that exists) or one above it can be changed by another user. */
function checkAncestors(path: string, existing: string, uid: number | undefined): void {
  if (uid === undefined) return; // no owners to compare on this platform
  let real: string;
  try {
    real = realpathSync(existing);
  } catch (e) {
    throw unsafe(path, `cannot be checked (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  for (let p = real; ; p = dirname(p)) {
    const st = statSync(p);
    if (st.uid !== uid && st.uid !== 0) throw unsafe(path, `lies in ${p}, which belongs to user ${st.uid}`);
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
      throw unsafe(path, `lies in ${p}, which other users can write to (mode ${(st.mode & 0o7777).toString(8)})`);
    }
    if (dirname(p) === p) break;
  }
}
