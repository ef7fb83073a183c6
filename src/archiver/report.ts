/**
 * The archiver's report stage: the run's counters, its progress, and the backup's report of files left out.
 *
 * Files that fail (unreadable, vanished, replaced since the scan, changed while read, nested too deep) are reported
 * per file and counted as warnings; the snapshot is then marked `warnings` instead of `complete`. Entries the rules
 * skip are reported and counted as skipped. Progress MUST NOT block (it is the caller's `onProgress`).
 *
 * @module
 */
import type { ScanEntry, ScanSummary } from '../scan/scan.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SkippedFilesReport, defaultReportDir } from '../scan/report.js';
import { replaced } from '../scan/folder.js';
import { reasonOf } from '../scan/walk.js';
import type { BackupProgress } from './types.js';

/** Why a file or folder found by the scan is not in the snapshot: a warning of the backup's report. */
export type WarnReason = 'unreadable' | 'vanished' | 'replaced' | 'too-deep';

/** A new report file's path for a backup started at `started` (ms since the epoch), in the reports folder. */
export function defaultReportPath(started: number): string {
  return join(defaultReportDir(), `backup-${new Date(started).toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}.jsonl`);
}

export interface Counters {
  files: number;
  dirs: number;
  bytesRead: number;
  bytesDone: number;
  bytesNew: number;
  filesUnchanged: number;
  filesFullOnly: number;
  skipped: number;
  warnings: number;
}

export class RunReport {
  readonly c: Counters = { files: 0, dirs: 0, bytesRead: 0, bytesDone: 0, bytesNew: 0, filesUnchanged: 0, filesFullOnly: 0, skipped: 0, warnings: 0 };
  readonly path: string;
  readonly #totals: ScanSummary;
  readonly #onProgress: ((p: BackupProgress) => void) | undefined;
  /** Bytes of packs acknowledged so far. */
  readonly #bytesStored: () => number;
  #file: SkippedFilesReport | undefined;

  /** `bytesStored` says how many bytes of packs the store has acknowledged so far. */
  constructor(path: string, totals: ScanSummary, onProgress: ((p: BackupProgress) => void) | undefined, bytesStored: () => number) {
    this.path = path;
    this.#bytesStored = bytesStored;
    this.#totals = totals;
    this.#onProgress = onProgress;
  }

  /** Creates the report's file: once nothing before the walk can fail any more. */
  async open(): Promise<void> {
    this.#file = await SkippedFilesReport.create(this.path);
  }

  async close(): Promise<void> {
    await this.#file?.close();
  }

  progress(phase: BackupProgress['phase'] = 'backup'): void {
    const c = this.c;
    this.#onProgress?.({
      phase,
      files: c.files,
      filesTotal: this.#totals.files,
      bytesRead: c.bytesRead,
      bytesDone: c.bytesDone,
      bytesTotal: this.#totals.bytesToRead,
      bytesNew: c.bytesNew,
      bytesStored: this.#bytesStored(),
    });
  }

  /** Reports an entry the rules skipped. */
  async note(e: ScanEntry): Promise<void> {
    this.c.skipped++;
    await this.#file!.add(e);
  }

  /** Reports a file or folder left out of the snapshot, or stored as read though it changed, as a warning. */
  async warn(path: string, root: string, relativePath: string, reason: WarnReason, detail: string): Promise<void> {
    this.c.warnings++;
    await this.#file!.add({ root, path, relativePath, kind: 'file', decision: { kind: 'skip', reason, rule: reason }, detail });
  }

  /**
   * Reports an entry the rules or the walk left out: a failure (unreadable, vanished, replaced since the scan) as a
   * warning, anything else as skipped by the rules.
   */
  async skipped(e: ScanEntry): Promise<void> {
    if (e.decision.kind !== 'skip') return;
    const reason = e.decision.reason;
    if (reason === 'unreadable' || reason === 'vanished' || reason === 'replaced') await this.warn(e.path, e.root, e.relativePath, reason, e.detail ?? '');
    else await this.note(e);
  }

  /** Reports a source file found replaced by `other` (in words) since the scan: left out, not read. */
  async replaced(e: ScanEntry, other: string): Promise<void> {
    const r = replaced(e.root, e.path, e.relativePath, 'file', other);
    await this.warn(r.path, r.root, r.relativePath, 'replaced', r.detail!);
  }

  /** Reports a source file that could not be opened: replaced since the scan, vanished, or unreadable. */
  async openFailed(e: ScanEntry, err: unknown): Promise<void> {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const other = replacedByCode(code);
    if (other !== undefined) return this.replaced(e, other);
    await this.warn(e.path, e.root, e.relativePath, reasonOf(code), `${code}: could not open the file`);
  }

  /** Reports a read of a source file that failed with errno name `code`. */
  async readFailed(e: ScanEntry, code: string): Promise<void> {
    await this.warn(e.path, e.root, e.relativePath, 'unreadable', `${code}: reading failed`);
  }

  /** Reports a file whose size or times changed while it was read. */
  async changedWhileRead(e: ScanEntry): Promise<void> {
    await this.warn(e.path, e.root, e.relativePath, 'unreadable', CHANGED_WHILE_READ);
  }
}

const CHANGED_WHILE_READ = 'changed while it was read: the snapshot holds what was read, which may be inconsistent';

/**
 * What an open that refused a source file says was put in its place (the addon's sealer refuses at `open` too), or
 * undefined for an ordinary failure: ELOOP a link (O_NOFOLLOW), EISDIR a folder, ESTALE another file (the sealer's
 * identity check), EINVAL not a regular file (the sealer's type check; no name from a listing holds a NUL).
 */
function replacedByCode(code: string): string | undefined {
  switch (code) {
    case 'ELOOP':
      return 'a symbolic link';
    case 'EISDIR':
      return 'a folder';
    case 'ESTALE':
      return 'another file';
    case 'EINVAL':
    case 'ENXIO': // a socket, or a FIFO's write end without a reader
      return 'something other than a regular file (a FIFO, a device or a socket)';
    default:
      return undefined;
  }
}
