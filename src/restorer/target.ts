/**
 * Opens a restore's target folder as one descriptor, making what is missing, without letting another user's link
 * redirect it: the path is walked from `/` one name at a time, each folder opened from its parent's descriptor with
 * O_NOFOLLOW ({@link FsAt.openDir}), each missing folder made with mkdirat in the folder just opened.
 *
 * A symbolic link on the way is followed only when no other user can have made or changed it: the link belongs to
 * root or to this user, and so does the folder that holds it, which no one else can write to (or which has the
 * sticky bit, so only the link's owner could replace it). That keeps system links (`/home` → `/var/home`) working
 * and refuses a link a user planted in a folder of theirs (`/home/ann/restore` → `/etc`) with `VP_UNSAFE_PATH`.
 * At most 40 links are followed (the kernel's own limit), so a loop of links fails instead of spinning.
 *
 * Contract: returns a descriptor of a folder this user can write to, or throws `VP_TARGET` (not a folder, cannot
 * be made, not writable, read-only) or `VP_UNSAFE_PATH` (a link another user controls lies on the way). Every call
 * ends after at most one mkdir and two opens per name: a file system that refuses to make a folder (`/proc`) fails
 * with `VP_TARGET` at once.
 *
 * @module
 */
import { accessSync, closeSync, constants, openSync, readlinkSync } from 'node:fs';
import { VaultpathError } from '../errors.js';
import { type EntryStat, type FsAt, closeQuietly } from './fs-at.js';

/** Links followed at most while opening one target, as the kernel's own limit (MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * Opens (making it and any missing folder above it) the absolute, normalised folder path `dir`.
 *
 * @throws {VaultpathError} `VP_TARGET`, `VP_UNSAFE_PATH`.
 */
export function openTarget(fs: FsAt, dir: string): number {
  const bad = (why: string): VaultpathError => new VaultpathError('VP_TARGET', `The restore target ${dir} ${why}; give a folder you can write to.`);
  const uid = process.geteuid?.();
  // The folders open now, from `/` down: `..` in a link's text closes the last one.
  const stack: number[] = [openSync('/', constants.O_RDONLY | constants.O_DIRECTORY)];
  const names = dir.split('/').filter((n) => n !== '' && n !== '.');
  let links = 0;
  let shown = '';
  try {
    while (names.length > 0) {
      const name = names.shift()!;
      if (name === '..') {
        if (stack.length > 1) closeSync(stack.pop()!);
        shown = shown.slice(0, shown.lastIndexOf('/'));
        continue;
      }
      const parent = stack[stack.length - 1]!;
      const bytes = Buffer.from(name);
      const here = `${shown}/${name}`;
      let fd: number | undefined;
      try {
        fd = fs.openDir(parent, bytes);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A link gives ELOOP, or ENOTDIR where O_DIRECTORY is checked before O_NOFOLLOW.
        const link = code === 'ELOOP' || code === 'ENOTDIR' ? linkStat(fs, parent, bytes) : undefined;
        if (link) {
          if (++links > MAX_LINKS) throw bad(`passes through more than ${MAX_LINKS} symbolic links`);
          const why = untrustedLink(fs, parent, link, uid);
          if (why) throw new VaultpathError('VP_UNSAFE_PATH', `The restore target ${dir} is refused: ${here} is a symbolic link ${why}. Give the folder's real path.`);
          const text = linkText(parent, name);
          if (text === undefined) throw bad(`cannot be opened (${here} is a symbolic link that cannot be read)`);
          const next = text.split('/').filter((n) => n !== '' && n !== '.');
          if (text.startsWith('/')) {
            while (stack.length > 1) closeSync(stack.pop()!);
            shown = '';
          }
          names.unshift(...next);
          continue;
        }
        if (code === 'ENOTDIR' || code === 'ELOOP') throw bad(names.length === 0 ? 'is not a folder' : `cannot be made: ${here} is not a folder`);
        if (code !== 'ENOENT') throw bad(`cannot be opened (${here}: ${code})`);
      }
      if (fd === undefined) {
        try {
          fs.mkdir(parent, bytes, 0o777);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST') throw bad(`cannot be created (${here}: ${code})`);
        }
        try {
          fd = fs.openDir(parent, bytes);
        } catch (e) {
          // Made a moment ago and already not a folder: someone raced the mkdir; nothing is followed either way.
          const code = (e as NodeJS.ErrnoException).code;
          throw code === 'ELOOP'
            ? new VaultpathError('VP_UNSAFE_PATH', `The restore target ${dir} is refused: ${here} was replaced by a symbolic link while it was made.`)
            : bad(`cannot be created (${here}: ${code})`);
        }
      }
      stack.push(fd);
      shown = here;
    }
    const fd = stack.pop()!;
    try {
      accessSync(`/proc/self/fd/${fd}`, constants.W_OK | constants.X_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
        closeQuietly(fd);
        throw bad(code === 'EROFS' ? 'is on a read-only file system' : 'is not writable by this user');
      }
    }
    return fd;
  } finally {
    for (const fd of stack) closeQuietly(fd);
  }
}

/** The entry `name` of `parent` when it is a symbolic link (as it is now: one look, used for every check). */
function linkStat(fs: FsAt, parent: number, name: Uint8Array): EntryStat | undefined {
  try {
    const st = fs.stat(parent, name);
    return (st.mode & constants.S_IFMT) === constants.S_IFLNK ? st : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why link `link` (an entry of open folder `parent`) may be another user's doing, or `undefined` when only root or
 * this user can have made it and only they can replace it.
 */
function untrustedLink(fs: FsAt, parent: number, link: EntryStat, uid: number | undefined): string | undefined {
  if (uid === undefined) return 'and owners cannot be checked here';
  const trusted = (owner: number): boolean => owner === 0 || owner === uid;
  if (!trusted(link.uid)) return `that belongs to user ${link.uid}`;
  const folder = fs.stat(parent, null);
  if (!trusted(folder.uid)) return `in a folder that belongs to user ${folder.uid}`;
  if ((folder.mode & 0o022) !== 0 && (folder.mode & 0o1000) === 0) {
    return `in a folder other users can write to (mode ${(folder.mode & 0o7777).toString(8)})`;
  }
  return undefined;
}

/** The text of link `name` in open folder `parent`, read through the folder's descriptor; `undefined` when it cannot be. */
function linkText(parent: number, name: string): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${parent}/${name}`, 'utf8');
  } catch {
    return undefined;
  }
}
