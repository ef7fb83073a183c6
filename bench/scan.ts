/**
 * Scan benchmark: walk, probe and rule evaluation over a 100,000-entry tree, against
 * `find ROOT -printf '%i %n %s %b %T@\n'` on the same warm tree (find reads the same facts: inode, links, size,
 * blocks, mtime). Target: the scan within 2.5× find's time.
 *
 * The tree (1,000 folders of 99 files, plus their parents) is built once under the system temp folder and reused.
 * `--json` prints the figures as JSON.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { ScanSummary, defaultProbe, scanBatches } from '../src/index.js';

const root = join(tmpdir(), 'vaultpath-bench-tree-100k');

async function buildTree(): Promise<void> {
  if (existsSync(join(root, '.complete'))) return;
  for (let d = 0; d < 1000; d++) {
    const dir = join(root, `d${Math.floor(d / 100)}`, `s${d}`);
    await mkdir(dir, { recursive: true });
    await Promise.all(Array.from({ length: 99 }, (_, f) => writeFile(join(dir, `f${f}.txt`), 'x'.repeat(f * 10))));
  }
  await writeFile(join(root, '.complete'), '');
}

async function scanOnce(): Promise<number> {
  const summary = new ScanSummary();
  for await (const batch of scanBatches([root])) for (const e of batch) summary.add(e);
  return summary.files;
}

async function main(): Promise<void> {
  await buildTree();
  const files = await scanOnce(); // warms the tree into the page cache
  const bench = new Bench({ time: 0, warmupTime: 0, iterations: 7 });
  bench.add("find -printf '%i %n %s %b %T@'", () => {
    const r = spawnSync('find', [root, '-printf', '%i %n %s %b %T@\n'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error('find failed');
  });
  bench.add(`vaultpath scan (probe: ${defaultProbe().name})`, scanOnce);
  await bench.run();
  const rows = bench.tasks.map((t) => {
    if (t.result.state !== 'completed') throw new Error(`${t.name}: ${t.result.state}`);
    return { name: t.name, medianMs: t.result.latency.p50!, meanMs: t.result.period };
  });
  const ratio = rows[1]!.medianMs / rows[0]!.medianMs;
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ entries: files + 1011, rows, ratio }, null, 2));
    return;
  }
  console.log(`scan of a ${(files + 1011).toLocaleString('en-US')}-entry tree (warm), median of 7 runs`);
  for (const r of rows) console.log(`${r.name.padEnd(40)} ${(r.medianMs / 1000).toFixed(3).padStart(8)} s`);
  console.log(`${'ratio scan / find'.padEnd(40)} ${ratio.toFixed(2).padStart(8)}   (target ≤ 2.5)`);
}

await main();
