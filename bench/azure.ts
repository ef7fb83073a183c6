/**
 * Azure benchmark: requests per GiB of a backup into the Azure Blob store, throughput of the store against Azurite
 * on loopback, and a whole backup and restore through the CLI into it, beside the same into a local vault. Not part
 * of `npm test`; `npm run bench:azure` runs every part, `npm run bench:azure -- requests` (or `store`, `cli`) one.
 *
 * - Requests: a 1.06 GiB mixed corpus (5 files of 128 MiB, a 64 MiB copy of a part of one, 3,000 files of
 *   1–255 KiB) backed up by the library (the store chain the CLI opens: retry, then the Azure store), with packs
 *   in 4 MiB blocks (`singlePutLimit: 0`, as before single puts) and with the default single-put limit. Requests
 *   are counted by kind by a pass-through server in front of Azurite; the wall time is taken in separate runs
 *   straight to Azurite (the counting server shares the benchmark's event loop). Rounds alternate the two modes.
 * - Store: 16 packs of 16 MiB written 2 at a time, in blocks and as one Put Blob each, then downloaded to files,
 *   2 at a time; `VAULTPATH_BENCH_ROUNDS` rounds (3) of each comparison.
 * - CLI: a 256 MiB corpus (3 files of 64 MiB, 1,000 files of 1–128 KiB, one 32 MiB copy) backed up and restored.
 * - Unchanged (`unchanged`): an unchanged backup by the library (vault opened afresh each run, as a new process
 *   would: the metadata cache is read from disk) of a corpus of 10,000 small files in 110 folders and 2 files of
 *   64 MiB, into a local vault, into Azurite without the metadata cache (`metadataCache: false`) and with it (the
 *   default), each into a vault of its own that has had a first backup and one unchanged backup (which fills the
 *   cache); at least 5 rounds (`VAULTPATH_BENCH_ROUNDS`), alternating the order, medians; then the requests of one
 *   more unchanged backup of each Azure vault, by kind, through the counting pass-through server. Run only when
 *   named (`npm run bench:azure -- unchanged`).
 * Azurite keeps everything in memory, so its own speed (JavaScript, one process) is part of what is measured.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backup } from '../src/engine/backup.js';
import { Vault } from '../src/repo/vault.js';
import { AzureStore, type AzureStoreOptions } from '../src/transfer/azure-store.js';
import { openStore } from '../src/transfer/open.js';
import type { MetadataCacheOptions } from '../src/repo/metadata-cache.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, type AzuriteProcess, startAzurite } from '../test/support/azurite-process.js';
import { startFaultServer } from '../test/support/fault-server.js';

const MiB = 1024 * 1024;
const base = join(tmpdir(), 'vaultpath-bench-azure');
const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const PASSPHRASE = 'benchmark passphrase, not secret';

function bytes(length: number, seed: number): Buffer {
  return createCipheriv('aes-256-ctr', Buffer.alloc(32, seed), Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

function timed(args: string[], env: Record<string, string>): { seconds: number; rssMiB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, cli, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vaultpath ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const [seconds, kib] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { seconds: seconds!, rssMiB: Math.round(kib! / 1024) };
}

/** The kind of an Azure Blob request, from its method and query. */
function requestKind(method: string, url: string): string {
  const q = new URL(url, 'http://x').searchParams;
  const comp = q.get('comp');
  if (method === 'PUT' && q.get('restype') === 'container') return 'Create Container';
  if (method === 'PUT') return comp === 'block' ? 'Put Block' : comp === 'blocklist' ? 'Put Block List' : 'Put Blob';
  if (method === 'GET' && comp === 'list') return 'List Blobs';
  if (method === 'GET') return 'Get Blob';
  if (method === 'HEAD') return 'Get Blob Properties';
  if (method === 'DELETE') return 'Delete Blob';
  return `${method} ${comp ?? ''}`.trim();
}

let containers = 0;

/** Rounds of each timed comparison, alternating the order of the modes. */
function rounds(): number {
  return Math.max(1, Number(process.env.VAULTPATH_BENCH_ROUNDS ?? 3));
}

/**
 * One backup of `corpus` into a new container, straight to Azurite or through a counting pass-through server.
 * Returns the wall time (opening the vault excluded) and, when counted, the requests by kind and the bytes sent.
 */
async function backupInto(azurite: AzuriteProcess, corpus: string, singlePutLimit: number | undefined, count: boolean) {
  const server = count ? await startFaultServer(azurite.endpoint, () => 'pass') : undefined;
  const endpoint = server?.endpoint ?? azurite.endpoint;
  const azure: Omit<AzureStoreOptions, 'create' | 'signal'> = { credential: { accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY }, proxy: false, ...(singlePutLimit !== undefined ? { singlePutLimit } : {}) };
  const scratch = join(base, `scratch-${containers}`);
  try {
    const store = await openStore(`${endpoint}/${AZURITE_ACCOUNT}/requests-${containers++}`, { create: true, stores: { azure } });
    const vault = await Vault.create(store, PASSPHRASE, { kdf: { memoryKiB: 64, iterations: 1, parallelism: 1 } });
    const before = server?.requests.length ?? 0;
    const bytesBefore = server?.bytesIn() ?? 0;
    const t = performance.now();
    const result = await backup(vault, [corpus], { scratchDir: scratch });
    const seconds = (performance.now() - t) / 1000;
    const kinds: Record<string, number> = {};
    for (const r of server?.requests.slice(before) ?? []) {
      const k = requestKind(r.method, r.url);
      kinds[k] = (kinds[k] ?? 0) + 1;
    }
    return { seconds, kinds, bytesSent: (server?.bytesIn() ?? 0) - bytesBefore, bytesStored: result.bytesStored };
  } finally {
    await server?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

async function requestsPerGiB(azurite: AzuriteProcess): Promise<void> {
  const corpus = join(base, 'corpus-1g');
  await mkdir(join(corpus, 'small'), { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(corpus, `large-${i}.bin`), bytes(128 * MiB, 70 + i));
  await writeFile(join(corpus, 'copy.bin'), bytes(128 * MiB, 70).subarray(0, 64 * MiB));
  let logical = 5 * 128 * MiB + 64 * MiB;
  for (let i = 0; i < 3000; i++) {
    const size = 1024 + ((i * 7919) % (254 * 1024));
    logical += size;
    await writeFile(join(corpus, 'small', `f${i}.bin`), bytes(size, 5000 + i));
  }
  const GiB = 1024 * MiB;
  const modes = [
    ['blocks (singlePutLimit 0)', 0],
    ['single put (default)', undefined],
  ] as const;
  const times = new Map<string, number[]>(modes.map(([label]) => [label, []]));
  console.log(`Requests per GiB: a backup of a ${(logical / GiB).toFixed(2)} GiB mixed corpus into Azurite on loopback`);
  for (const [label, limit] of modes) {
    const r = await backupInto(azurite, corpus, limit, true);
    const total = Object.values(r.kinds).reduce((a, b) => a + b, 0);
    const perGiB = (n: number): string => (n / (r.bytesStored / GiB)).toFixed(1);
    const kinds = Object.entries(r.kinds)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    console.log(`  ${label.padEnd(26)} ${total} requests, ${perGiB(total)} per GiB stored (${(r.bytesStored / GiB).toFixed(2)} GiB in packs; ${(r.bytesSent / GiB).toFixed(2)} GiB sent): ${kinds}`);
  }
  for (let round = 0; round < rounds(); round++) {
    for (const [label, limit] of round % 2 === 0 ? modes : [...modes].reverse()) times.get(label)!.push((await backupInto(azurite, corpus, limit, false)).seconds);
  }
  for (const [label, seconds] of times) {
    const sorted = [...seconds].sort((a, b) => a - b);
    const median = (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2;
    console.log(`  ${label.padEnd(26)} wall time ${seconds.map((s) => s.toFixed(2)).join(' / ')} s (median ${median.toFixed(2)} s, ${(logical / MiB / median).toFixed(0)} MiB/s)`);
  }
  await rm(corpus, { recursive: true, force: true });
}

async function main(): Promise<void> {
  await rm(base, { recursive: true, force: true });
  await mkdir(base, { recursive: true });
  const azurite = await startAzurite();
  const credential = { accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY };
  const parts = process.argv.slice(2);
  const wanted = (part: string): boolean => parts.length === 0 || parts.includes(part);
  try {
    if (wanted('requests')) await requestsPerGiB(azurite);
    if (wanted('store')) await storeThroughput(azurite, credential);
    if (wanted('cli')) await cliRuns(azurite);
    if (parts.includes('unchanged')) await unchangedBackups(azurite);
  } finally {
    await azurite.stop();
    await rm(base, { recursive: true, force: true });
  }
}

async function storeThroughput(azurite: AzuriteProcess, credential: { accountName: string; accountKey: string }): Promise<void> {
  const packs = Array.from({ length: 16 }, (_, i) => ({ name: `data/${String(i).padStart(2, '0')}/pack`, body: bytes(16 * MiB, i + 1) }));
  const total = 16 * 16;
  const modes = [
    ['blocks of 4 MiB', 0],
    ['one Put Blob each', undefined],
  ] as const;
  const rows = new Map<string, string[]>(modes.map(([label]) => [label, []]));
  for (let round = 0; round < rounds(); round++) {
    for (const [label, singlePutLimit] of round % 2 === 0 ? modes : [...modes].reverse()) {
      const store = await AzureStore.open(`${azurite.endpoint}/${AZURITE_ACCOUNT}/bench-store-${containers++}`, { credential, proxy: false, create: true, ...(singlePutLimit !== undefined ? { singlePutLimit } : {}) });
      let t = performance.now();
      await pool(packs, 2, (p) => store.put(p.name, p.body, { ifNotExists: true }));
      const putSeconds = (performance.now() - t) / 1000;
      t = performance.now();
      await pool(packs, 2, async (p) => void (await store.download(p.name, join(base, 'download.bin'))));
      const getSeconds = (performance.now() - t) / 1000;
      await store.close();
      rows.get(label)!.push(`${(total / putSeconds).toFixed(0)}/${(total / getSeconds).toFixed(0)}`);
    }
  }
  console.log(`Azure store against Azurite on loopback: ${total} MiB as 16 packs of 16 MiB, 2 at a time; MiB/s up/down, each round`);
  for (const [label, row] of rows) console.log(`  ${label.padEnd(18)} ${row.join('  ')}`);
}

async function cliRuns(azurite: AzuriteProcess): Promise<void> {
  {
    // Whole backup and restore through the CLI.
    const corpus = join(base, 'corpus');
    await mkdir(join(corpus, 'small'), { recursive: true });
    for (let i = 0; i < 3; i++) await writeFile(join(corpus, `large-${i}.bin`), bytes(64 * MiB, 50 + i));
    await writeFile(join(corpus, 'copy.bin'), bytes(32 * MiB, 50));
    for (let i = 0; i < 1000; i++) await writeFile(join(corpus, 'small', `f${i}.bin`), bytes(1024 + ((i * 7919) % (127 * 1024)), 1000 + i));
    const env = { VAULTPATH_PASSPHRASE: PASSPHRASE, AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT, AZURE_STORAGE_KEY: AZURITE_KEY };
    const rows: string[] = [];
    for (const [label, vault] of [
      ['Azure (Azurite)', `${azurite.endpoint}/${AZURITE_ACCOUNT}/bench-cli`],
      ['local folder', join(base, 'local-vault')],
    ] as const) {
      spawnSync(process.execPath, [cli, 'init', '--vault', vault], { env: { ...process.env, ...env } });
      const b = timed(['backup', corpus, '--vault', vault, '--scratch', join(base, 'scratch')], env);
      const r = timed(['restore', 'latest', '--vault', vault, '--target', join(base, `target-${rows.length}`), '--recovery-folder', join(base, 'recovery')], env);
      const logical = (3 * 64 + 32) * MiB + 1000 * 64 * 1024;
      const mbs = (s: number): string => (logical / 1e6 / s).toFixed(0);
      rows.push(`${label.padEnd(18)} backup ${b.seconds.toFixed(2)} s (${mbs(b.seconds)} MB/s, ${b.rssMiB} MiB RSS)   restore ${r.seconds.toFixed(2)} s (${mbs(r.seconds)} MB/s, ${r.rssMiB} MiB RSS)`);
    }
    console.log('Whole CLI runs, a 0.29 GiB corpus:');
    for (const row of rows) console.log(`  ${row}`);
  }
}

await main();

/**
 * Unchanged backups into a local vault, into Azurite without the metadata cache and with it: wall times (medians)
 * and the requests of one unchanged backup of each Azure vault.
 */
async function unchangedBackups(azurite: AzuriteProcess): Promise<void> {
  const corpus = join(base, 'corpus-unchanged');
  let files = 0;
  for (let d = 0; d < 10; d++) {
    for (let s = 0; s < 10; s++) {
      const dir = join(corpus, `d${d}`, `s${s}`);
      await mkdir(dir, { recursive: true });
      for (let i = 0; i < 100; i++, files++) await writeFile(join(dir, `f${i}.bin`), bytes(1024 + ((files * 7919) % (15 * 1024)), 9000 + files));
    }
  }
  for (let i = 0; i < 2; i++, files++) await writeFile(join(corpus, `large-${i}.bin`), bytes(64 * MiB, 90 + i));
  const azure = { credential: { accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY }, proxy: false as const };
  const modes = [
    { label: 'local vault', location: (_endpoint?: string) => join(base, 'unchanged-local'), cache: undefined },
    { label: 'Azure, no metadata cache', location: (endpoint = azurite.endpoint) => `${endpoint}/${AZURITE_ACCOUNT}/unchanged-nocache`, cache: false },
    { label: 'Azure, metadata cache', location: (endpoint = azurite.endpoint) => `${endpoint}/${AZURITE_ACCOUNT}/unchanged-cache`, cache: undefined },
  ] as const;
  const scratch = (label: string): string => join(base, `scratch-${label.replace(/\W+/g, '-')}`);
  /** One backup of the corpus into the vault at `location`; the seconds of the backup and of open + backup. */
  const run = async (label: string, location: string, cache: MetadataCacheOptions | false | undefined, create = false) => {
    const t0 = performance.now();
    const store = await openStore(location, { create, stores: { azure } });
    const vault = create ? await Vault.create(store, PASSPHRASE, { kdf: { memoryKiB: 64, iterations: 1, parallelism: 1 } }) : await Vault.open(store, PASSPHRASE);
    const t1 = performance.now();
    const result = await backup(vault, [corpus], { scratchDir: scratch(label), ...(cache !== undefined ? { metadataCache: cache } : {}) });
    const t2 = performance.now();
    if (!create && result.filesUnchanged !== files) throw new Error(`${label}: ${result.filesUnchanged} of ${files} files unchanged`);
    return { backup: (t2 - t1) / 1000, whole: (t2 - t0) / 1000 };
  };
  for (const m of modes) {
    await run(m.label, m.location(), m.cache, true);
    await run(m.label, m.location(), m.cache); // the first unchanged run: fills the cache, warms the page cache
  }
  const times = new Map<string, { backup: number[]; whole: number[] }>(modes.map((m) => [m.label, { backup: [], whole: [] }]));
  for (let round = 0; round < Math.max(5, rounds()); round++) {
    for (const m of round % 2 === 0 ? modes : [...modes].reverse()) {
      const t = await run(m.label, m.location(), m.cache);
      times.get(m.label)!.backup.push(t.backup);
      times.get(m.label)!.whole.push(t.whole);
    }
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
  };
  const local = median(times.get(modes[0].label)!.backup);
  console.log(`Unchanged backup of ${files} files in 110 folders (2 of 64 MiB), vault opened afresh each run (medians of ${times.get(modes[0].label)!.backup.length}):`);
  for (const [label, t] of times) {
    const b = median(t.backup);
    console.log(`  ${label.padEnd(26)} backup ${b.toFixed(3)} s (${(b / local).toFixed(2)} × local; runs ${t.backup.map((x) => x.toFixed(2)).join(' / ')}), open + backup ${median(t.whole).toFixed(3)} s`);
  }
  for (const m of modes.slice(1)) {
    const server = await startFaultServer(azurite.endpoint, () => 'pass');
    try {
      await run(m.label, m.location(server.endpoint), m.cache);
      const kinds: Record<string, number> = {};
      for (const r of server.requests) {
        const k = requestKind(r.method, r.url);
        kinds[k] = (kinds[k] ?? 0) + 1;
      }
      const list = Object.entries(kinds).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
      console.log(`  requests, ${m.label.padEnd(26)} ${server.requests.length} (open + backup): ${list}`);
    } finally {
      await server.close();
    }
  }
  await rm(corpus, { recursive: true, force: true });
}
