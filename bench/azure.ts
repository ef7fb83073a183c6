/**
 * Azure benchmark: throughput of the Azure Blob store against Azurite on loopback, and a whole backup and restore
 * through the CLI into it, beside the same into a local vault. Not part of `npm test`; `npm run bench:azure`.
 *
 * - Store: 16 packs of 16 MiB written as the backup writes them (2 at a time, 4 MiB blocks, 4 blocks in flight
 *   each), then downloaded to files, 2 at a time.
 * - CLI: a 256 MiB corpus (3 files of 64 MiB, 1,000 files of 1–128 KiB, one 32 MiB copy) backed up and restored.
 * Azurite keeps everything in memory, so its own speed (JavaScript, one process) is part of what is measured.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStore } from '../src/transfer/azure-store.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from '../test/support/azurite-process.js';

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

async function main(): Promise<void> {
  await rm(base, { recursive: true, force: true });
  await mkdir(base, { recursive: true });
  const azurite = await startAzurite();
  const credential = { accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY };
  try {
    // Store throughput.
    const store = await AzureStore.open(`${azurite.endpoint}/${AZURITE_ACCOUNT}/bench-store`, { credential, proxy: false, create: true });
    const packs = Array.from({ length: 16 }, (_, i) => ({ name: `data/${String(i).padStart(2, '0')}/pack`, body: bytes(16 * MiB, i + 1) }));
    let t = performance.now();
    await pool(packs, 2, (p) => store.put(p.name, p.body, { ifNotExists: true }));
    const putSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    await pool(packs, 2, async (p) => void (await store.download(p.name, join(base, 'download.bin'))));
    const getSeconds = (performance.now() - t) / 1000;
    await store.close();
    const total = 16 * 16;
    console.log(`Azure store against Azurite on loopback: ${total} MiB as 16 packs of 16 MiB`);
    console.log(`  upload   ${putSeconds.toFixed(2)} s  ${(total / putSeconds).toFixed(0)} MiB/s`);
    console.log(`  download ${getSeconds.toFixed(2)} s  ${(total / getSeconds).toFixed(0)} MiB/s`);

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
  } finally {
    await azurite.stop();
    await rm(base, { recursive: true, force: true });
  }
}

await main();
