// Names that are not valid UTF-8 are backed up as their bytes (nameRaw), in name-byte order, and matched again by an
// incremental backup; they are opened by their bytes, never by a string that would name another file or none.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { compareNodes, nodeNameBytes } from '../../src/repo/tree.js';
import { reportLines } from '../support/backup-race.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('backup of names that are not UTF-8', () => {
  it('stores a folder and files named by raw bytes as nameRaw, sorted by bytes, with their content, and reuses them unchanged', async () => {
    const src = f.path('src');
    await mkdir(src);
    const rawDir = Buffer.from([0x66, 0xff, 0x6f]); // "f\xffo"
    const rawFile = Buffer.from([0x61, 0xc3, 0x28]); // an invalid two-byte sequence
    const srcBytes = Buffer.from(src);
    const sep = Buffer.from('/');
    await mkdir(Buffer.concat([srcBytes, sep, rawDir]));
    await writeFile(Buffer.concat([srcBytes, sep, rawDir, sep, Buffer.from('inside.txt')]), 'inside the raw folder');
    await writeFile(Buffer.concat([srcBytes, sep, rawDir, sep, rawFile]), Buffer.alloc(700 * 1024, 'raw file, small path '));
    await writeFile(Buffer.concat([srcBytes, sep, rawFile]), 'a raw name at the top');
    await writeFile(join(src, 'g'), 'plain');
    await writeFile(join(src, 'é'), 'UTF-8, two bytes: c3 a9');

    const first = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report1.jsonl') });
    expect(await reportLines(first.reportPath)).toEqual([]);
    expect(first.status).toBe('complete');
    expect(first.files).toBe(5);
    const index = await f.vault.loadIndex();
    const rootTree = await f.vault.readTree(index, (await f.vault.readSnapshot(first.snapshot!)).tree);
    const top = await f.vault.readTree(index, rootTree.nodes[0]!.subtree!);
    // Sorted by name bytes: 61 c3 28 < 66 ff 6f < 67 < c3 a9.
    expect(top.nodes.map((n) => nodeNameBytes(n).toString('hex'))).toEqual([rawFile, rawDir, Buffer.from('g'), Buffer.from('é')].map((b) => b.toString('hex')));
    expect([...top.nodes].sort(compareNodes)).toEqual(top.nodes);
    const [fileNode, dirNode] = top.nodes;
    expect(fileNode).toMatchObject({ nameRaw: rawFile.toString('base64'), type: 'file', size: 21 });
    expect(fileNode!.name).toBeUndefined();
    expect(dirNode).toMatchObject({ nameRaw: rawDir.toString('base64'), type: 'dir' });
    const inner = await f.vault.readTree(index, dirNode!.subtree!);
    expect(inner.nodes.map((n) => [n.name, n.nameRaw])).toEqual([[undefined, rawFile.toString('base64')], ['inside.txt', undefined]]);
    const read = async (ids: readonly string[]) => Buffer.concat(await Promise.all(ids.map((h) => f.vault.readBlob(index, Buffer.from(h, 'hex'), ObjectType.data))));
    expect((await read(inner.nodes[1]!.content!)).toString()).toBe('inside the raw folder');
    expect((await read(inner.nodes[0]!.content!)).equals(Buffer.alloc(700 * 1024, 'raw file, small path '))).toBe(true);
    expect((await read(fileNode!.content!)).toString()).toBe('a raw name at the top');

    // Incremental: the parent's nodes are found by their name bytes, so nothing is read again.
    const second = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report2.jsonl') });
    expect(second.filesUnchanged).toBe(5);
    expect(second.bytesRead).toBe(0);
    const again = await f.vault.readTree(await f.vault.loadIndex(), (await f.vault.readSnapshot(second.snapshot!)).tree);
    expect(again.nodes[0]!.subtree).toBe(rootTree.nodes[0]!.subtree); // the same tree, kept

    // It restores (names that are not UTF-8 are created as the restorer maps them; their bytes are its concern).
    const out = await restore(f.vault, second.snapshot!, f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(out.errors).toEqual([]);
  });
});
