/**
 * FORMAT.md is complete and true: an independent reader written from the document alone
 * (test/support/format-reader.ts, @noble only, no import from src/) opens a vault the code wrote and lists every
 * snapshot exactly as the source folder is on disk: names as bytes, types, modes, times, sizes, content.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../src/engine/backup.js';
import { seededBytes } from './support/seeded.js';
import { type VaultFixture, PASSPHRASE, damageObject, makeVault, packsByContent } from './support/vaults.js';
import { TEST_KDF } from './support/seeded.js';
import {
  FormatReader,
  FormatReaderError,
  type ListingEntry,
  TREE_DEPTH_LIMIT,
  TREE_NODES_LIMIT,
  jsonNesting,
  parseTree,
} from './support/format-reader.js';

const KiB = 1024;
/** Small chunks, so that a file of a few hundred KiB spans many chunks and hits the maximum cut. */
const CHUNKER = { minSize: 4 * KiB, avgSize: 16 * KiB, maxSize: 64 * KiB };
/** One more than fits in a tree blob: the folder's listing must continue through `next`. */
const WIDE = TREE_NODES_LIMIT + 1;

/** One line per entry below `root` (the source root's own name first), as bytes-exact as the listing. */
async function diskListing(root: string, rootName: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: Buffer, rel: Buffer): Promise<void> => {
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const r = Buffer.concat([rel, Buffer.from('/'), name]);
      const st = await lstat(path, { bigint: true });
      const mode = Number(st.mode) & 0o7777;
      if (st.isSymbolicLink()) continue; // the support rules skip symbolic links (FORMAT.md §10)
      if (st.isDirectory()) {
        out.set(r.toString('hex'), `dir ${mode.toString(8)} ${st.mtimeNs}`);
        await walk(path, r);
      } else {
        const hash = createHash('sha256').update(await readFile(path)).digest('hex');
        out.set(r.toString('hex'), `file ${mode.toString(8)} ${st.mtimeNs} ${st.size} ${hash}`);
      }
    }
  };
  const st = await lstat(root, { bigint: true });
  out.set(Buffer.from(rootName).toString('hex'), `dir ${(Number(st.mode) & 0o7777).toString(8)} ${st.mtimeNs}`);
  await walk(Buffer.from(root), Buffer.from(rootName));
  return out;
}

function readerLines(listing: readonly ListingEntry[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of listing) {
    const key = Buffer.from(e.path).toString('hex');
    const mode = e.mode.toString(8);
    out.set(
      key,
      e.type === 'dir' ? `dir ${mode} ${e.mtimeNs}` : e.type === 'symlink' ? `symlink -> ${e.linkTarget}` : `file ${mode} ${e.mtimeNs} ${e.size} ${e.sha256}`,
    );
  }
  return out;
}

/** The differences of two listings, paths shown as text, for a readable failure. */
function differences(want: Map<string, string>, got: Map<string, string>): string[] {
  const show = (hex: string): string => JSON.stringify(Buffer.from(hex, 'hex').toString('utf8'));
  const out: string[] = [];
  for (const [k, v] of want) if (got.get(k) !== v) out.push(`${show(k)}: disk ${v}, vault ${got.get(k) ?? '(missing)'}`);
  for (const [k, v] of got) if (!want.has(k)) out.push(`${show(k)}: only in the vault: ${v}`);
  return out;
}

/** Writes `data` at `offset` of an existing file without touching the rest (holes stay holes). */
async function writeAt(path: string, offset: number, data: Buffer): Promise<void> {
  const h = await open(path, 'r+');
  try {
    await h.write(data, 0, data.length, offset);
  } finally {
    await h.close();
  }
}

describe('an independent reader written from FORMAT.md', () => {
  let f: VaultFixture;
  let src: string;

  beforeAll(async () => {
    f = await makeVault({ chunker: CHUNKER });
    src = f.path('src');
    const files: Record<string, Buffer> = {
      'small.txt': Buffer.from('hello\n'),
      'empty': Buffer.alloc(0),
      'one-chunk.bin': seededBytes(10 * KiB, 2),
      'many-chunks.bin': seededBytes(300 * KiB + 17, 3), // far more than maxSize: several chunks, some cut at max
      'copy/many-chunks.bin': seededBytes(300 * KiB + 17, 3), // the same chunks again: stored once
      'zeros.bin': Buffer.alloc(200 * KiB),
      'names/with space and ünïcödé ✓': Buffer.from('u'),
      'names/new\nline': Buffer.from('n'),
      'names/back\\slash': Buffer.from('b'),
      'names/.hidden': Buffer.from('h'),
      'deep/a/b/c/d/e/f/g/leaf.txt': Buffer.from('deep'),
    };
    for (const [rel, data] of Object.entries(files)) {
      await mkdir(join(src, rel, '..'), { recursive: true });
      await writeFile(join(src, rel), data);
    }
    // A sparse file: data, a hole, data, and a hole at the end.
    const sparse = join(src, 'sparse.img');
    await writeFile(sparse, Buffer.alloc(0));
    await truncate(sparse, 4096 * KiB);
    await writeAt(sparse, 0, seededBytes(20 * KiB, 4));
    await writeAt(sparse, 1024 * KiB, seededBytes(70 * KiB, 5));
    // A symbolic link (skipped by the support rules: the listing has none).
    await symlink('../small.txt', join(src, 'names', 'link'));
    // A folder wider than one tree blob.
    await mkdir(join(src, 'wide'));
    for (let i = 0; i < WIDE; i++) await writeFile(join(src, 'wide', `f${String(i).padStart(5, '0')}`), '');
    // Modes and times, set last (writing into a folder changes its mtime).
    const { chmod } = await import('node:fs/promises');
    await chmod(join(src, 'small.txt'), 0o640);
    await chmod(join(src, 'one-chunk.bin'), 0o4755);
    await chmod(join(src, 'names'), 0o750);
    await utimes(join(src, 'small.txt'), 1_600_000_000.123456, 1_600_000_000.123456);
    await utimes(join(src, 'deep', 'a'), 1_234_567_890.5, 1_234_567_890.5);
  }, 300_000);
  afterAll(() => f?.cleanup());

  it('opens the vault, lists every snapshot, and finds the source folder exactly as it is on disk', async () => {
    const result = await backup(f.vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 256 * KiB });
    expect(result.status).toBe('complete');
    // A second key slot (another passphrase) and a lock left behind: the reader must get past both.
    await f.vault.addKeySlot('another passphrase, also long', { kdf: TEST_KDF });
    await f.vault.writeLock({ time: new Date().toISOString(), hostname: 'elsewhere', pid: 4242, exclusive: false });

    const reader = await FormatReader.open(f.path('vault'), PASSPHRASE);
    expect(reader.config.chunker).toEqual(CHUNKER);
    expect(reader.ignored).toEqual([]);
    expect(reader.locks).toHaveLength(1);
    expect(reader.locks[0]).toMatchObject({ hostname: 'elsewhere', pid: 4242, exclusive: false });
    expect(reader.snapshots).toHaveLength(1);
    const snapshot = reader.snapshots[0]!;
    expect(snapshot).toMatchObject({ paths: [src], parent: null, status: 'complete' });

    const listing = await reader.list(snapshot);
    const want = await diskListing(src, 'src');
    expect(differences(want, readerLines(listing))).toEqual([]);
    expect(listing.some((e) => e.type === 'symlink')).toBe(false);

    // The shapes the test is meant to exercise did occur.
    const at = (rel: string): ListingEntry => listing.find((e) => Buffer.from(e.path).toString() === `src/${rel}`)!;
    expect(at('sparse.img').holes?.length).toBeGreaterThanOrEqual(2);
    expect(at('sparse.img').size).toBe(4096 * KiB);
    // The reader refuses a tree blob of more than TREE_NODES_LIMIT nodes: these came through a `next` chain.
    expect(listing.filter((e) => Buffer.from(e.path).toString().startsWith('src/wide/'))).toHaveLength(WIDE);
    // As on disk, to the nanosecond (runtimes round a time given as a double differently: 123456000 or 123456001 ns).
    const onDisk = (await lstat(join(src, 'small.txt'), { bigint: true })).mtimeNs;
    expect(onDisk / 1000n).toBe(1_600_000_000_123_456n);
    expect(at('small.txt').mtimeNs).toBe(onDisk);

    // The second slot opens the same vault; a wrong passphrase opens nothing.
    await expect(FormatReader.open(f.path('vault'), 'another passphrase, also long')).resolves.toBeInstanceOf(FormatReader);
    await expect(FormatReader.open(f.path('vault'), 'not the passphrase at all')).rejects.toMatchObject({ code: 'VP_WRONG_PASSPHRASE' });

    // The reader is no rubber stamp: one flipped byte in a pack and it refuses the vault.
    const { dataPacks } = await packsByContent(f);
    await damageObject(f, dataPacks[0]!, 100);
    await expect(FormatReader.open(f.path('vault'), PASSPHRASE)).rejects.toThrow(/does not hash to its name/);
  }, 300_000);
});

describe('the limits FORMAT.md sets for tree readers', () => {
  const node = (name: string): object => ({ name, type: 'file', mode: 0o644, mtimeNs: '0', size: 0, content: [] });
  const tree = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));

  it('accept a full tree blob and refuse one node more', () => {
    const names = Array.from({ length: TREE_NODES_LIMIT + 1 }, (_, i) => `n${String(i).padStart(5, '0')}`);
    expect(parseTree(tree({ nodes: names.slice(0, TREE_NODES_LIMIT).map(node) })).nodes).toHaveLength(TREE_NODES_LIMIT);
    expect(() => parseTree(tree({ nodes: names.map(node) }))).toThrow(expect.objectContaining({ code: 'VP_FORMAT_LIMIT' }) as Error);
  });

  it('accept holes (the deepest nesting a tree needs) and refuse deeper JSON before parsing it', () => {
    const withHoles = { nodes: [{ ...node('a'), size: 10, holes: [[0, 10]] }] };
    expect(jsonNesting(JSON.stringify(withHoles))).toBe(5);
    expect(parseTree(tree(withHoles)).nodes[0]!.holes).toEqual([[0, 10]]);
    const deep = `{"nodes":[{"name":"a","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`;
    expect(() => parseTree(new TextEncoder().encode(deep))).toThrow(expect.objectContaining({ code: 'VP_FORMAT_LIMIT' }) as Error);
    expect(jsonNesting('{"a":"[[[[[[[[[\\"{{{{"}')).toBe(1); // brackets in strings do not count
  });

  it('take exactly one of name and nameRaw, and names before 1970', () => {
    const raw = Buffer.from([0x66, 0xff, 0x2e]).toString('base64');
    const parsed = parseTree(tree({ nodes: [{ ...node('x'), name: undefined, nameRaw: raw, mtimeNs: '-1500000000' }] })).nodes[0]!;
    expect(Buffer.from(parsed.nameBytes)).toEqual(Buffer.from([0x66, 0xff, 0x2e]));
    expect(parsed.mtimeNs).toBe(-1_500_000_000n);
    expect(() => parseTree(tree({ nodes: [{ ...node('x'), nameRaw: raw }] }))).toThrow(FormatReaderError);
    expect(() => parseTree(tree({ nodes: [{ ...node('x'), name: undefined }] }))).toThrow(FormatReaderError);
    // Names are their bytes: the same bytes spelled once as name and once as nameRaw are two nodes of one name.
    const twice = [node('ok'), { ...node('x'), name: undefined, nameRaw: Buffer.from('ok').toString('base64') }];
    expect(() => parseTree(tree({ nodes: twice }))).toThrow(/not strictly sorted/);
    expect(() => parseTree(tree({ nodes: [node('\ud800')] }))).toThrow(/unpaired surrogate/);
    expect(() => parseTree(tree({ nodes: [node('a/b')] }))).toThrow(FormatReaderError);
    expect(parseTree(tree({ nodes: [node('a\\b')] })).nodes).toHaveLength(1); // a backslash is an ordinary byte
  });
});

describe('odd entries, written by the code and read from FORMAT.md', () => {
  let f: VaultFixture;
  beforeAll(async () => {
    f = await makeVault({ chunker: CHUNKER });
  });
  afterAll(() => f?.cleanup());

  /** Backs up `src` (built by `make`) and compares the reader's listing of the new snapshot with the disk. */
  async function roundTrip(make: (src: string) => Promise<void>): Promise<{ listing: ListingEntry[]; diff: string[] }> {
    const src = f.path(`src-${Math.random().toString(36).slice(2)}`);
    await mkdir(src);
    await make(src);
    const result = await backup(f.vault, [src], { scratchDir: f.path('scratch'), parent: null });
    expect(result.status).toBe('complete');
    const reader = await FormatReader.open(f.path('vault'), PASSPHRASE);
    const snapshot = reader.snapshots.find((s) => s.paths[0] === src)!;
    const listing = await reader.list(snapshot);
    const name = src.slice(src.lastIndexOf('/') + 1);
    return { listing, diff: differences(await diskListing(src, name), readerLines(listing)) };
  }

  it('a file and a folder dated before 1970 keep their negative nanosecond times', async () => {
    const { listing, diff } = await roundTrip(async (src) => {
      await mkdir(join(src, 'old'));
      await writeFile(join(src, 'old', 'file'), 'from 1969');
      // Dates, not numbers: Node reads a negative number of seconds as "now".
      await utimes(join(src, 'old', 'file'), new Date(-86_400_250), new Date(-86_400_250));
      await utimes(join(src, 'old'), new Date(-1), new Date(-1));
    });
    expect(diff).toEqual([]);
    expect(listing.find((e) => Buffer.from(e.path).toString().endsWith('/old/file'))!.mtimeNs).toBe(-86_400_250_000_000n);
  });

  it('a name that is not UTF-8 is stored as its bytes (nameRaw)', async () => {
    const raw = Buffer.from([0x6c, 0xe9, 0x2e, 0x74, 0x78, 0x74]); // "lé.txt" in Latin-1
    const { listing, diff } = await roundTrip(async (src) => {
      await writeFile(Buffer.concat([Buffer.from(`${src}/`), raw]), 'latin-1 name');
    });
    expect(diff).toEqual([]);
    expect(listing.some((e) => Buffer.from(e.path).subarray(-raw.length).equals(raw))).toBe(true);
  });

  it('a folder deeper than readers follow is skipped with a warning, and the rest reads back', async () => {
    const src = f.path('deep-src');
    const levels = TREE_DEPTH_LIMIT + 5;
    const deepest = join(src, ...Array.from({ length: levels }, () => 'd'));
    await mkdir(deepest, { recursive: true });
    await writeFile(join(deepest, 'leaf'), 'too deep');
    const result = await backup(f.vault, [src], { scratchDir: f.path('scratch'), parent: null });
    expect(result.status).toBe('warnings');
    const reader = await FormatReader.open(f.path('vault'), PASSPHRASE);
    const listing = await reader.list(reader.snapshots.find((s) => s.paths[0] === src)!);
    const depth = Math.max(...listing.map((e) => Buffer.from(e.path).toString().split('/').length));
    expect(depth).toBe(TREE_DEPTH_LIMIT);
  });
});
