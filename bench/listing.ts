/**
 * Listing benchmark: what folder listings cost a backup that has nothing to do. A tree of 5,000 small files
 * (50 folders of 100, under 5 parents; a few names in each folder are not ASCII) is backed up once in-process into a
 * local vault (the full backup, timed once), then backed up again unchanged several times: that second backup reads
 * no file data, so its time is the walk (listings, probes, decisions) and the reuse of the parent's trees (one
 * unchanged backup runs untimed first).
 * Also timed alone: the depth-first walk of the tree through {@link FolderLister} (open, list, probe), no vault.
 *
 * The tree is built once under the system temp folder and reused; the vault is made anew on each run.
 * Wall and CPU time (user and system, all threads) are given: on a loaded machine CPU time varies less.
 * `--runs N` sets the runs per figure (default 9); `--json` prints the figures as JSON.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalStore, Vault, backup, defaultProbe } from '../src/index.js';
import { FolderLister } from '../src/scan/folder.js';
import type { OpenFolder } from '../src/scan/folder.js';

const root = join(tmpdir(), 'vaultpath-bench-tree-5k');
const runsAt = process.argv.indexOf('--runs');
const RUNS = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 9;
// Not the default cost: the key is derived once per run, outside every timed step.
const KDF = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

async function buildTree(): Promise<void> {
  if (existsSync(join(root, '.complete'))) return;
  await rm(root, { recursive: true, force: true });
  for (let d = 0; d < 50; d++) {
    const dir = join(root, `p${Math.floor(d / 10)}`, `d${d}`);
    await mkdir(dir, { recursive: true });
    const names = Array.from({ length: 100 }, (_, f) => (f % 20 === 0 ? `résumé-${f}.txt` : f % 33 === 0 ? `日本-${f}.txt` : `file-${f}.txt`));
    await Promise.all(names.map((n, f) => writeFile(join(dir, n), `content of ${d}/${f}\n`.repeat(1 + (f % 7)))));
  }
  await writeFile(join(root, '.complete'), '');
}

/** CPU time (user and system, all threads) since `from`, in milliseconds: less swayed than wall time by a loaded machine. */
function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Walks the tree depth first as the backup does: each folder opened from its parent's descriptor, listed, probed. */
async function walkOnce(): Promise<number> {
  const lister = new FolderLister({ root, probe: defaultProbe() });
  let entries = 0;
  const visit = async (folder: OpenFolder): Promise<void> => {
    const listed = await lister.listOpen(folder);
    entries += listed.length;
    for (const e of listed) {
      if (e.kind !== 'dir' || e.decision.kind === 'skip') continue;
      const child = lister.openChild(folder, e);
      if (!('fd' in child)) continue;
      try {
        await visit(child);
      } finally {
        lister.close(child);
      }
    }
  };
  const top = lister.openRoot();
  if (!('fd' in top)) throw new Error(`cannot open ${root}`);
  try {
    await visit(top);
  } finally {
    lister.close(top);
  }
  return entries;
}

async function main(): Promise<void> {
  await buildTree();
  const work = await mkdtemp(join(tmpdir(), 'vaultpath-bench-listing-'));
  try {
    const store = await LocalStore.open(join(work, 'vault'), { create: true, durable: false });
    const vault = await Vault.create(store, 'benchmark passphrase, not secret', { kdf: KDF });
    const options = (i: number) => ({ scratchDir: join(work, 'scratch'), reportPath: join(work, `report-${i}.jsonl`) });
    // The tree into the page cache, the walk's code compiled: the first few walks run at a fraction of their speed.
    let entries = 0;
    for (let i = 0; i < 8; i++) entries = await walkOnce();
    const walks: number[] = [];
    const walksCpu: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      entries = await walkOnce();
      walksCpu.push(cpuMs(c0));
      walks.push(performance.now() - t0);
    }
    const t0 = performance.now();
    const first = await backup(vault, [root], options(0));
    const firstMs = performance.now() - t0;
    if (first.status !== 'complete') throw new Error(`the first backup ended ${first.status}`);
    await backup(vault, [root], options(1)); // one unchanged backup untimed: the code paths compiled, the trees cached
    const again: number[] = [];
    const againCpu: number[] = [];
    for (let i = 2; i <= RUNS + 1; i++) {
      const t = performance.now();
      const c0 = process.cpuUsage();
      const r = await backup(vault, [root], options(i));
      againCpu.push(cpuMs(c0));
      again.push(performance.now() - t);
      if (r.bytesRead !== 0 || r.filesUnchanged !== first.files) throw new Error('the unchanged backup read files again');
    }
    const figures = { files: first.files, entries, probe: defaultProbe().name, runs: RUNS, walkMs: median(walks), walkCpuMs: median(walksCpu), firstBackupMs: firstMs, unchangedBackupMs: median(again), unchangedCpuMs: median(againCpu), unchangedRunsMs: again };
    if (process.argv.includes('--json')) {
      console.log(JSON.stringify(figures, null, 2));
      return;
    }
    const ms = (x: number): string => `${x.toFixed(1).padStart(8)} ms`;
    console.log(`listings: ${first.files.toLocaleString('en-US')} files, ${entries.toLocaleString('en-US')} entries (warm; probe: ${figures.probe})`);
    console.log(`${`walk (list + probe), median of ${RUNS}`.padEnd(44)} ${ms(figures.walkMs)}   CPU ${ms(figures.walkCpuMs)}`);
    console.log(`${'first backup (one run)'.padEnd(44)} ${ms(firstMs)}`);
    console.log(`${`unchanged backup, median of ${RUNS}`.padEnd(44)} ${ms(figures.unchangedBackupMs)}   CPU ${ms(figures.unchangedCpuMs)}`);
    console.log(`${'  runs'.padEnd(44)} ${again.map((x) => x.toFixed(0)).join(' ')}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
