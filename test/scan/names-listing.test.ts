// Folders are listed as strings and listed again as bytes only when a name holds U+FFFD. These hold the listing to
// the order of name bytes (a tree's order), which is not JavaScript's UTF-16 order for characters above U+FFFF,
// and to every name's bytes, for names that are not UTF-8 beside genuine U+FFFD and names above U+FFFF.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { compareNodes, nodeNameBytes } from '../../src/repo/tree.js';
import { FolderLister, compareCodePoints } from '../../src/scan/folder.js';
import { defaultProbe } from '../../src/scan/probe.js';
import { type ScanEntry, scan, scanTotals } from '../../src/scan/scan.js';
import { reportLines } from '../support/backup-race.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

const hex = (b: Buffer): string => b.toString('hex');
/** An entry's name bytes: its raw bytes, or its name as UTF-8. */
const nameBytes = (e: ScanEntry): Buffer => e.nameRaw ?? Buffer.from(e.relativePath.slice(e.relativePath.lastIndexOf('/') + 1));
const byBytes = (names: readonly Buffer[]): string[] => [...names].sort(Buffer.compare).map(hex);

async function treeOf(snapshotId: string, ...path: number[]) {
  const index = await f.vault.loadIndex();
  let tree = await f.vault.readTree(index, (await f.vault.readSnapshot(snapshotId)).tree);
  tree = await f.vault.readTree(index, tree.nodes[0]!.subtree!); // the source root
  for (const i of path) tree = await f.vault.readTree(index, tree.nodes[i]!.subtree!);
  return { index, tree };
}

describe.runIf(process.platform === 'linux')('folder listings', () => {
  // U+E000 is EE 80 80, U+1F600 is F0 9F 98 80: byte order puts U+E000 first; UTF-16 puts U+1F600 (D83D DE00) first.
  const names = ['\uE000', '\u{1F600}', 'a', 'Z', 'é', '\uFFFF', '\u{10000}x', '\uD7FF'];

  it('gives a folder in the order of its name bytes, also where UTF-16 order differs (above U+FFFF against U+E000–U+FFFF)', async () => {
    const src = f.path('src');
    await mkdir(join(src, 'sub'), { recursive: true });
    for (const n of names) {
      await writeFile(join(src, n), n);
      await writeFile(join(src, 'sub', n), n);
    }
    const expected = byBytes(names.map((n) => Buffer.from(n)));
    // Not the order of JavaScript strings: else this test would not tell the two apart.
    expect([...names].sort().map((n) => hex(Buffer.from(n)))).not.toEqual(expected);

    const lister = new FolderLister({ root: src, probe: defaultProbe() });
    const sub = await lister.list('sub');
    expect(sub.map((e) => hex(nameBytes(e)))).toEqual(expected);
    expect(sub.every((e) => e.nameRaw === undefined && e.decision.kind === 'backup' && e.stats?.kind === 'file')).toBe(true);

    const first = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report.jsonl') });
    expect(await reportLines(first.reportPath)).toEqual([]);
    expect(first.files).toBe(names.length * 2);
    const { tree } = await treeOf(first.snapshot!);
    // 'sub' (73 75 62) sorts between 'a' (61) and 'é' (c3 a9).
    expect(tree.nodes.map((n) => hex(nodeNameBytes(n)))).toEqual(byBytes([...names.map((n) => Buffer.from(n)), Buffer.from('sub')]));
    expect([...tree.nodes].sort(compareNodes)).toEqual(tree.nodes);
    const inner = await treeOf(first.snapshot!, tree.nodes.findIndex((n) => n.name === 'sub'));
    expect(inner.tree.nodes.map((n) => hex(nodeNameBytes(n)))).toEqual(expected);
    expect(inner.tree.nodes.map((n) => n.name)).toEqual(expected.map((h) => Buffer.from(h, 'hex').toString('utf8')));
  });

  it('backs up a name that is not UTF-8 beside a genuine U+FFFD and names above U+FFFF, each by its bytes, and reuses them unchanged', async () => {
    const src = f.path('src');
    await mkdir(src);
    const srcBytes = Buffer.from(`${src}/`);
    const raw = Buffer.from([0x61, 0xff]); // "a" and a byte that is never UTF-8: listed as a string, "a\uFFFD"
    const rawDir = Buffer.from([0x64, 0xc3]); // a truncated two-byte sequence
    const plain = ['a\uFFFD', '\uFFFD', '\u{1F600}', '\uE000', 'b']; // 'a\uFFFD' is valid UTF-8 (61 ef bf bd): another name than raw
    for (const n of plain) await writeFile(join(src, n), `plain ${n}`);
    await writeFile(Buffer.concat([srcBytes, raw]), 'raw bytes');
    await mkdir(Buffer.concat([srcBytes, rawDir]));
    // Inside a folder named by bytes, a listing without U+FFFD (strings) of names above U+FFFF.
    for (const n of ['\u{1F600}', '\uE000']) await writeFile(Buffer.concat([srcBytes, rawDir, Buffer.from(`/${n}`)]), `inner ${n}`);

    const lister = new FolderLister({ root: src, probe: defaultProbe() });
    const top = await lister.list('');
    const all = [...plain.map((n) => Buffer.from(n)), raw, rawDir];
    expect(top.map((e) => hex(nameBytes(e)))).toEqual(byBytes(all));
    expect(top.filter((e) => e.nameRaw).map((e) => hex(e.nameRaw!))).toEqual(byBytes([raw, rawDir]));
    expect(top.filter((e) => e.decision.kind !== 'backup')).toEqual([]);
    expect(top.find((e) => e.nameRaw?.equals(raw))).toMatchObject({ kind: 'file', stats: { size: 9 } });
    expect(top.find((e) => e.relativePath === '\uFFFD' && !e.nameRaw)).toMatchObject({ kind: 'file', stats: { size: Buffer.byteLength('plain \uFFFD') } });

    const first = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report1.jsonl') });
    expect(await reportLines(first.reportPath)).toEqual([]);
    expect(first.status).toBe('complete');
    expect(first.files).toBe(plain.length + 1 + 2);
    const { index, tree } = await treeOf(first.snapshot!);
    expect(tree.nodes.map((n) => hex(nodeNameBytes(n)))).toEqual(byBytes(all));
    expect(tree.nodes.filter((n) => n.nameRaw !== undefined).map((n) => n.nameRaw)).toEqual([raw, rawDir].sort(Buffer.compare).map((b) => b.toString('base64')));
    const read = async (ids: readonly string[]) => Buffer.concat(await Promise.all(ids.map((h) => f.vault.readBlob(index, Buffer.from(h, 'hex'), ObjectType.data)))).toString();
    for (const n of tree.nodes) {
      if (n.type !== 'file') continue;
      expect(await read(n.content!)).toBe(n.name === undefined ? 'raw bytes' : `plain ${n.name}`);
    }
    const inner = await treeOf(first.snapshot!, tree.nodes.findIndex((n) => n.nameRaw === rawDir.toString('base64')));
    expect(inner.tree.nodes.map((n) => n.name)).toEqual(['\uE000', '\u{1F600}']);
    expect(await read(inner.tree.nodes[1]!.content!)).toBe('inner \u{1F600}');

    const second = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report2.jsonl') });
    expect(second.filesUnchanged).toBe(first.files);
    expect(second.bytesRead).toBe(0);
  });

  it('finds in the streamed scan a name that is not UTF-8 beside a genuine U+FFFD, each by its bytes', async () => {
    const root = f.path('root');
    await mkdir(root);
    const raw = Buffer.from([0x61, 0xff]);
    await writeFile(Buffer.concat([Buffer.from(`${root}/`), raw]), 'raw bytes');
    await writeFile(join(root, 'a\uFFFD'), 'genuine');
    await writeFile(join(root, '\u{1F600}'), 'above U+FFFF');
    const entries: ScanEntry[] = [];
    for await (const e of scan([root])) entries.push(e);
    expect(entries.filter((e) => e.decision.kind === 'skip')).toEqual([]);
    expect(entries.find((e) => e.nameRaw?.equals(raw))).toMatchObject({ kind: 'file', stats: { size: 9 } });
    expect(entries.find((e) => e.relativePath === 'a\uFFFD' && !e.nameRaw)).toMatchObject({ kind: 'file', stats: { size: 7 } });
    expect(entries.filter((e) => e.kind === 'file')).toHaveLength(3);
    const totals = await scanTotals([root]);
    expect([totals.files, totals.bytesToRead]).toEqual([3, 9 + 7 + 12]);
  });

  it('compares strings as their UTF-8 bytes compare', () => {
    // Code points from every range where UTF-16 and UTF-8 orders could part: ASCII, two and three bytes, around the
    // surrogates, the private use area, U+FFFF, and above it.
    const pool = [0x41, 0x7a, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xf8ff, 0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff];
    let seed = 7;
    const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const strings = Array.from({ length: 400 }, () => String.fromCodePoint(...Array.from({ length: 1 + next(4) }, () => pool[next(pool.length)]!)));
    const wrong: [string, string][] = [];
    for (const a of strings) {
      for (const b of strings.slice(0, 100)) if (Math.sign(compareCodePoints(a, b)) !== Buffer.compare(Buffer.from(a), Buffer.from(b))) wrong.push([a, b]);
    }
    expect(wrong).toEqual([]);
    // Where the two orders part, so that the check above means something.
    expect(strings.some((a) => strings.some((b) => Math.sign(a < b ? -1 : a > b ? 1 : 0) !== Buffer.compare(Buffer.from(a), Buffer.from(b))))).toBe(true);
  });
});
