/**
 * The scan stage: walk the sources, probe each entry's attributes, and decide what happens to it by the support
 * rules, before any file content is read.
 *
 * `scan()` streams {@link ScanEntry} items (one per entry found, with its decision, plus one per thing that had to
 * be skipped); {@link ScanSummary} totals them by decision and by skip reason, and gives the bytes a backup would
 * read (the scratch cache is sized from it). Memory is bounded: the walk holds back while entries wait, probes run
 * on batches of at most `batchSize` paths, and nothing keeps the listing.
 *
 * Volume-level rules enforced here: a data source (one root) whose files to back up exceed `maxSourceBytes`
 * (54,400 GB by default, the agent's limit) is refused with `VP_SOURCE_TOO_LARGE` as soon as the count passes the
 * limit; with `caseCollision: 'fail'` a case collision fails the source with `VP_CASE_COLLISION`.
 *
 * @module
 */
import { fstatSync, lstatSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { ATTRIBUTE_NAMES, type AttributeProbe, type EntryAttributes, type EntryKind, type ProbedEntry } from './attributes.js';
import { defaultProbe } from './probe.js';
import { type Decision, type DecisionKind, type SkipReason, type SupportRule, FILE_RULES, SKIP_REASONS, decide } from './rules.js';
import { reasonOf, walk } from './walk.js';
import { FolderLister, type OpenFolder, probeMixed } from './folder.js';
import { formatBytes } from '../units.js';
import type { ListingReplay } from './listing-replay.js';

/** The agent's limit on one data source: 54,400 GB. */
export const DEFAULT_MAX_SOURCE_BYTES = 54_400 * 1e9;

/** One entry of a scan, with its decision. */
export interface ScanEntry {
  /** The scan root (absolute) this entry was found under. */
  readonly root: string;
  /** Absolute path. */
  readonly path: string;
  /** Path relative to the root, with `/` separators. */
  readonly relativePath: string;
  readonly kind: EntryKind;
  readonly decision: Decision;
  /** What the probe found; absent when the entry could not be probed or listed. */
  readonly stats?: ProbedEntry;
  /** Why it was skipped, in words (for `unreadable`, `vanished`, `case-collision`, `replaced`). */
  readonly detail?: string;
  /**
   * The path to open the entry through, relative to its open folder's descriptor (`/proc/self/fd/<n>/<name>`, see
   * scan/folder.ts): set by the folder-by-folder listing, valid while that folder is open. Open it with O_NOFOLLOW.
   */
  readonly access?: string | Buffer;
  /** The name's bytes, when they are not valid UTF-8 (`path` and `relativePath` then show them as U+FFFD). */
  readonly nameRaw?: Buffer;
}

export interface ScanOptions {
  /** Globs of entries to include, relative to each root. @default ['**'] */
  readonly include?: readonly string[];
  /** Globs of entries to exclude with everything below them; see `WalkOptions.exclude`. */
  readonly exclude?: readonly string[];
  /** Folders (relative to the root) whose own files are excluded while their subfolders are scanned. */
  readonly excludeFilesIn?: readonly string[];
  /** Reads attributes. @default defaultProbe() (statx on Linux when built, else lstat) */
  readonly probe?: AttributeProbe;
  /** The rules for regular files, in precedence order. @default FILE_RULES */
  readonly rules?: readonly SupportRule[];
  /** What a case collision does: skip the later names (`skip`), or fail the source (`fail`). @default 'skip' */
  readonly caseCollision?: 'skip' | 'fail';
  /** The largest data source (one root), in bytes of files to back up. @default DEFAULT_MAX_SOURCE_BYTES */
  readonly maxSourceBytes?: number;
  /** Entries per batch (and paths per probe call). @default 256 */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
}

/**
 * Scans `roots` (folders) and yields every entry with its decision.
 *
 * @throws {VaultpathError} `VP_SOURCE_NOT_FOUND` (a root that does not exist or is not a folder),
 *   `VP_SOURCE_TOO_LARGE`, `VP_CASE_COLLISION` (policy `fail`), `VP_ABORTED`.
 * @example
 * ```ts
 * for await (const e of scan(['/home/ann'], { exclude: ['*.mp3', 'node_modules'] })) {
 *   if (e.decision.kind === 'skip') console.log(e.relativePath, e.decision.reason);
 * }
 * ```
 */
export async function* scan(roots: readonly string[], options: ScanOptions = {}): AsyncGenerator<ScanEntry, void, undefined> {
  for await (const batch of scanBatches(roots, options)) yield* batch;
}

/**
 * {@link scan} in batches of about `batchSize` entries: the same entries, with one await per batch instead of one
 * per entry (what the backup engine and the CLI use).
 */
export async function* scanBatches(roots: readonly string[], options: ScanOptions = {}): AsyncGenerator<ScanEntry[], void, undefined> {
  if (roots.length === 0) throw new TypeError('"roots" expected at least one folder');
  const probe = options.probe ?? defaultProbe();
  const rules = options.rules ?? FILE_RULES;
  const limit = options.maxSourceBytes ?? DEFAULT_MAX_SOURCE_BYTES;
  const { signal } = options;
  const absRoots = roots.map((r) => resolve(r));
  for (const root of absRoots) checkRoot(root);

  for (const root of absRoots) {
    throwIfAborted(signal);
    const rootDev = probe.deviceOf(root);
    const account = sourceAccount(root, limit, options.caseCollision);

    for await (const items of walk(root, {
      include: options.include,
      exclude: options.exclude,
      excludeFilesIn: options.excludeFilesIn,
      batchSize: options.batchSize,
      signal,
      isMountPoint: (dir) => probe.deviceOf(dir) !== rootDev,
    })) {
      const toProbe: (string | Buffer)[] = [];
      for (const item of items) if (item.type === 'entry') toProbe.push(item.pathBytes ?? join(root, item.relativePath));
      const results = toProbe.length > 0 ? await probeMixed(probe, toProbe, { rootDev }) : [];
      const entries: ScanEntry[] = [];
      let r = 0;
      for (const item of items) {
        let entry: ScanEntry;
        if (item.type === 'skip') {
          const path = join(root, item.relativePath);
          entry = { root, path, relativePath: item.relativePath, kind: item.kind, decision: skipped(item.reason), detail: item.detail };
        } else {
          const probed = toProbe[r]!;
          const path = typeof probed === 'string' ? probed : join(root, item.relativePath);
          const nameRaw = typeof probed === 'string' ? {} : { nameRaw: probed.subarray(probed.lastIndexOf(0x2f) + 1) };
          const result = results[r++]!;
          if (!result.ok) {
            const reason = reasonOf(result.code);
            entry = { root, path, relativePath: item.relativePath, kind: item.kind, decision: skipped(reason), detail: `${result.code}: ${reason === 'vanished' ? 'it vanished during the scan' : 'it cannot be read'}`, ...nameRaw };
          } else {
            const stats = result.entry;
            entry = { root, path, relativePath: item.relativePath, kind: stats.kind, decision: decide(stats.kind, stats.attributes, rules), stats, ...nameRaw };
          }
        }
        account(entry);
        entries.push(entry);
      }
      yield entries;
    }
  }
}

/**
 * The totals {@link scanBatches} would give for the same roots and options (a test holds the two together), from
 * the backup engine's folder-by-folder listing ({@link FolderLister}: one readdir and one probe batch per folder,
 * no glob engine), at about half the cost. What a backup needs before it reads any data. Same errors. With
 * `include` globs every folder is walked and counted (a matching file may lie below any), where the streamed scan
 * counts only what matches; files and bytes agree. With `listings`, each folder's listing is kept there for the
 * walk that follows, so a backup lists each folder once.
 */
export async function scanTotals(roots: readonly string[], options: TotalsOptions = {}): Promise<ScanSummary> {
  if (roots.length === 0) throw new TypeError('"roots" expected at least one folder');
  const probe = options.probe ?? defaultProbe();
  const { listings } = options;
  const absRoots = roots.map((r) => resolve(r));
  for (const root of absRoots) checkRoot(root);
  const totals = new ScanSummary();
  for (const [rootIndex, root] of absRoots.entries()) {
    const account = sourceAccount(root, options.maxSourceBytes ?? DEFAULT_MAX_SOURCE_BYTES, 'skip');
    const lister = new FolderLister({ root, probe, exclude: options.exclude, include: options.include, excludeFilesIn: options.excludeFilesIn });
    const count = (e: ScanEntry): void => {
      account(e);
      totals.add(e);
    };
    // Depth first, each folder listed through its own descriptor (scan/folder.ts), opened from its parent's: one
    // descriptor per level of depth is open at a time.
    const visit = async (folder: OpenFolder): Promise<void> => {
      throwIfAborted(options.signal);
      // Listing and probing are synchronous: give the event loop a turn between folders, so that what runs beside
      // the scan (a vault being opened, its key being derived) progresses instead of waiting for the end.
      await new Promise((resolve) => setImmediate(resolve));
      // The folder's identity before it is listed: a change made while it is listed gives it another mtime.
      const st = listings?.working ? fstatSync(folder.fd, { bigint: true }) : undefined;
      const entries = await lister.listOpen(folder);
      if (st) listings!.record(rootIndex, folder, st, entries);
      for (const e of entries) count(e);
      for (const e of entries) {
        if (e.kind !== 'dir' || e.decision.kind === 'skip' || e.relativePath === folder.relDir) continue;
        const child = lister.openChild(folder, e);
        if (!('fd' in child)) {
          count(child);
          continue;
        }
        try {
          await visit(child);
        } finally {
          lister.close(child);
        }
      }
    };
    const top = lister.openRoot();
    if (!('fd' in top)) {
      count(top);
      continue;
    }
    try {
      await visit(top);
    } finally {
      lister.close(top);
    }
  }
  listings?.finish();
  return totals;
}

export interface TotalsOptions extends Omit<ScanOptions, 'batchSize' | 'caseCollision' | 'rules'> {
  /**
   * Where to keep each folder's listing for the backup's walk, which then lists and probes each folder once
   * (scan/listing-replay.ts). The walk MUST use the same roots, in the same order, and the same options.
   */
  readonly listings?: ListingReplay;
}

/** Counts one root's entries against the source limit and the case-collision policy; throws when one is broken. */
function sourceAccount(root: string, limit: number, caseCollision: ScanOptions['caseCollision']): (e: ScanEntry) => void {
  let sourceBytes = 0;
  return (e) => {
    if (e.kind === 'file' && e.decision.kind !== 'skip') {
      sourceBytes += e.stats?.size ?? 0;
      if (sourceBytes > limit) {
        throw new VaultpathError(
          'VP_SOURCE_TOO_LARGE',
          `The data source ${root} holds at least ${exact(sourceBytes)} of files to back up, over the limit of ` +
            `${exact(limit)} for one source. Split it into several sources (subfolders), or exclude data. ` +
            'No data was read.',
        );
      }
    }
    if (e.decision.kind === 'skip' && e.decision.reason === 'case-collision' && caseCollision === 'fail') {
      throw new VaultpathError(
        'VP_CASE_COLLISION',
        `${e.path}: ${e.detail ?? 'a name collides with another by case'}. The vault's names are case-insensitive; ` +
          'rename one of the entries, or scan with the policy that skips later names.',
      );
    }
  };
}

const SKIP_DECISIONS = new Map<SkipReason, Decision>(SKIP_REASONS.map((reason) => [reason, { kind: 'skip', reason, rule: reason }]));
function skipped(reason: SkipReason): Decision {
  return SKIP_DECISIONS.get(reason)!;
}

function join(root: string, relativePath: string): string {
  if (relativePath === '') return root;
  return root.endsWith(sep) ? root + relativePath : root + sep + relativePath;
}

function checkRoot(root: string): void {
  let st;
  try {
    st = lstatSync(root);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new VaultpathError(
      'VP_SOURCE_NOT_FOUND',
      `The source ${root} cannot be scanned (${code ?? 'error'}): check that the folder exists and that you may read it.`,
      { cause },
    );
  }
  if (!st.isDirectory()) {
    throw new VaultpathError('VP_SOURCE_NOT_FOUND', `The source ${root} is not a folder; give the folder that contains it.`);
  }
}

/** Totals of a group of entries. */
export interface Tally {
  entries: number;
  bytes: number;
}

/** The totals of a scan, built by {@link ScanSummary.add}; serializable with `toJSON()`. */
export class ScanSummary {
  readonly roots: string[] = [];
  /** Regular files found (whatever their decision). */
  files = 0;
  /** Folders found. */
  dirs = 0;
  /** Bytes of the files a backup would read (every file not skipped). */
  bytesToRead = 0;
  /** Entries (files and others) by decision; bytes count file sizes. */
  readonly decisions: Record<DecisionKind, Tally> = {
    backup: { entries: 0, bytes: 0 },
    'backup-full': { entries: 0, bytes: 0 },
    'backup-sparse': { entries: 0, bytes: 0 },
    skip: { entries: 0, bytes: 0 },
  };
  /** Skipped entries by reason. */
  readonly skipped: Partial<Record<SkipReason, Tally>> = {};
  /** Files whose attribute could not be determined, by attribute (the rules treat unknown as not set). */
  readonly unknown: Partial<Record<keyof EntryAttributes, number>> = {};
  /** The probe that read the attributes. */
  probe = '';

  add(e: ScanEntry): void {
    if (!this.roots.includes(e.root)) this.roots.push(e.root);
    if (e.kind === 'dir') this.dirs++;
    if (e.kind === 'file') this.files++;
    const bytes = e.kind === 'file' ? (e.stats?.size ?? 0) : 0;
    const d = this.decisions[e.decision.kind];
    if (e.kind !== 'dir' || e.decision.kind === 'skip') {
      d.entries++;
      d.bytes += bytes;
    }
    if (e.decision.kind === 'skip') {
      const t = (this.skipped[e.decision.reason] ??= { entries: 0, bytes: 0 });
      t.entries++;
      t.bytes += bytes;
    } else if (e.kind === 'file') {
      this.bytesToRead += bytes;
    }
    if (e.kind === 'file' && e.stats) {
      for (const name of ATTRIBUTE_NAMES) {
        if (e.stats.attributes[name] === undefined) this.unknown[name] = (this.unknown[name] ?? 0) + 1;
      }
    }
  }

  toJSON(): Record<string, unknown> {
    return {
      roots: this.roots,
      files: this.files,
      dirs: this.dirs,
      bytes: this.bytesToRead,
      decisions: this.decisions,
      skippedByReason: this.skipped,
      unknownAttributes: this.unknown,
      probe: this.probe,
    };
  }
}

function exact(bytes: number): string {
  return `${bytes.toLocaleString('en-US')} bytes (${formatBytes(bytes)})`;
}
