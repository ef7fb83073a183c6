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
 * fast-glob's `unique` option is off: it would keep every path ever seen in a Set.
 *
 * @module
 */
import { type Dirent, readdir } from 'node:fs';
import { VaultpathError } from '../errors.js';
import type { EntryKind } from './attributes.js';

/** One entry found by the walk, before it is probed. */
export interface WalkEntry {
  readonly type: 'entry';
  /** Path relative to the root, with `/` separators. */
  readonly relativePath: string;
  readonly kind: EntryKind;
}

/** Something the walk could not list, or chose not to: reported, never silently dropped. */
export interface WalkSkip {
  readonly type: 'skip';
  readonly relativePath: string;
  readonly kind: EntryKind;
  readonly reason: 'case-collision' | 'unreadable' | 'vanished';
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
  const groups = new Map<string, string[]>();
  let any = false;
  for (const name of names) {
    const key = caseKey(name);
    const group = groups.get(key);
    if (group) {
      group.push(name);
      any = true;
    } else groups.set(key, [name]);
  }
  const collided = new Map<string, string>();
  if (!any) return collided;
  for (const group of groups.values()) {
    if (group.length < 2) continue;
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

  const adapterReaddir = (path: string, _options: unknown, callback: (error: NodeJS.ErrnoException | null, entries: Dirent[]) => void): void => {
    void room().then(() => {
      if (signal?.aborted) return callback(null, []);
      try {
        if (path !== root && options.isMountPoint?.(path)) return callback(null, []);
      } catch {
        // It vanished or cannot be examined: readdir below reports it.
      }
      readdir(path, { withFileTypes: true }, (error, dirents) => {
        if (error) {
          side.push({ type: 'skip', relativePath: rel(path), kind: 'dir', reason: reasonOf(error.code), detail: `${error.code ?? 'error'}: could not list the folder` });
          return callback(error, []);
        }
        callback(null, dropCaseCollisions(path, dirents));
      });
    });
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
    ignore: excludePatterns(options.exclude ?? []),
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
