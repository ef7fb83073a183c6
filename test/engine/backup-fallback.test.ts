// Backups with the addon's sealing absent (as where it did not build): small files are read, identified and sealed
// on the calling thread, large chunks on the sealing workers, packs written with Node's calls and hashed with
// node:crypto. The result is the same vault format.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chunkStream } from '../../src/chunk/fastcdc.js';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { verify } from '../../src/engine/verify.js';
import { type AskedKernels, portableAsked } from '../support/kernels.js';
import { seededBytes } from '../support/seeded.js';
import { type VaultFixture, describeTree, makeVault } from '../support/vaults.js';

let f: VaultFixture;

/** The ids of `data`'s chunks as the vault's chunker cuts them, with their lengths. */
async function chunkIds(data: Buffer): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const c of chunkStream([data], f.vault.keys.gearTable, f.vault.config.chunker)) out.set(f.vault.ids.id(c.parts).toString('hex'), c.length);
  return out;
}
let k: AskedKernels;
beforeEach(async () => {
  f = await makeVault();
  k = portableAsked();
});
afterEach(() => f.cleanup());

describe('backup without the native sealer', () => {
  it('backs up small files that restore byte for byte, into packs that verify', async () => {
    const src = f.path('src');
    await mkdir(join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 30; i++) await writeFile(join(src, 'sub', `f${i}`), seededBytes(997 * i + 1, i));
    await writeFile(join(src, 'same-a'), seededBytes(5000, 99));
    await writeFile(join(src, 'same-b'), seededBytes(5000, 99));
    await writeFile(join(src, 'empty'), '');
    const r = await backup(f.vault, [src], { kernels: k.kernels, scratchDir: f.path('scratch') });
    expect([...k.asked]).toEqual(expect.arrayContaining(['fileSealer', 'packWriter']));
    expect(r.files).toBe(33);
    expect(r.bytesNew).toBe(r.bytesRead - 5000); // the second copy is a duplicate
    const v = await verify(f.vault, { readData: true });
    expect(v.damage).toEqual([]);
    expect(v.packsRead).toBeGreaterThan(0);
    const out = await restore(f.vault, 'latest', f.path('target'), { kernels: k.kernels, recoveryFolder: f.path('recovery') });
    expect(out.errors).toEqual([]);
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(await describeTree(src));
  });

  it('seals the chunks of large files on the workers, and only the new chunks of a changed file, restoring byte for byte', async () => {
    const src = f.path('src');
    await mkdir(src);
    const big = seededBytes(16 * 1024 * 1024, 5);
    await writeFile(join(src, 'big'), big);
    await writeFile(join(src, 'big-copy'), big);
    const first = await backup(f.vault, [src], { kernels: k.kernels, scratchDir: f.path('scratch') });
    expect(k.asked).toContain('chunkSealer');
    expect(first.bytesNew).toBe(big.length);
    const before = await chunkIds(big);
    seededBytes(100_000, 6).copy(big, 8 * 1024 * 1024);
    await writeFile(join(src, 'big'), big);
    const second = await backup(f.vault, [src], { kernels: k.kernels, scratchDir: f.path('scratch') });
    expect(second.bytesRead).toBe(big.length);
    // Exactly the chunks the change created are new. (How many bytes that is depends on where the vault's keyed
    // chunker cuts: usually about 1 MiB, rarely up to two 8 MiB chunks, so no fixed bound would do.)
    let changed = 0;
    for (const [id, length] of await chunkIds(big)) if (!before.has(id)) changed += length;
    expect(changed).toBeGreaterThan(0);
    expect(second.bytesNew).toBe(changed);
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
    const out = await restore(f.vault, 'latest', f.path('target'), { kernels: k.kernels, recoveryFolder: f.path('recovery') });
    expect(out.errors).toEqual([]);
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(await describeTree(src));
  });
});
