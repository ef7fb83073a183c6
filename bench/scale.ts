/**
 * Scale benchmark for the vault index: synthetic vaults of 1M, 10M and 50M blobs (16 blobs a pack, random ids),
 * their index objects written through the real format (index-writer, sealed, into a local vault), then loaded in a
 * fresh process for each way of loading: 12-byte id prefixes or whole ids, from the vault's index objects, from
 * them while writing the local index cache, and from the cache. Each reports:
 * - bytes per blob: heap plus array buffers after the load, less before, after a full GC, divided by the blobs
 *   (and the index's own count of its typed arrays);
 * - load rate: blobs per second for the whole load (list, read, open, check, add, sort; or read and authenticate
 *   the cache file);
 * - lookups per second, hits (ids known to be in the vault) and misses (random ids);
 * - peak RSS of the loading process.
 * With `--backup`, two real backups of a small folder into the largest vault follow (the first writes the index
 * cache in its scratch folder, the second loads it), with their time and peak RSS.
 *
 * Vaults are built once under the system temp folder and reused (`--fresh` rebuilds). `--sizes 1,10` picks sizes
 * in millions (default 1,10,50). Not part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../src/transfer/local-store.js';
import { Vault } from '../src/repo/vault.js';
import { writeIndexObject } from '../src/repo/index-writer.js';
import { backup } from '../src/engine/backup.js';
import type { IndexEntry } from '../src/repo/index-file.js';
import { ObjectType } from '../src/crypto/object-type.js';

const PASSPHRASE = 'a passphrase for the scale benchmark';
// Not the default cost: the key is derived once per run, outside every timed step.
const KDF = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
/** Blobs per index object (a backup writes one every few hundred packs; compaction writes larger ones). */
const PER_OBJECT = 250_000;
const BLOBS_PER_PACK = 16;
/** Known ids kept for the hit lookups. */
const SAMPLE = 200_000;
const LOOKUPS = 1_000_000;

const folder = (millions: number): string => join(tmpdir(), `vaultpath-bench-scale-${millions}m`);

/** Writes a vault of `millions` × 10^6 blobs, and a file of sampled ids, unless already there. */
async function build(millions: number, fresh: boolean): Promise<void> {
  const dir = folder(millions);
  if (!fresh && existsSync(join(dir, '.complete'))) return;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const store = await LocalStore.open(join(dir, 'vault'), { create: true, durable: false });
  const vault = await Vault.create(store, PASSPHRASE, { kdf: KDF });
  const total = millions * 1_000_000;
  const sample = Buffer.alloc(32 * SAMPLE);
  const every = Math.floor(total / SAMPLE);
  const started = performance.now();
  for (let done = 0; done < total; ) {
    const n = Math.min(PER_OBJECT, total - done);
    const ids = randomBytes(32 * n);
    const packs = randomBytes(32 * Math.ceil(n / BLOBS_PER_PACK));
    const entries: IndexEntry[] = [];
    for (let i = 0; i < n; i++) {
      const id = ids.subarray(32 * i, 32 * i + 32);
      const p = Math.floor(i / BLOBS_PER_PACK);
      const plaintextLength = 524_288 + ((i * 7919) % 1_048_576);
      entries.push({
        id,
        type: i % 50 === 0 ? ObjectType.tree : ObjectType.data,
        codec: 0,
        packId: packs.subarray(32 * p, 32 * p + 32),
        offset: (i % BLOBS_PER_PACK) * 1_600_000,
        length: plaintextLength + 48,
        plaintextLength,
      });
      const g = done + i;
      if (g % every === 0 && g / every < SAMPLE) id.copy(sample, 32 * (g / every));
    }
    await writeIndexObject(vault.store, vault.keys, entries);
    done += n;
  }
  await writeFile(join(dir, 'sample'), sample);
  await writeFile(join(dir, '.complete'), '');
  console.error(`built ${millions}M blobs in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

interface Figures {
  blobs: number;
  bytesPerBlob: number;
  typedBytesPerBlob: number;
  loadSeconds: number;
  loadPerSecond: number;
  hitsPerSecond: number;
  missesPerSecond: number;
  peakRssMiB: number;
  fromCache: number;
}

/** How a child loads: id form, and whether through the index cache (`write` when the cache is made by this load). */
interface Way {
  readonly form: 'prefixes' | 'whole ids';
  readonly cache: 'none' | 'write' | 'read';
}

/** In a child process: loads the vault of `millions` the way `way` says, and measures. */
async function measure(millions: number, way: Way): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const dir = folder(millions);
  const store = await LocalStore.open(join(dir, 'vault'), { durable: false });
  const vault = await Vault.open(store, PASSPHRASE);
  const sample = await readFile(join(dir, 'sample'));
  const used = async (): Promise<number> => {
    // Buffers freed by a collection are released a tick later.
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = await used();
  const cacheDir = join(dir, 'cache');
  if (way.cache === 'write') await rm(cacheDir, { recursive: true, force: true });
  if (way.cache !== 'none') await mkdir(cacheDir, { recursive: true });
  const t0 = performance.now();
  const index = await vault.loadIndex({ prefixIds: way.form === 'prefixes', cacheDir: way.cache === 'none' ? undefined : cacheDir });
  const blobs = index.size; // the first lookup settles what was added
  const loadSeconds = (performance.now() - t0) / 1000;
  const after = await used();

  const hits: Buffer[] = [];
  for (let i = 0; i < SAMPLE; i++) hits.push(sample.subarray(32 * i, 32 * i + 32));
  let found = 0;
  let t = performance.now();
  for (let i = 0; i < LOOKUPS; i++) if (index.has(hits[i % SAMPLE]!)) found++;
  const hitsPerSecond = LOOKUPS / ((performance.now() - t) / 1000);
  if (found !== LOOKUPS) throw new Error(`${LOOKUPS - found} sampled ids not found`);
  const misses = Array.from({ length: SAMPLE }, () => randomBytes(32));
  t = performance.now();
  for (let i = 0; i < LOOKUPS; i++) if (index.has(misses[i % SAMPLE]!)) found++;
  const missesPerSecond = LOOKUPS / ((performance.now() - t) / 1000);
  await index.close();
  return {
    blobs,
    bytesPerBlob: (after - before) / blobs,
    typedBytesPerBlob: index.bytes / blobs,
    loadSeconds,
    loadPerSecond: blobs / loadSeconds,
    hitsPerSecond,
    missesPerSecond,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    fromCache: vault.lastIndexLoad?.cached ?? 0,
  };
}

interface BackupFigures {
  seconds: number;
  peakRssMiB: number;
  files: number;
  bytesNew: number;
  fromCache: number;
  indexObjectsRead: number;
}

/** In a child process: backs up a small folder (made once) into the vault of `millions`, through the index cache. */
async function backupInto(millions: number): Promise<BackupFigures> {
  const dir = folder(millions);
  const source = join(dir, 'source');
  if (!existsSync(source)) {
    for (let d = 0; d < 10; d++) {
      await mkdir(join(source, `d${d}`), { recursive: true });
      for (let i = 0; i < 100; i++) await writeFile(join(source, `d${d}`, `f${i}`), randomBytes(1000 + 997 * i));
    }
  }
  const store = await LocalStore.open(join(dir, 'vault'), { durable: false });
  const vault = await Vault.open(store, PASSPHRASE);
  const t0 = performance.now();
  const r = await backup(vault, [source], { scratchDir: join(dir, 'scratch'), reportPath: join(dir, 'report.json') });
  return {
    seconds: (performance.now() - t0) / 1000,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    files: r.files,
    bytesNew: r.bytesNew,
    fromCache: vault.lastIndexLoad?.cached ?? 0,
    indexObjectsRead: vault.lastIndexLoad?.read ?? 0,
  };
}

function child<T>(args: string[]): T {
  const run = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=12288', fileURLToPath(import.meta.url), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) throw new Error(`${args.join(' ')} failed (status ${run.status})`);
  return JSON.parse(run.stdout) as T;
}

const WAYS: readonly Way[] = [
  { form: 'prefixes', cache: 'none' },
  { form: 'whole ids', cache: 'none' },
  { form: 'whole ids', cache: 'write' },
  { form: 'whole ids', cache: 'read' },
  { form: 'prefixes', cache: 'read' },
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    process.stdout.write(JSON.stringify(await measure(Number(args[1]), JSON.parse(args[2]!) as Way)));
    return;
  }
  if (args[0] === '--backup') {
    process.stdout.write(JSON.stringify(await backupInto(Number(args[1]))));
    return;
  }
  const at = args.indexOf('--sizes');
  const sizes = (at >= 0 ? args[at + 1]! : '1,10,50').split(',').map(Number);
  const rows: string[] = [];
  for (const millions of sizes) {
    await build(millions, args.includes('--fresh'));
    for (const way of WAYS) {
      const f = child<Figures>(['--measure', String(millions), JSON.stringify(way)]);
      const source = way.cache === 'none' ? 'vault' : way.cache === 'write' ? 'vault, cache written' : way.form === 'prefixes' ? 'cache (matches confirmed)' : 'cache';
      rows.push(
        `| ${millions}M | ${way.form} | ${source} | ${f.bytesPerBlob.toFixed(1)} (${f.typedBytesPerBlob.toFixed(1)} typed) | ` +
          `${f.loadSeconds.toFixed(1)} s, ${(f.loadPerSecond / 1e6).toFixed(2)}M/s | ` +
          `${(f.hitsPerSecond / 1e6).toFixed(2)}M/s | ${(f.missesPerSecond / 1e6).toFixed(2)}M/s | ${f.peakRssMiB.toFixed(0)} MiB |`,
      );
      console.error(rows[rows.length - 1]);
    }
  }
  console.log('| blobs | ids | loaded from | bytes/blob | load | hits | misses | peak RSS |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  if (args.includes('--backup')) {
    const largest = Math.max(...sizes);
    console.log(`\nA backup of 1,000 files (53 MB) into the ${largest}M-blob vault, fresh process each:\n`);
    console.log('| run | time | peak RSS | blobs from the cache | index objects read | bytes new |');
    console.log('|---|---|---|---|---|---|');
    for (const run of ['first', 'second']) {
      const b = child<BackupFigures>(['--backup', String(largest)]);
      console.log(`| ${run} | ${b.seconds.toFixed(1)} s | ${b.peakRssMiB.toFixed(0)} MiB | ${b.fromCache} | ${b.indexObjectsRead} | ${b.bytesNew} |`);
    }
  }
}

await main();
