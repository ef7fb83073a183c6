/**
 * A one-line progress bar on stderr, drawn only on a terminal and at most ten times a second: files, bytes of the
 * total, MB/s and ETA. Off the terminal (pipes, CI, `--json`) it prints nothing.
 */
import { formatBytes } from '../units.js';
import { systemClock } from '../throttle/clock.js';

export class ProgressBar {
  readonly #enabled: boolean;
  readonly #started = performance.now();
  #last = 0;

  constructor(enabled: boolean) {
    this.#enabled = enabled && process.stderr.isTTY === true;
  }

  /**
   * Draws the bar. `etaAt` (ms since the epoch), when given, is the ETA under a bandwidth schedule
   * (estimateCompletion) and replaces the estimate from the observed rate.
   */
  update(label: string, done: number, total: number, files: number, filesTotal?: number, etaAt?: number): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#last < 100 && done < total) return;
    this.#last = now;
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const share = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const bar = '█'.repeat(Math.round(share * width)).padEnd(width, '░');
    const eta =
      etaAt !== undefined && total > done
        ? ` ETA ${formatDuration(Math.max(0, (etaAt - systemClock.now()) / 1000))} (schedule)`
        : rate > 0 && total > done
          ? ` ETA ${formatDuration((total - done) / rate)}`
          : '';
    const count = filesTotal !== undefined ? `${files}/${filesTotal} files` : `${files} files`;
    const line = `${label} ${bar} ${(share * 100).toFixed(0).padStart(3)}%  ${count}  ${formatBytes(done)}/${formatBytes(total)}  ${(rate / 1e6).toFixed(0)} MB/s${eta}`;
    process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1).padEnd(Math.min(process.stderr.columns ?? 120, 120) - 1)}`);
  }

  done(): void {
    if (this.#enabled) process.stderr.write('\r\x1b[K');
  }
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
