/**
 * The skipped-files report and the scan-and-summarize entry point.
 *
 * Like the agent's `LastBackupFailedFiles` log, every entry a scan skips is written to a report file, one JSON
 * object a line (`{"path","reason","detail"}`), so a listing of millions of skips never sits in memory; the summary
 * gives the report's path.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type Clock, systemClock } from '../throttle/clock.js';
import { type ScanEntry, type ScanOptions, ScanSummary, scanBatches } from './scan.js';
import { defaultProbe } from './probe.js';

/** Where reports go when no path is given. */
export function defaultReportDir(): string {
  return join(tmpdir(), 'vaultpath', 'reports');
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

  /** Creates (or truncates) the report at `path`, making its folder if needed. */
  static async create(path: string): Promise<SkippedFilesReport> {
    await mkdir(dirname(path), { recursive: true });
    return new SkippedFilesReport(path, await open(path, 'w'));
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
    await this.#flush();
    await this.#file.close();
  }

  async #flush(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const text = this.#buffer.join('');
    this.#buffer = [];
    this.#buffered = 0;
    await this.#file.write(text);
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
