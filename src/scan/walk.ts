/**
 * Walks one scan root with fast-glob as a stream: no full listing in memory, symbolic links not followed, dot
 * files included, include and exclude globs applied before anything is probed.
 *
 * fast-glob reads folders through a file-system adapter, and this module supplies one that does what fast-glob
 * itself does not:
 * - **errors per folder**: a folder that cannot be read (EACCES) or vanished during the walk is reported as a
 *   skipped item and the walk goes on (fast-glob alone either stops or drops the error silently);
 * - **case collisions**: names in one folder that differ only by case are found in the listing itself; the first
 *   in sorted order is kept, the others are reported as `case-collision` and not descended into;
 * - **mount points**: a folder on another device than the root is not descended into (it is a reparse point);
 * - **backpressure**: fast-glob's stream does not apply any, so the adapter holds back further folder reads while
 *   more than `maxBuffered` entries wait to be consumed. Memory stays bounded by that plus the largest folder.
 *
 * - **no redirection**: fast-glob (with `followSymbolicLinks: false`) never descends into a link it listed, but it
 *   reads each folder by its path, which a user could swap for a link after the listing of its parent. The adapter
 *   opens each folder with O_DIRECTORY|O_NOFOLLOW, checks through /proc/self/fd that the folder open is the one at
 *   that place below the root (no folder on the way was swapped for a link), and lists the descriptor; a folder
 *   that fails the check is reported `replaced` and not listed. Where /proc is not mounted (not Linux) folders are
 *   listed by path, and only fast-glob's own refusal to follow links it listed remains.
 * - **names as bytes**: fast-glob works on strings, and a name that is not valid UTF-8 would come out changed
 *   (naming another file, or none). Folders are listed as strings (cheap), and a folder in whose listing a name
 *   holds U+FFFD (how Node decodes bytes that are not UTF-8) is listed again as bytes, through the same
 *   descriptor; such names are taken out of fast-glob's listing and yielded as entries with their bytes
 *   ({@link WalkEntry.pathBytes}); fast-glob does not descend into a folder so named (the streamed scan reports the
 *   folder, not its contents; the backup's walk, scan/folder.ts, does go in).
 *
 * fast-glob's `unique` option is off: it would keep every path ever seen in a Set.
 *
 * @module
 */
import { type Dirent, close, constants, existsSync, open, readdir, readlink, realpathSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import picomatch from 'picomatch';
import { VaultpathError } from '../errors.js';
import type { EntryKind } from './attributes.js';

/** One entry found by the walk, before it is probed. */
export interface WalkEntry {
  readonly type: 'entry';
  /** Path relative to the root, with `/` separators. */
  readonly relativePath: string;
  readonly kind: EntryKind;
  /** The entry's absolute path as bytes, when a name in it is not valid UTF-8 (`relativePath` shows U+FFFD). */
  readonly pathBytes?: Buffer;
}

/** Something the walk could not list, or chose not to: reported, never silently dropped. */
export interface WalkSkip {
  readonly type: 'skip';
  readonly relativePath: string;
  readonly kind: EntryKind;
  readonly reason: 'case-collision' | 'unreadable' | 'vanished' | 'replaced';
  readonly detail: string;
}

export type WalkItem = WalkEntry | WalkSkip;

export interface WalkOptions {
  /** Globs of entries to include, relative to the root. @default ['**'] */
  readonly include?: readonly string[];
  /**
   * Globs of entries to exclude with everything below them. A pattern without `/` matches at any depth
   * (`*.mp3`, `node_modules`); a trailing `/` is allowed (`build/`). Matching ignores case, as the agent does.
   * Excluded entries are neither probed nor read.
   */
  readonly exclude?: readonly string[];
  /** Folders (relative to the root) whose own files are excluded, while their subfolders are still scanned. */
  readonly excludeFilesIn?: readonly string[];
  /** True for a folder that must not be descended into (a mount point). */
  readonly isMountPoint?: (absolutePath: string) => boolean;
  /** Folder reads wait while more than this many entries are waiting to be consumed. @default 4096 */
  readonly maxBuffered?: number;
  /** Entries per yielded batch. @default 256 */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
}

/** Turns the agent-style exclusion syntax into fast-glob ignore patterns (the entry and all below it). */
export function excludePatterns(exclude: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of exclude) {
    let p = raw.replaceAll('\\', '/').replace(/\/+$/, '');
    if (p.startsWith('./')) p = p.slice(2);
    if (p === '') continue;
    if (!p.includes('/')) p = `**/${p}`;
    out.push(p, `${p}/**`);
  }
  return out;
}

/**
 * A name key under which names that differ only by case are equal: each code point mapped to its simple upper case
 * (one code point to one, as NTFS's upcase table does; `ß` stays `ß`).
 */
export function caseKey(name: string): string {
  const up = name.toUpperCase();
  // No character expanded (ß → SS is the usual one), so the whole-string mapping is the per-character one.
  if (up.length === name.length) return up;
  let out = '';
  for (const ch of name) {
    const up = ch.toUpperCase();
    out += [...up].length === 1 ? up : ch;
  }
  return out;
}

/**
 * The names of one folder that collide with another by case, each mapped to the name that is kept: in every group
 * of names equal under {@link caseKey}, the first in sorted (code unit) order is kept.
 */
export function caseCollisions(names: readonly string[]): Map<string, string> {
  // One name per key, and groups only for the keys that repeat: most folders have none, and pay no array per name.
  const first = new Map<string, string>();
  let groups: Map<string, string[]> | undefined;
  for (const name of names) {
    const key = caseKey(name);
    const seen = first.get(key);
    if (seen === undefined) {
      first.set(key, name);
      continue;
    }
    groups ??= new Map();
    const group = groups.get(key);
    if (group) group.push(name);
    else groups.set(key, [seen, name]);
  }
  const collided = new Map<string, string>();
  if (!groups) return collided;
  for (const group of groups.values()) {
    group.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of group.slice(1)) collided.set(name, group[0]!);
  }
  return collided;
}

/** The case-insensitive keys of folders given relative to a root (`./a/b/`, `a\\b` and `A/B` are one folder). */
export function folderKeys(folders: readonly string[] | undefined): Set<string> {
  return new Set((folders ?? []).map((d) => caseKey(d.replaceAll('\\', '/').replace(/^\.\/|\/+$/g, ''))));
}

export function kindOfDirent(d: Pick<Dirent, 'isFile' | 'isDirectory' | 'isSymbolicLink'>): EntryKind {
  if (d.isFile()) return 'file';
  if (d.isDirectory()) return 'dir';
  if (d.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** What a failed listing or probe means for an entry: it vanished (ENOENT, ENOTDIR), or it cannot be read. */
/** Descriptor-relative paths work here: Linux with /proc mounted. */
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A folder's listing: as strings, or as bytes when a name in it may not be UTF-8. */
type Listing = { readonly bytes: false; readonly dirents: Dirent[] } | { readonly bytes: true; readonly dirents: Dirent<Buffer>[] };
/** What a folder that could not be listed gives (with the error). */
const NO_LISTING: Listing = Object.freeze({ bytes: false, dirents: [] as Dirent[] });

/**
 * Lists folder `at` as strings, or, when a name of that listing holds U+FFFD (it may not be UTF-8), again as bytes:
 * that second listing alone is used (the folder may have changed in between; a genuine U+FFFD, valid UTF-8, costs
 * the second listing too).
 */
function readListing(at: string, callback: (error: NodeJS.ErrnoException | null, listing: Listing) => void): void {
  readdir(at, { withFileTypes: true }, (error, dirents) => {
    if (error) return callback(error, NO_LISTING);
    if (!dirents.some((d) => d.name.includes('\uFFFD'))) return callback(null, { bytes: false, dirents });
    readdir(at, { withFileTypes: true, encoding: 'buffer' }, (e, raw) => callback(e, { bytes: true, dirents: raw ?? [] }));
  });
}

/**
 * Lists folder `path` through a descriptor: opened without following a final link, and, when `expected` (its real
 * path) is given, checked to be the folder at that place, so a folder on the way swapped for a link cannot redirect
 * the listing. An error with `replaced: true` when the check fails.
 */
function listFolder(path: string, expected: string | undefined, callback: (error: NodeJS.ErrnoException | null, listing: Listing) => void): void {
  if (!PROC_FD || expected === undefined) return readListing(path, callback);
  open(path, DIR_FLAGS, (error, fd) => {
    // A link (ELOOP; ENOTDIR, as O_DIRECTORY is checked first) or a file where a folder was listed.
    if (error) return callback(error.code === 'ELOOP' || error.code === 'ENOTDIR' ? Object.assign(error, { replaced: true }) : error, NO_LISTING);
    const done = (e: NodeJS.ErrnoException | null, listing: Listing): void => close(fd, () => callback(e, listing));
    readlink(`/proc/self/fd/${fd}`, (e, at) => {
      if (e) return done(e, NO_LISTING);
      if (at !== expected) return done(Object.assign(new Error(`${path} is now ${at}`), { code: 'ELOOP', replaced: true }), NO_LISTING);
      readListing(`/proc/self/fd/${fd}`, done);
    });
  });
}

export function reasonOf(code: string | undefined): 'unreadable' | 'vanished' {
  return code === 'ENOENT' || code === 'ENOTDIR' ? 'vanished' : 'unreadable';
}

/**
 * Walks `root` (an absolute folder path) and yields its entries and what it had to skip, in batches of about
 * `batchSize`, in no particular order.
 *
 * @throws {VaultpathError} `VP_ABORTED` when `signal` aborts.
 */
export async function* walk(root: string, options: WalkOptions = {}): AsyncGenerator<WalkItem[], void, undefined> {
  const { signal } = options;
  const maxBuffered = options.maxBuffered ?? 4096;
  const side: WalkSkip[] = [];
  const waiters: (() => void)[] = [];
  const rel = (abs: string): string => (abs === root ? '' : abs.slice(root.length + 1).replaceAll('\\', '/'));
  let stream: NodeJS.ReadableStream & { readableLength: number; destroy(): void; pause(): void; resume(): void };

  const release = (): void => {
    while (waiters.length > 0 && stream.readableLength < maxBuffered / 2) waiters.shift()!();
  };
  const room = (): Promise<void> =>
    stream === undefined || stream.readableLength < maxBuffered ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve));

  let realRoot: string | undefined;
  try {
    realRoot = realpathSync(root);
  } catch {
    // It cannot be resolved: its listing fails below and is reported.
  }
  const adapterReaddir = (path: string, _options: unknown, callback: (error: NodeJS.ErrnoException | null, entries: Dirent[]) => void): void => {
    void room().then(() => {
      if (signal?.aborted) return callback(null, []);
      try {
        if (path !== root && options.isMountPoint?.(path)) return callback(null, []);
      } catch {
        // It vanished or cannot be examined: readdir below reports it.
      }
      listFolder(path, realRoot === undefined ? undefined : realRoot + path.slice(root.length), (error, listing) => {
        if (error) {
          const reason = (error as { replaced?: boolean }).replaced ? 'replaced' : reasonOf(error.code);
          side.push({ type: 'skip', relativePath: rel(path), kind: 'dir', reason, detail: `${error.code ?? 'error'}: ${reason === 'replaced' ? 'replaced after it was listed, by a symbolic link, a file or a folder elsewhere: not followed' : 'could not list the folder'}` });
          return callback(error, []);
        }
        callback(null, dropCaseCollisions(path, listing.bytes ? takeRawNames(path, listing.dirents) : listing.dirents));
      });
    });
  };

  // Names that are not UTF-8: out of fast-glob's listing, yielded with their bytes.
  const takeRawNames = (dir: string, dirents: Dirent<Buffer>[]): Dirent[] => {
    const out: Dirent[] = [];
    for (const d of dirents) {
      if (isUtf8(d.name)) {
        out.push(Object.assign(Object.create(Object.getPrototypeOf(d) as object) as Dirent, d, { name: d.name.toString('utf8') }));
        continue;
      }
      const relativePath = rel(`${dir}/${d.name.toString('utf8')}`);
      const kind = kindOfDirent(d);
      // The globs fast-glob would have applied, on the name as shown.
      if (rawExcluded(relativePath) || (kind !== 'dir' && !rawIncluded(relativePath))) continue;
      if (kind !== 'dir' && filesExcludedIn.size > 0 && filesExcludedIn.has(caseKey(rel(dir)))) continue;
      batch.push({ type: 'entry', relativePath, kind, pathBytes: Buffer.concat([Buffer.from(`${dir}/`), d.name]) });
    }
    return out;
  };

  const dropCaseCollisions = (dir: string, dirents: Dirent[]): Dirent[] => {
    const collided = caseCollisions(dirents.map((d) => d.name));
    if (collided.size === 0) return dirents;
    return dirents.filter((d) => {
      const kept = collided.get(d.name);
      if (kept === undefined) return true;
      side.push({ type: 'skip', relativePath: rel(`${dir}/${d.name}`), kind: kindOfDirent(d), reason: 'case-collision', detail: `same name as "${kept}" but for case` });
      return false;
    });
  };

  const include = options.include && options.include.length > 0 ? [...options.include] : ['**'];
  const ignore = excludePatterns(options.exclude ?? []);
  const rawExcluded = ignore.length > 0 ? picomatch(ignore, { dot: true, nocase: true }) : () => false;
  const rawIncluded = picomatch(include, { dot: true, nocase: true });
  // Loaded on first use: the glob engine is a fair share of a process's start-up, and only the streamed scan needs
  // it (the backup lists folder by folder, scan/folder.ts).
  const { default: fg } = await import('fast-glob');
  stream = fg.stream(include.length === 1 ? include[0]! : `{${include.join(',')}}`, {
    cwd: root,
    dot: true,
    onlyFiles: false,
    followSymbolicLinks: false,
    objectMode: true,
    suppressErrors: true,
    unique: false,
    caseSensitiveMatch: false,
    ignore,
    fs: { readdir: adapterReaddir as never },
  }) as unknown as typeof stream;

  const filesExcludedIn = folderKeys(options.excludeFilesIn);
  const batchSize = options.batchSize ?? 256;
  let batch: WalkItem[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  stream.on('data', (raw: { path: string; dirent: Dirent }) => {
    const kind = kindOfDirent(raw.dirent);
    if (kind !== 'dir' && filesExcludedIn.size > 0) {
      const slash = raw.path.lastIndexOf('/');
      if (filesExcludedIn.has(caseKey(slash < 0 ? '' : raw.path.slice(0, slash)))) return;
    }
    batch.push({ type: 'entry', relativePath: raw.path, kind });
    if (batch.length >= batchSize) {
      // Hold the stream: further entries wait in its buffer, where the readdir gate above sees them.
      stream.pause();
      notify();
    }
  });
  stream.once('end', () => {
    ended = true;
    notify();
  });
  stream.once('error', (e) => {
    failure = e;
    notify();
  });
  const onAbort = (): void => notify();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) break;
      if (failure !== undefined) throw failure;
      if (batch.length >= batchSize || (ended && (batch.length > 0 || side.length > 0))) {
        const out = side.length > 0 ? [...side.splice(0), ...batch] : batch;
        batch = [];
        stream.resume();
        release();
        yield out;
        continue;
      }
      if (ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stream.destroy();
    for (const w of waiters.splice(0)) w();
  }
  if (signal?.aborted) throw new VaultpathError('VP_ABORTED', 'The scan was aborted.', { cause: signal.reason });
}
