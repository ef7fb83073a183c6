import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { verify } from '../../src/engine/verify.js';
import { Vault } from '../../src/repo/vault.js';
import { LocalStore } from '../../src/transfer/local-store.js';
import type { Body, PutOptions } from '../../src/transfer/store.js';
import { openIndex } from '../../src/repo/index-file.js';
import { Folder, idFromName } from '../../src/repo/layout.js';
import { PackWriter } from '../support/pack-writer.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { encodeTree } from '../../src/repo/tree.js';
import { seededBytes } from '../support/seeded.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { isRoot, mountTmpfs, unmount } from '../support/trees.js';
import { PASSPHRASE, type VaultFixture, backupAbortedAfter, damageObject, describeTree, makeVault, packsByContent } from '../support/vaults.js';

const MiB = 1024 * 1024;
let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

async function sourceOf(files: number, size: number, seed = 0): Promise<string> {
  const src = f.path('src');
  await mkdir(src, { recursive: true });
  for (let i = 0; i < files; i++) await writeFile(join(src, `f${i}`), seededBytes(size, seed + i));
  return src;
}

/** A Store decorator that records when each put starts and finishes (write ordering is observed, not assumed). */
class RecordingStore extends PassThroughStore {
  readonly events: { kind: 'start' | 'done'; name: string }[] = [];
  override async put(name: string, body: Body, options?: PutOptions): Promise<void> {
    this.events.push({ kind: 'start', name });
    await this.inner.put(name, body, options);
    this.events.push({ kind: 'done', name });
  }
}

describe('write ordering', () => {
  it('acknowledges every pack an index lists before writing that index, and everything before the snapshot', async () => {
    const src = await sourceOf(10, MiB);
    const recording = new RecordingStore(f.store);
    const vault = await Vault.open(recording, PASSPHRASE);
    await backup(vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 });
    const done = (name: string): number => recording.events.findIndex((e) => e.kind === 'done' && e.name === name);
    const start = (name: string): number => recording.events.findIndex((e) => e.kind === 'start' && e.name === name);
    const snapshot = recording.events.find((e) => e.name.startsWith('snapshots/'))!.name;
    for (const e of recording.events.filter((x) => x.kind === 'done' && x.name !== snapshot)) {
      expect(done(e.name)).toBeLessThan(start(snapshot));
    }
    let indexes = 0;
    for (const e of recording.events.filter((x) => x.kind === 'start' && x.name.startsWith('index/'))) {
      const id = idFromName(Folder.index, e.name)!;
      for (const entry of openIndex(vault.keys, id, await f.store.get(e.name)).entries) {
        expect(done(`data/${entry.packId.toString('hex').slice(0, 2)}/${entry.packId.toString('hex')}`)).toBeLessThan(start(e.name));
      }
      indexes++;
    }
    expect(indexes).toBeGreaterThan(0);
  });
});

describe('a destination that fails', () => {
  it('fails the backup with its own error, and never blames the source files', async () => {
    const src = await sourceOf(6, MiB, 800);
    class FailingPacks extends RecordingStore {
      override async put(name: string, body: Body, options?: PutOptions): Promise<void> {
        if (name.startsWith('data/')) throw new Error('the vault disk is on fire');
        return super.put(name, body, options);
      }
    }
    const vault = await Vault.open(new FailingPacks(f.store), PASSPHRASE);
    const reportPath = f.path('report.jsonl');
    await expect(backup(vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024, reportPath })).rejects.toThrow('the vault disk is on fire');
    expect((await f.vault.listSnapshots()).length).toBe(0);
    expect(await readFile(reportPath, 'utf8')).toBe(''); // no source file was reported unreadable
  });
});

describe('an interrupted backup', () => {
  it('writes no snapshot, leaves earlier snapshots intact, and the next backup does not upload again what was stored', async () => {
    const src = await sourceOf(4, MiB, 50);
    const first = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    for (let i = 0; i < 16; i++) await writeFile(join(src, `g${i}`), seededBytes(MiB, 200 + i));
    const { error: aborted, storedAtAbort } = await backupAbortedAfter(f.vault, [src], 4 * MiB, { scratchDir: f.path('scratch') });
    expect(aborted).toMatchObject({ code: 'VP_ABORTED' });
    expect(storedAtAbort).toBeGreaterThanOrEqual(4 * MiB);
    expect((await f.vault.listSnapshots()).map((s) => s.id)).toEqual([first.snapshot]);
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
    expect((await readdir(f.path('scratch'))).filter((n) => n.startsWith('run-'))).toEqual([]); // the run's staging folder is gone

    const resumed = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(resumed.bytesNew).toBeLessThanOrEqual(16 * MiB - storedAtAbort + 64 * 1024);
    await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(await describeTree(src));
  });

  it('killed (SIGKILL) in the middle leaves a vault that verifies, and the next backup reuses the stored packs', async () => {
    const src = await sourceOf(12, 8 * MiB, 300); // large enough that the kill lands mid-backup
    const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [cli, 'backup', src, '--vault', f.path('vault'), '--scratch', f.path('scratch')], {
      env: { ...process.env, VAULTPATH_PASSPHRASE: PASSPHRASE },
      stdio: 'ignore',
    });
    const packsIn = async (): Promise<number> => {
      let n = 0;
      for await (const o of f.store.list('data/')) if (o.size > 0) n++;
      return n;
    };
    for (let i = 0; i < 500 && (await packsIn()) < 1; i++) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const stored = await packsIn();
    expect(stored).toBeGreaterThan(0);
    expect((await f.vault.listSnapshots()).length).toBe(0);
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
    expect(await readdir(f.path('scratch'))).toContainEqual(expect.stringMatching(new RegExp(`^run-${child.pid}-`)));
    const next = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    // The killed run's staging folder was cleaned up when the next run started.
    expect((await readdir(f.path('scratch'))).filter((n) => n.startsWith('run-'))).toEqual([]);
    expect(next.bytesNew).toBeLessThan(96 * MiB - 8 * MiB); // at least a pack's worth was adopted, not uploaded again
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
  });
});

describe('a restore killed (SIGKILL) in the middle', () => {
  it('leaves temporary files and packs that the next restore into the same target removes, then restores whole', async () => {
    const src = await sourceOf(40, 2 * MiB, 700);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const target = f.path('target');
    const recovery = f.path('recovery');
    const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [cli, 'restore', 'latest', '--vault', f.path('vault'), '--target', target, '--recovery-folder', recovery], {
      env: { ...process.env, VAULTPATH_PASSPHRASE: PASSPHRASE },
      stdio: 'ignore',
    });
    const temps = async (): Promise<string[]> => {
      try {
        return (await readdir(join(target, 'src'))).filter((n) => n.startsWith('.vaultpath-restore-'));
      } catch {
        return [];
      }
    };
    // Killed while a file is being written (one is under its temporary name), whatever the machine's speed.
    for (let i = 0; i < 15_000 && (await temps()).length === 0; i++) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await temps()).not.toEqual([]);
    expect(await readdir(recovery)).toContainEqual(expect.stringMatching(new RegExp(`^run-${child.pid}-`)));

    const r = await restore(f.vault, 'latest', target, { recoveryFolder: recovery });
    expect(r.errors).toEqual([]);
    expect(await temps()).toEqual([]);
    expect((await readdir(recovery)).filter((n) => n.startsWith('run-'))).toEqual([]);
    expect(await describeTree(join(target, 'src'))).toEqual(await describeTree(src));
  });
});

describe('Ctrl-C during a backup', () => {
  it('stops the CLI with exit code 130, writes no snapshot, and leaves a vault that verifies', async () => {
    const src = await sourceOf(12, 8 * MiB, 900); // large enough that Ctrl-C lands mid-backup
    const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [cli, 'backup', src, '--vault', f.path('vault'), '--scratch', f.path('scratch')], {
      env: { ...process.env, VAULTPATH_PASSPHRASE: PASSPHRASE },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const packs = async (): Promise<number> => {
      let n = 0;
      for await (const _ of f.store.list('data/')) n++;
      return n;
    };
    for (let i = 0; i < 500 && (await packs()) < 1; i++) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(130);
    expect(stderr).toMatch(/VP_ABORTED/);
    expect((await f.vault.listSnapshots()).length).toBe(0);
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
    expect((await readdir(f.path('scratch'))).filter((n) => n.startsWith('run-'))).toEqual([]); // an interrupted run still removes its staging folder
  });
});

describe('two backups into one vault at the same time', () => {
  it('both end with valid snapshots that restore', async () => {
    const a = f.path('a');
    const b = f.path('b');
    await mkdir(a);
    await mkdir(b);
    for (let i = 0; i < 6; i++) {
      await writeFile(join(a, `a${i}`), seededBytes(MiB, 400 + i));
      await writeFile(join(b, `b${i}`), seededBytes(MiB, i % 2 ? 400 + i : 500 + i)); // half shared with a
    }
    const other = await Vault.open(await LocalStore.open(f.path('vault')), PASSPHRASE);
    const [ra, rb] = await Promise.all([
      backup(f.vault, [a], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 }),
      backup(other, [b], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 }),
    ]);
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
    await restore(f.vault, ra.snapshot!, f.path('ta'), { recoveryFolder: f.path('recovery') });
    await restore(f.vault, rb.snapshot!, f.path('tb'), { recoveryFolder: f.path('recovery') });
    expect(await describeTree(join(f.path('ta'), 'a'))).toEqual(await describeTree(a));
    expect(await describeTree(join(f.path('tb'), 'b'))).toEqual(await describeTree(b));
  });
});

describe('damage in the vault', () => {
  /** Backs up 8 files; returns the packs that hold only file data, and those that hold trees. */
  async function backedUp(): Promise<{ src: string; dataPacks: string[]; treePacks: string[] }> {
    const src = await sourceOf(8, MiB, 600);
    await backup(f.vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 });
    return { src, ...(await packsByContent(f)) };
  }

  it('a damaged tree fails the folder it lists, names it, and the restore still returns', async () => {
    await backedUp();
    const index = await f.vault.loadIndex();
    const [, tree] = [...index.entries()].find(([, at]) => at.type === ObjectType.tree)!;
    const hex = tree.packId.toString('hex');
    await damageObject(f, `data/${hex.slice(0, 2)}/${hex}`, tree.offset + 40); // inside the tree blob's ciphertext
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors.length).toBeGreaterThan(0);
    expect(r.errors[0]!.reason).toMatch(/listing cannot be read: tree [0-9a-f]{64} in pack .* failed authentication/);
  });

  it('a damaged pack fails only the files that need it, names them, and verify --read-data reports it with those files', async () => {
    const { dataPacks } = await backedUp();
    await damageObject(f, dataPacks[0]!, 100);
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors.length).toBeGreaterThan(0);
    expect(r.errors.length).toBeLessThan(8);
    expect(r.files).toBe(8 - r.errors.length);
    for (const e of r.errors) expect(e.reason).toMatch(/failed authentication|does not hash|tree/);
    const v = await verify(f.vault, { readData: true });
    expect(v.damage.length).toBeGreaterThan(0);
    expect(v.damage[0]!.snapshots.length).toBe(1);
    expect(v.damage.flatMap((d) => d.files).length).toBeGreaterThan(0);
  });

  it('a damaged pack fails the large files that need it part-way through, leaving no partial file behind', async () => {
    const src = await sourceOf(6, 3 * MiB, 700);
    await backup(f.vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 });
    const { dataPacks } = await packsByContent(f);
    // Inside the pack's first blob: a chunk from the middle of the backup.
    await damageObject(f, dataPacks[Math.floor(dataPacks.length / 2)]!, 100);
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors.length).toBeGreaterThan(0);
    expect(r.errors.length).toBeLessThan(6);
    for (const e of r.errors) expect(e.reason).toMatch(/failed authentication/);
    const restored = await readdir(join(f.path('target'), 'src'));
    expect(restored.sort()).toEqual(
      Array.from({ length: 6 }, (_, i) => `f${i}`)
        .filter((name) => !r.errors.some((e) => e.path === `src/${name}`))
        .sort(),
    );
    for (const name of restored) expect((await readFile(join(f.path('target'), 'src', name))).equals(await readFile(join(src, name))), name).toBe(true);
  });

  it('an aborted restore rejects with VP_ABORTED and leaves no partial file behind', async () => {
    const src = await sourceOf(12, 3 * MiB, 800);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const controller = new AbortController();
    const restoring = restore(f.vault, 'latest', f.path('target'), {
      recoveryFolder: f.path('recovery'),
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await expect(restoring).rejects.toMatchObject({ code: 'VP_ABORTED' });
    const left = await readdir(join(f.path('target'), 'src'));
    expect(left.length).toBeLessThan(12);
    expect(left.filter((name) => name.startsWith('.vaultpath-restore-'))).toEqual([]);
    for (const name of left) expect((await readFile(join(f.path('target'), 'src', name))).equals(await readFile(join(src, name))), name).toBe(true);
  });

  it('a missing pack is found by the structure check alone', async () => {
    const { dataPacks } = await backedUp();
    await unlink(f.path('vault', ...dataPacks[1]!.split('/')));
    const v = await verify(f.vault);
    expect(v.damage.some((d) => /is missing/.test(d.problem))).toBe(true);
  });
});

describe('a snapshot with hostile names', () => {
  it('is refused name by name: nothing is created outside the target, other files are restored', async () => {
    // Build, with the vault's own keys, a tree whose names try to leave the target.
    const data = Buffer.from('payload');
    const dataId = f.vault.ids.id(data);
    const file = (name: string) => ({ name, type: 'file' as const, mode: 0o644, mtimeNs: '1', size: data.length, content: [dataId.toString('hex')] });
    const inner = encodeTree({ nodes: [file('../../escaped.txt'), file('..'), file('a/b'), file('ok.txt'), file('nul\u0000name'), file('')] });
    const innerId = f.vault.ids.id(inner);
    const root = encodeTree({ nodes: [{ name: 'src', type: 'dir', mode: 0o755, mtimeNs: '1', subtree: innerId.toString('hex') }] });
    const rootId = f.vault.ids.id(root);
    const parts: Buffer[] = [];
    const w = new PackWriter(f.vault.keys, (p) => {
      parts.push(...p);
    });
    const e1 = await w.add(ObjectType.data, dataId, data);
    const e2 = await w.add(ObjectType.tree, innerId, inner);
    const e3 = await w.add(ObjectType.tree, rootId, root);
    const info = await w.finish();
    await f.store.put(`data/${info.id.toString('hex').slice(0, 2)}/${info.id.toString('hex')}`, Buffer.concat(parts));
    await f.vault.writeIndex([e1, e2, e3].map((e) => ({ ...e, packId: info.id })));
    await f.vault.writeSnapshot({
      version: 1, time: '2026-11-22T00:00:00.000Z', hostname: 'x', paths: ['/src'], tree: rootId.toString('hex'), parent: null,
      status: 'complete', warnings: 0, stats: { files: 6, dirs: 1, bytesRead: 0, bytesNew: 0, bytesStored: 0, skipped: 0 }, program: 'test',
    });
    const target = f.path('deep', 'er', 'target');
    const r = await restore(f.vault, 'latest', target, { recoveryFolder: f.path('recovery') });
    expect(r.files).toBe(1);
    expect(r.errors.map((e) => e.reason)).toEqual([
      'refused: a path separator in the name could lead outside the target',
      'refused: the name ".." could lead outside the target',
      'refused: a path separator in the name could lead outside the target',
      'refused: a NUL character in the name could lead outside the target',
      'refused: an empty name could lead outside the target',
    ]);
    expect(await readdir(f.path('deep'))).toEqual(['er']);
    expect(await readdir(f.path('deep', 'er'))).toEqual(['target']);
    expect(await readdir(join(target, 'src'))).toEqual(['ok.txt']);
  });
});

describe('a vault that runs out of space', () => {
  it('fails the backup with VP_STORE_FULL naming the vault; no snapshot is written and earlier ones restore', async (context) => {
    const mnt = f.path('small');
    await mkdir(mnt);
    if (!isRoot() || !mountTmpfs(mnt)) context.skip(); // a real full disk needs root to mount a small tmpfs
    try {
      const store = await LocalStore.open(mnt);
      const vault = await Vault.create(store, PASSPHRASE, { kdf: { memoryKiB: 64, iterations: 1, parallelism: 1 } });
      const src = f.path('src');
      await mkdir(src);
      await writeFile(join(src, 'small'), randomBytes(100_000));
      const ok = await backup(vault, [src], { scratchDir: f.path('scratch') });
      await writeFile(join(src, 'large'), randomBytes(3 * MiB));
      const e = await backup(vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 }).then(() => undefined, (err: unknown) => err);
      expect(e).toMatchObject({ code: 'VP_STORE_FULL', retryable: false, message: expect.stringContaining(mnt) });
      expect((await vault.listSnapshots()).map((s) => s.id)).toEqual([ok.snapshot]);
      await rm(join(src, 'large'));
      const r = await restore(vault, ok.snapshot!, f.path('target'), { recoveryFolder: f.path('recovery') });
      expect(r.errors).toEqual([]);
    } finally {
      unmount(mnt);
    }
  });
});

describe('changing the passphrase', () => {
  it('opens with the new passphrase only, and every snapshot still restores', async () => {
    const src = await sourceOf(2, 100_000, 700);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    await f.vault.changePassphrase('a brand new passphrase here', { kdf: { memoryKiB: 64, iterations: 1, parallelism: 1 } });
    await expect(Vault.open(f.store, PASSPHRASE)).rejects.toMatchObject({ code: 'VP_WRONG_PASSPHRASE' });
    const reopened = await Vault.open(f.store, 'a brand new passphrase here');
    await restore(reopened, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(await describeTree(src));
  });
});
