/**
 * Per-user working folders: where reports, the scratch cache and the recovery folder live when no path is given.
 *
 * vaultpath often runs as root beside other users, so a default working folder is never one shared by every user
 * (a `/tmp/vaultpath` that whoever ran vaultpath first would own, and could fill with links). Each user gets their
 * own: `$XDG_CACHE_HOME/vaultpath/<kind>`, else `~/.cache/vaultpath/<kind>`, else `<tmpdir>/vaultpath-<uid>/<kind>`.
 * {@link ensureUserFolder} creates the folder owner-only (0700) and refuses one that is a link, not owned by this
 * user, or open to others: it writes nothing into a folder it refuses.
 *
 * @module
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { VaultpathError } from '../errors.js';

/** The kinds of working folder vaultpath keeps per user. */
export type UserFolderKind = 'reports' | 'scratch' | 'recovery';

/** Where this user's working folder of `kind` is, by default; nothing is created. */
export function userFolder(kind: UserFolderKind, env: NodeJS.ProcessEnv = process.env): string {
  const cache = env['XDG_CACHE_HOME'];
  if (cache && cache.startsWith('/')) return join(cache, 'vaultpath', kind);
  const home = env['HOME'] || safeHomedir();
  if (home && home.startsWith('/') && home !== '/') return join(home, '.cache', 'vaultpath', kind);
  return join(tmpdir(), `vaultpath-${process.getuid?.() ?? 'user'}`, kind);
}

function safeHomedir(): string | undefined {
  try {
    return homedir();
  } catch {
    return undefined;
  }
}

/**
 * Creates `path` and the folders above it that are missing, each 0700, and checks that `path` is a real folder owned
 * by this user with no access for group or others.
 * @throws {VaultpathError} `VP_UNSAFE_FOLDER` when it is a link, a file, another user's, or open to others.
 */
export function ensureUserFolder(path: string): string {
  const missing: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      lstatSync(p);
      break;
    } catch {
      missing.unshift(p);
      if (dirname(p) === p) break;
    }
  }
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const st = lstatSync(path);
  const uid = process.getuid?.();
  const why = !st.isDirectory()
    ? st.isSymbolicLink() ? 'is a symbolic link' : 'is not a folder'
    : uid !== undefined && st.uid !== uid ? `belongs to user ${st.uid}, not ${uid}`
    : (st.mode & 0o077) !== 0 ? `is open to other users (mode ${(st.mode & 0o777).toString(8)})`
    : undefined;
  if (why) throw new VaultpathError('VP_UNSAFE_FOLDER', `The working folder ${path} ${why}; vaultpath writes nothing into it. Remove it, or give another folder.`);
  return path;
}
