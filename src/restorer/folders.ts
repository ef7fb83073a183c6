/**
 * The target's tree of a restore: its folders, its links, their metadata, and the sweep of stale temporary files.
 *
 * A folder is made (0700, so no one else enters it while it fills) or found, and opened from its parent's
 * descriptor, one name at a time, never following a link; a swap before it was opened is refused (reported with
 * `VP_UNSAFE_PATH`), a folder renamed away after keeps receiving its files wherever it went. Its mode and times are set
 * through its own descriptor once nothing more is written in it ({@link release}), never by path. Links are created
 * under a temporary name and renamed into place. Owners are not recorded in trees, so set-ID bits are never
 * restored (the sticky bit is).
 *
 * The sweep removes the temporary files (`.vaultpath-restore-<host>-<pid>-…`) of restores killed on this host, this
 * user's files and links only, by unlinkat on the folder's descriptor; it runs only in a target a killed restore
 * wrote into (the recovery cache keeps that record, pack-cache.ts).
 *
 * @module
 */
import { constants, fchmodSync } from 'node:fs';
import type { TreeNode } from '../repo/tree.js';
import { HOST_TAG, isGone } from '../processes.js';
import { closeQuietly } from './fs-at.js';
import {
  type Dir, type RestoreContext, RestoreFileError, TEMP_PREFIX, isFull, keptMode, removeTemp, renameIntoPlace, stopFull, tempName, unsafe,
} from './context.js';

const EUID = process.geteuid?.();
const STALE_TEMP = /^\.vaultpath-restore-([0-9a-f]{8})-(\d+)-/;

/**
 * Removes from folder `dir` the temporary files of restores killed on this host (their pid is in the name and the
 * process is gone): only files and links this user owns, by unlinkat on the folder's descriptor. A restore still
 * running keeps its files (its process is alive).
 */
export function removeStaleTemps(ctx: RestoreContext, dir: Dir): void {
  let names: Buffer[];
  try {
    names = ctx.fs.list(dir.fd);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.length < TEMP_PREFIX.length || name.toString('latin1', 0, TEMP_PREFIX.length) !== TEMP_PREFIX) continue;
    const m = STALE_TEMP.exec(name.toString('latin1'));
    if (!m || m[1] !== HOST_TAG || !isGone(Number(m[2]))) continue;
    try {
      // Only what a restore of this user made: its own files and links. A user's file that merely has such a name
      // (the prefix is reserved, but a name cannot be owned) is not this user's to remove.
      const st = ctx.fs.stat(dir.fd, name);
      const type = st.mode & constants.S_IFMT;
      if ((type !== constants.S_IFREG && type !== constants.S_IFLNK) || (EUID !== undefined && st.uid !== EUID)) continue;
      ctx.fs.unlink(dir.fd, name, false);
    } catch {
      // gone already, or not ours to remove: left as it is
    }
  }
}

/**
 * Makes folder `dir` in its parent (mode 0700 until its own is set at the end), or accepts a real folder already
 * there, and opens it; false (reported) when that cannot be done safely. Synchronous: descriptor calls on a local
 * file system cost less than a thread-pool hand-off, and concurrent files in one new folder then cannot race to it.
 */
export function ensureDir(ctx: RestoreContext, dir: Dir): boolean {
  if (dir.opened) return dir.fd >= 0;
  if (dir.failed) return false;
  const parent = dir.parent!;
  const fail = (reason: string): false => {
    dir.failed = true;
    ctx.errors.push({ path: dir.rel, reason });
    return false;
  };
  if (!ensureDir(ctx, parent)) {
    dir.failed = true;
    return false;
  }
  let made = false;
  try {
    ctx.fs.mkdir(parent.fd, dir.name!, 0o700);
    made = true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') return fail(`could not create the folder (${code})`);
  }
  let fd: number;
  try {
    fd = ctx.fs.openDir(parent.fd, dir.name!);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // O_DIRECTORY|O_NOFOLLOW says ENOTDIR or ELOOP for a link, depending on the call: what is there tells which.
    let there: number | undefined;
    try {
      there = ctx.fs.stat(parent.fd, dir.name!).mode & constants.S_IFMT;
    } catch {
      there = undefined;
    }
    const link = there === constants.S_IFLNK || (there === undefined && code === 'ELOOP');
    if (made) return fail(unsafe(`the folder was replaced by ${link ? 'a symbolic link' : code === 'ENOTDIR' ? 'a file' : `something else (${code})`} right after it was made`));
    if (link) return fail('a symbolic link is in the way; it is not followed');
    if (code === 'ENOTDIR') return fail('a file is in the way of a folder');
    return fail(`could not open the folder (${code})`);
  }
  if (made) {
    // A folder just made is ours; another user's folder moved into its place between mkdirat and openat is not.
    const st = ctx.fs.stat(fd, null);
    const uid = process.geteuid?.();
    if (uid !== undefined && st.uid !== uid) {
      closeQuietly(fd);
      return fail(unsafe(`the folder was replaced by another user's folder (uid ${st.uid}) right after it was made`));
    }
  }
  dir.fd = fd;
  dir.opened = true;
  ctx.open.add(dir);
  if (!made && ctx.sweep) removeStaleTemps(ctx, dir);
  return true;
}

/** Drops one reference to `dir`; the last one sets its mode and times through its descriptor and closes it. */
export function release(ctx: RestoreContext, dir: Dir): void {
  for (let d: Dir | undefined = dir; d && d.parent && --d.refs === 0; d = d.parent) {
    if (d.fd >= 0) {
      ctx.dirs++;
      try {
        fchmodSync(d.fd, keptMode(ctx, d.node!, d.rel));
        ctx.fs.setTimes(d.fd, BigInt(d.node!.mtimeNs));
      } catch (e) {
        ctx.errors.push({ path: d.rel, reason: `could not set mode and times (${(e as NodeJS.ErrnoException).code})` });
      }
      closeQuietly(d.fd);
      d.fd = -1;
      ctx.open.delete(d);
    }
    d.opened = true; // nothing more is made or opened in it
  }
}

/** Makes link `node` as `name` in folder `dir` (open): under a temporary name, renamed into place; failures recorded. */
export function restoreLink(ctx: RestoreContext, node: TreeNode, dir: Dir, name: Buffer, rel: string): void {
  const temp = tempName(ctx);
  try {
    ctx.fs.symlink(node.linkTarget!, dir.fd, temp);
    renameIntoPlace(ctx, dir, temp, name);
    ctx.files++;
  } catch (e) {
    removeTemp(ctx, dir, temp, e);
    const code = (e as NodeJS.ErrnoException).code;
    if (isFull(code)) return stopFull(ctx, rel, code!);
    ctx.errors.push({ path: rel, reason: e instanceof RestoreFileError ? e.message : `could not create the link (${code})` });
  }
}
