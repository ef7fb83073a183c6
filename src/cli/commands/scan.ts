/**
 * `vaultpath scan <path>... [--exclude GLOB]... [--include GLOB]... [--exclude-files-in DIR]... [--report FILE]
 *  [--case-collision skip|fail] [--max-source-size SIZE] [--json]`
 *
 * Shows, before any data moves, what a backup would do with each entry: a readable summary by default; with
 * `--json`, one JSON object on stdout with `files`, `bytes`, the per-decision counts and `skipped: [{ path, reason }]`.
 * The skipped list is streamed from the report file, so it never sits in memory.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { scanSources } from '../../scan/report.js';
import { type ScanSummary } from '../../scan/scan.js';
import { formatBytes, parseSize } from '../../units.js';
import { type CommandContext, UsageError, list, text } from '../context.js';

export async function scanCommand(ctx: CommandContext): Promise<number> {
  const roots = [...ctx.positionals];
  if (roots.length === 0) throw new UsageError('scan needs at least one folder: vaultpath scan <path>...');
  const policy = text(ctx, 'case-collision') ?? 'skip';
  if (policy !== 'skip' && policy !== 'fail') throw new UsageError(`--case-collision takes "skip" or "fail", not "${policy}"`);
  let maxSourceBytes: number | undefined;
  const max = text(ctx, 'max-source-size');
  if (max !== undefined) {
    try {
      maxSourceBytes = parseSize(max);
    } catch (e) {
      throw new UsageError(`--max-source-size: ${(e as Error).message}`);
    }
  }
  const started = performance.now();
  const { summary, reportPath } = await scanSources(roots, {
    include: list(ctx, 'include'),
    exclude: list(ctx, 'exclude'),
    excludeFilesIn: list(ctx, 'exclude-files-in'),
    reportPath: text(ctx, 'report'),
    caseCollision: policy,
    maxSourceBytes,
    signal: ctx.signal,
  });
  const seconds = (performance.now() - started) / 1000;
  if (ctx.json) await printJson(summary, reportPath, seconds);
  else printHuman(ctx, summary, reportPath, seconds);
  return 0;
}

async function printJson(summary: ScanSummary, reportPath: string, seconds: number): Promise<void> {
  const head = JSON.stringify({ ...summary.toJSON(), report: reportPath, seconds });
  const parts: string[] = [head.slice(0, -1), ',"skipped":['];
  let first = true;
  const lines = createInterface({ input: createReadStream(reportPath, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === '') continue;
    parts.push((first ? '' : ',') + line);
    first = false;
    if (parts.length >= 1024) flush();
  }
  parts.push(']}');
  flush();
  function flush(): void {
    process.stdout.write(parts.splice(0).join(''));
  }
  process.stdout.write('\n');
}

function printHuman(ctx: CommandContext, s: ScanSummary, reportPath: string, seconds: number): void {
  const n = (x: number): string => x.toLocaleString('en-US');
  const row = (label: string, t: { entries: number; bytes: number }, note: string): string =>
    `  ${label.padEnd(12)} ${n(t.entries).padStart(10)}  ${formatBytes(t.bytes).padStart(9)}  ${note}`.trimEnd();
  ctx.out(`Scanned ${s.roots.join(', ')} in ${seconds.toFixed(2)} s (attributes read with ${s.probe})`);
  ctx.out(`  ${n(s.files)} files, ${n(s.dirs)} folders`);
  ctx.out('');
  ctx.out(row('back up', s.decisions.backup, 'incremental'));
  ctx.out(row('full only', s.decisions['backup-full'], 'encrypted: uploaded whole on every change, no reuse'));
  ctx.out(row('sparse', s.decisions['backup-sparse'], 'holes are recorded, not stored'));
  ctx.out(row('skipped', s.decisions.skip, ''));
  for (const [reason, t] of Object.entries(s.skipped)) ctx.out(`      ${reason.padEnd(20)} ${n(t.entries).padStart(6)}  ${formatBytes(t.bytes).padStart(9)}`);
  const unknown = Object.entries(s.unknown).filter(([, v]) => v > 0);
  if (unknown.length > 0) {
    ctx.out(`  unknown attributes (treated as not set): ${unknown.map(([k, v]) => `${k} on ${n(v)} files`).join(', ')}`);
  }
  ctx.out('');
  ctx.out(`A backup would read ${formatBytes(s.bytesToRead)}.`);
  ctx.out(s.decisions.skip.entries > 0 ? `Skipped entries are listed in ${reportPath}` : 'Nothing is skipped.');
}
