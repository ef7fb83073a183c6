/**
 * The skipped-files report and the scan-and-summarize entry point.
 *
 * Like the agent's `LastBackupFailedFiles` log, every entry a scan skips is written to a report file, one JSON
 * object a line (`{"path","reason","detail"}`), so a listing of millions of skips never sits in memory; the summary
 * gives the report's path.
 *
 * Reports name the files a user has: they are created owner-only (0600) and never through a link (O_NOFOLLOW).
 * Without a path, a report goes to this user's reports folder ({@link defaultReportDir}: `userFolder('reports')`,
 * created 0700 and checked by `ensureUserFolder`), under a new name (O_EXCL: an existing file is never reused), and
 * the older reports of the same kind there are pruned, the newest `KEEP_REPORTS` (20) kept. A report that cannot be
 * written (no space, no permission, a folder in the way) is `VP_LOCAL_IO`, naming the report.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { VaultpathError } from '../errors.js';
import { KEEP_REPORTS, ensureUserFolder, userFolder } from '../stage/user-folders.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { type ScanEntry, type ScanOptions, ScanSummary, scanBatches } from './scan.js';
import { defaultProbe } from './probe.js';

/** Where reports go when no path is given: this user's reports folder (nothing is created here). */
export function defaultReportDir(): string {
  return userFolder('reports');
}

/** The names reports get in the reports folder: `<kind>-<ISO time>-<random>.jsonl`. */
const REPORT_NAME = /^([a-z]+)-\d{4}-\d\d-\d\dT[0-9-]+Z-[0-9a-f]+\.jsonl$/;

/** `e` as the `VP_LOCAL_IO` error of the report at `path`. */
function reportError(e: unknown, path: string, action: string): VaultpathError {
  if (e instanceof VaultpathError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? String(e);
  return new VaultpathError('VP_LOCAL_IO', `Could not ${action} the report ${path} (${code}); give another path with --report, or free space there.`, { cause: e });
}

/** Removes the oldest reports of `kind` in `dir` beyond the newest {@link KEEP_REPORTS} (names sort by time). */
async function pruneReports(dir: string, kind: string): Promise<void> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => REPORT_NAME.exec(n)?.[1] === kind).sort();
  for (const name of names.slice(0, Math.max(0, names.length - KEEP_REPORTS))) await unlink(join(dir, name)).catch(() => undefined);
}

/** Appends skipped entries to a JSON-lines file, buffered (64 KiB) so a flood of skips costs few writes. */
export class SkippedFilesReport {
  readonly path: string;
  count = 0;
  readonly #file: FileHandle;
  #buffer: string[] = [];
  #buffered = 0;

  private constructor(path: string, file: FileHandle) {
    this.path = path;
    this.#file = file;
  }

  /**
   * Creates the report at `path`, 0600, never through a link. In the default reports folder it must be a new file,
   * and older reports of its kind are pruned; elsewhere (a path the user gave) an existing file is truncated and
   * its folder made if needed.
   * @throws {VaultpathError} `VP_LOCAL_IO` when it cannot be created; `VP_UNSAFE_FOLDER` for an unsafe reports folder.
   */
  static async create(path: string): Promise<SkippedFilesReport> {
    const abs = resolve(path);
    const inDefault = dirname(abs) === resolve(defaultReportDir());
    let flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW;
    try {
      if (inDefault) {
        ensureUserFolder(dirname(abs));
        flags |= constants.O_EXCL;
        const kind = REPORT_NAME.exec(basename(abs))?.[1];
        if (kind) await pruneReports(dirname(abs), kind);
      } else {
        flags |= constants.O_TRUNC;
        await mkdir(dirname(abs), { recursive: true, mode: 0o700 });
      }
      return new SkippedFilesReport(abs, await open(abs, flags, 0o600));
    } catch (e) {
      throw reportError(e, abs, 'create');
    }
  }

  /** Records `e` if it was skipped. Returns a promise only when the buffer had to be written out. */
  add(e: ScanEntry): Promise<void> | undefined {
    if (e.decision.kind !== 'skip') return undefined;
    const line = JSON.stringify({ path: e.path, reason: e.decision.reason, ...(e.detail ? { detail: e.detail } : {}) }) + '\n';
    this.#buffer.push(line);
    this.#buffered += line.length;
    this.count++;
    return this.#buffered >= 64 * 1024 ? this.#flush() : undefined;
  }

  async close(): Promise<void> {
    try {
      await this.#flush();
    } finally {
      await this.#file.close().catch(() => undefined);
    }
  }

  async #flush(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const text = this.#buffer.join('');
    this.#buffer = [];
    this.#buffered = 0;
    try {
      // A write may be short (a disk filling up): loop until it is all written or the next write fails.
      const bytes = Buffer.from(text);
      for (let o = 0; o < bytes.length; ) o += (await this.#file.write(bytes, o, bytes.length - o)).bytesWritten;
    } catch (e) {
      throw reportError(e, this.path, 'write');
    }
  }
}

export interface ScanSourcesOptions extends ScanOptions {
  /** Where to write the skipped-files report. @default a new file under {@link defaultReportDir} */
  readonly reportPath?: string;
  /** Names the default report after the time. @default systemClock */
  readonly clock?: Clock;
  /** Called for every entry, e.g. to show progress. MUST NOT block. */
  readonly onEntry?: (e: ScanEntry) => void;
}

/**
 * Scans `roots`, writes the skipped-files report, and returns the summary (with the report's path).
 *
 * @throws {VaultpathError} as {@link scan} does; the report written so far is kept.
 * @example
 * ```ts
 * const { summary, reportPath } = await scanSources(['/data'], { exclude: ['*.tmp'] });
 * console.log(summary.bytesToRead, reportPath);
 * ```
 */
export async function scanSources(
  roots: readonly string[],
  options: ScanSourcesOptions = {},
): Promise<{ summary: ScanSummary; reportPath: string }> {
  const clock = options.clock ?? systemClock;
  const reportPath =
    options.reportPath ??
    join(defaultReportDir(), `skipped-${new Date(clock.now()).toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}.jsonl`);
  const probe = options.probe ?? defaultProbe();
  const summary = new ScanSummary();
  summary.probe = probe.name;
  const report = await SkippedFilesReport.create(reportPath);
  try {
    for await (const batch of scanBatches(roots, { ...options, probe })) {
      for (const e of batch) {
        summary.add(e);
        options.onEntry?.(e);
        const written = report.add(e);
        if (written) await written;
      }
    }
  } finally {
    await report.close();
  }
  return { summary, reportPath };
}
