// Restores with the addon's writer, blob opener and blob writer absent (as where it did not build): small files take
// Node's synchronous calls, and blobs are read and opened on the event loop and written by Node's file calls.
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { type AskedKernels, portableAsked } from '../support/kernels.js';
import { seededBytes } from '../support/seeded.js';
import { type VaultFixture, damageObject, describeTree, makeVault, packsByContent } from '../support/vaults.js';

let f: VaultFixture;
let k: AskedKernels;
beforeEach(async () => {
  f = await makeVault();
  k = portableAsked();
});
afterEach(() => f.cleanup());

describe('restore without the native writer and blob opener', () => {
  it('restores small files byte for byte with modes and nanosecond mtimes, replacing a link in the way', async () => {
    const src = f.path('src');
    await mkdir(join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(src, 'sub', `f${i}`), seededBytes(1000 * i + 1, i));
    await writeFile(join(src, 'small.txt'), 'hello\n');
    await backup(f.vault, [src], { kernels: k.kernels, scratchDir: f.path('scratch') });
    const victim = f.path('victim.txt');
    await writeFile(victim, 'untouched');
    await mkdir(join(f.path('target'), 'src'), { recursive: true });
    await symlink(victim, join(f.path('target'), 'src', 'small.txt'));
    const r = await restore(f.vault, 'latest', f.path('target'), { kernels: k.kernels, recoveryFolder: f.path('recovery') });
    expect([...k.asked]).toEqual(expect.arrayContaining(['fileWriter', 'blobOpener', 'blobWriter']));
    expect(r.errors).toEqual([]);
    expect(r.files).toBe(21);
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(await describeTree(src));
    expect(await readFile(victim, 'utf8')).toBe('untouched');
  });

  it('reports a folder in the way of a file, and restores the rest', async () => {
    const src = f.path('src');
    await mkdir(src);
    await writeFile(join(src, 'a'), 'a');
    await writeFile(join(src, 'b'), 'b');
    await backup(f.vault, [src], { kernels: k.kernels, scratchDir: f.path('scratch') });
    await mkdir(join(f.path('target'), 'src', 'a'), { recursive: true });
    const r = await restore(f.vault, 'latest', f.path('target'), { kernels: k.kernels, recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([{ path: 'src/a', reason: 'a folder is in the way of a file' }]);
    expect(await readFile(join(f.path('target'), 'src', 'b'), 'utf8')).toBe('b');
  });

  it('opens the chunks of large and small files on the event loop; a damaged pack fails only the files that need it', async () => {
    const src = f.path('src');
    await mkdir(src);
    for (let i = 0; i < 4; i++) await writeFile(join(src, `small-${i}`), seededBytes(300_000, 70 + i));
    for (let i = 0; i < 2; i++) await writeFile(join(src, `large-${i}`), seededBytes(3 * 1024 * 1024, 80 + i));
    await backup(f.vault, [src], { kernels: k.kernels, scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 });
    const whole = await restore(f.vault, 'latest', f.path('whole'), { kernels: k.kernels, recoveryFolder: f.path('recovery') });
    expect(whole.errors).toEqual([]);
    expect(await describeTree(join(f.path('whole'), 'src'))).toEqual(await describeTree(src));

    // A pack of file data only (the folders' listings are elsewhere), damaged inside its first blob.
    const { dataPacks } = await packsByContent(f);
    await damageObject(f, dataPacks[0]!, 100);
    const r = await restore(f.vault, 'latest', f.path('target'), { kernels: k.kernels, recoveryFolder: f.path('recovery') });
    expect(r.errors.length).toBeGreaterThan(0);
    expect(r.errors.length).toBeLessThan(6);
    expect(r.files).toBe(6 - r.errors.length);
    for (const e of r.errors) expect(e.reason).toMatch(/failed authentication/);
  });
});
