import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { verify } from '../../src/engine/verify.js';
import { Vault } from '../../src/repo/vault.js';
import { Folder, objectName } from '../../src/repo/layout.js';
import { PACK_TRAILER_LENGTH } from '../../src/repo/pack.js';
import { PackWriter } from '../support/pack-writer.js';
import { MAX_TREE_DEPTH, type Tree, encodeTree } from '../../src/repo/tree.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { seededBytes } from '../support/seeded.js';
import { HandSnapshot, dirNode, fileNode } from '../support/restore-trees.js';
import { AfterListStore } from '../support/damage-stores.js';
import { PASSPHRASE, type VaultFixture, damageObject, describeTree, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

async function packNames(): Promise<string[]> {
  const out: string[] = [];
  for await (const o of f.store.list(`${Folder.data}/`)) out.push(o.name);
  return out;
}

async function source(files: Record<string, Buffer>): Promise<string> {
  const src = f.path('src');
  for (const [rel, data] of Object.entries(files)) {
    await mkdir(join(src, rel, '..'), { recursive: true });
    await writeFile(join(src, rel), data);
  }
  return src;
}

describe('verify --read-data checks every pack against its name', () => {
  it('reports a pack with bytes appended, or a flipped byte in its header, though every chunk still opens', async () => {
    const src = await source({ 'a.bin': seededBytes(300_000, 1), 'b.bin': seededBytes(200_000, 2) });
    const { snapshot } = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const packs = await packNames();
    expect(packs).toHaveLength(1); // data and trees together
    const pack = packs[0]!;
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);

    await appendFile(f.path('vault', ...pack.split('/')), Buffer.from('appended'));
    const appended = await verify(f.vault, { readData: true });
    expect(appended.damage).toEqual([expect.objectContaining({ object: pack, code: 'VP_ID_MISMATCH', snapshots: [snapshot] })]);
    expect(appended.damage[0]!.files.length).toBeGreaterThan(0);

    // Back to its bytes, then one byte of the sealed header (before the trailer) flipped: no blob is read from there.
    const path = f.path('vault', ...pack.split('/'));
    const bytes = await (await import('node:fs/promises')).readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 8));
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
    await damageObject(f, pack, bytes.length - 8 - PACK_TRAILER_LENGTH - 20);
    const flipped = await verify(f.vault, { readData: true });
    expect(flipped.damage.map((d) => [d.object, d.code])).toEqual([[pack, 'VP_ID_MISMATCH']]);
    // Every file still restores: the pack's blobs are intact.
    const r = await restore(f.vault, snapshot!, f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
  });

  it('reads a pack larger than its window in pieces, opening the blobs across window edges', async () => {
    // One pack of about 20 MiB, read in 16 MiB windows: some blob lies across the edge.
    const src = await source({ 'big.bin': randomBytes(20 * 1024 * 1024) });
    await backup(f.vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 32 * 1024 * 1024, scratchCapacity: 128 * 1024 * 1024 });
    const packs = await packNames();
    expect(packs).toHaveLength(1);
    const clean = await verify(f.vault, { readData: true });
    expect(clean.damage).toEqual([]);
    expect(clean.packsRead).toBe(1);
    // A byte flipped past the first window: the blob holding it is named, and the pack too.
    await damageObject(f, packs[0]!, 16 * 1024 * 1024 + 5);
    const damaged = await verify(f.vault, { readData: true });
    expect(damaged.damage.map((d) => d.code).sort()).toEqual(['VP_AUTH_FAILED', 'VP_ID_MISMATCH']);
  }, 60_000);
});

describe('verify while backups write', () => {
  it('reports no damage when a backup completes between its listing of snapshots, index and packs', async () => {
    const src = await source({ 'first.bin': seededBytes(100_000, 1) });
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    let n = 0;
    const ran: string[] = [];
    const store = new AfterListStore(f.store, async (prefix) => {
      if (![`${Folder.snapshots}/`, `${Folder.index}/`, `${Folder.data}/`].includes(prefix) || ran.includes(prefix)) return;
      ran.push(prefix);
      // Another backup, through the vault's own store (not this decorator), with data no earlier one stored.
      await writeFile(join(src, `new-${++n}.bin`), randomBytes(50_000));
      await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    });
    const vault = await Vault.open(store, PASSPHRASE);

    const result = await verify(vault, { readData: true });

    expect(ran.sort()).toEqual([`${Folder.data}/`, `${Folder.index}/`, `${Folder.snapshots}/`]);
    expect(result.damage).toEqual([]);
    // Every backup that ran meanwhile is sound: a verify from scratch agrees.
    expect((await verify(f.vault, { readData: true })).damage).toEqual([]);
    expect((await f.vault.listSnapshots()).length).toBe(4);
  });
});

describe('a damaged index object', () => {
  it('is reported by name, and backups and restores go on: the blobs it listed are stored again', async () => {
    const src = await source({ 'a.bin': seededBytes(300_000, 1), 'sub/b.txt': Buffer.from('hello') });
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const indexes: string[] = [];
    for await (const o of f.store.list(`${Folder.index}/`)) indexes.push(o.name);
    expect(indexes).toHaveLength(1);
    await damageObject(f, indexes[0]!, 40);

    const report = await verify(f.vault);
    expect(report.damage).toContainEqual(expect.objectContaining({ object: indexes[0], code: 'VP_AUTH_FAILED' }));
    expect(report.damage.find((d) => d.object === indexes[0])!.problem).toMatch(/Delete this index object/);

    await writeFile(join(src, 'c.txt'), 'more');
    const second = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(second.status).toBe('complete');
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(await describeTree(src));
  });
});

describe('a deep chain of trees', () => {
  it('100,000 folders deep: verify stops at the depth limit and reports VP_FORMAT_LIMIT, reading no more trees', async () => {
    const parts: Buffer[] = [];
    const writer = new PackWriter(f.vault.keys, (p) => void parts.push(...p));
    const chain: string[] = []; // chain[0] is the deepest
    for (let i = 0; i < 100_000; i++) {
      const below = chain.at(-1);
      const tree: Tree = below ? { nodes: [{ name: 'd', type: 'dir', mode: 0o755, mtimeNs: '0', subtree: below }] } : { nodes: [] };
      const plain = encodeTree(tree);
      const id = f.vault.ids.id(plain);
      await writer.add(ObjectType.tree, id, plain);
      chain.push(id.toString('hex'));
    }
    const info = await writer.finish();
    await f.store.put(objectName(Folder.data, info.id), Buffer.concat(parts));
    await f.vault.writeIndex(info.entries.map((e) => ({ ...e, packId: info.id })));
    const root = chain.at(-1)!;
    const snapshot = await f.vault.writeSnapshot({
      version: 1, time: '2026-01-01T00:00:00.000Z', hostname: 'host', paths: ['/deep'], tree: root, parent: null, status: 'complete', warnings: 0,
      stats: { files: 0, dirs: 100_000, bytesRead: 0, bytesNew: 0, bytesStored: 0, skipped: 0 }, program: 'vaultpath test',
    });

    const result = await verify(f.vault);

    // The root is at depth 1: the tree one level below the deepest allowed is the one reported.
    const tooDeep = chain[chain.length - 1 - MAX_TREE_DEPTH]!;
    expect(result.damage).toEqual([expect.objectContaining({ object: `tree ${tooDeep}`, code: 'VP_FORMAT_LIMIT', snapshots: [snapshot] })]);
    expect(result.trees).toBe(MAX_TREE_DEPTH + 1);
  }, 120_000);
});

describe('the order of the report', () => {
  it('names damage found in the trees with each listing\'s files first, then its folders, the last first', async () => {
    // Three chunks the index never had, in root/a/x, root/b/y and root/z.
    const [a, b, z] = ['a1', 'b2', 'c3'].map((byte) => byte.repeat(32));
    const s = new HandSnapshot(f);
    const root = s.tree({
      nodes: [dirNode('a', s.tree({ nodes: [fileNode('x', 1, [a!])] })), dirNode('b', s.tree({ nodes: [fileNode('y', 1, [b!])] })), fileNode('z', 1, [z!])],
    });
    await s.seal(root);
    const result = await verify(f.vault);
    const snapshot = result.damage[0]!.snapshots[0]!.slice(0, 8);
    expect(result.damage.map((d) => [d.object, d.files])).toEqual([
      [`chunk ${z}`, [`${snapshot}:z`]],
      [`chunk ${b}`, [`${snapshot}:b/y`]],
      [`chunk ${a}`, [`${snapshot}:a/x`]],
    ]);
    expect(result.trees).toBe(3);
  });
});
