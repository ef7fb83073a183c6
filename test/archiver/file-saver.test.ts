// The archiver's file reader and file saver: however a file is read (sealed whole by the addon, read at once, or
// streamed), its chunks take one path to the vault and give the same node; a file replaced since the scan is left
// out and reported, never read.
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobSaver } from '../../src/repo/blob-saver.js';
import { ScratchCache } from '../../src/stage/scratch-cache.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { nativeKernels } from '../../src/native/ports.js';
import { FolderLister } from '../../src/scan/folder.js';
import { defaultProbe } from '../../src/scan/probe.js';
import { ScanSummary, type ScanEntry } from '../../src/scan/scan.js';
import { FileReader, type ReadMode } from '../../src/archiver/file-reader.js';
import { FileSaver } from '../../src/archiver/file-saver.js';
import { RunReport } from '../../src/archiver/report.js';
import type { FileBase } from '../../src/archiver/parent.js';
import { seededBytes } from '../support/seeded.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
let scratch: ScratchCache;
let saver: BlobSaver;
let report: RunReport;
beforeEach(async () => {
  f = await makeVault();
  scratch = await ScratchCache.open(f.path('scratch'), { capacity: 64 * 1024 * 1024 });
  saver = new BlobSaver(f.vault, await f.vault.loadIndex(), { kernels: nativeKernels, scratch, sealWorkers: 0 });
  report = new RunReport(f.path('report.jsonl'), new ScanSummary(), undefined, () => saver.bytesStored);
  await report.open();
});
afterEach(async () => {
  await report.close();
  await saver.close();
  await scratch.close();
  await f.cleanup();
});

const open: (() => void)[] = [];
afterEach(() => {
  for (const close of open.splice(0)) close();
});

/** The listing's entries of folder `dir`, as the walk sees them; the folder stays open (entries are read through it). */
async function listed(dir: string): Promise<ScanEntry[]> {
  const lister = new FolderLister({ root: dir, probe: defaultProbe() });
  const top = lister.openRoot();
  if (!('fd' in top)) throw new Error(`cannot open ${dir}`);
  open.push(() => lister.close(top));
  return lister.listOpen(top);
}

function base(e: ScanEntry): FileBase {
  const s = e.stats!;
  return { name: e.relativePath, type: 'file', mode: s.mode & 0o7777, mtimeNs: s.mtimeNs.toString(), ctimeNs: s.ctimeNs.toString(), inode: s.ino.toString(), decision: e.decision.kind };
}

describe('the file reader and the file saver', () => {
  it('give one file the same chunk ids whichever way it is read, and store its chunk once', async () => {
    const src = f.path('src');
    await mkdir(src);
    await writeFile(`${src}/a`, seededBytes(20_000, 1));
    const [e] = await listed(src);
    const reader = new FileReader(f.vault, saver, report, undefined);
    const modes: ReadMode[] = saver.sealsWholeFiles ? ['whole', 'small', 'stream'] : ['small', 'stream'];
    const ids: string[][] = [];
    const known: boolean[] = [];
    for (const mode of modes) {
      const file = (await reader.open(e!, mode))!;
      const got: string[] = [];
      for await (const chunk of file.chunks) {
        const r = await saver.saveBlob(ObjectType.data, chunk.blob);
        got.push(r.id.toString('hex'));
        known.push(r.known);
        file.saved(chunk.end);
      }
      await file.close();
      ids.push(got);
    }
    expect(new Set(ids.map((i) => i.join())).size).toBe(1);
    expect(ids[0]).toHaveLength(1);
    expect(known).toEqual([false, ...modes.slice(1).map(() => true)]);

    const node = await new FileSaver(saver, reader, report, false).save(e!, base(e!), undefined);
    expect(node).toMatchObject({ size: 20_000, content: ids[0] });
    await saver.finish();
    const index = await f.vault.loadIndex();
    expect(index.size).toBe(1);
  });

  it('leaves out a file swapped for a link since the listing, reporting it as replaced, whichever way it is read', async () => {
    const src = f.path('src');
    await mkdir(src);
    await writeFile(f.path('secret'), 'secret');
    await writeFile(`${src}/a`, seededBytes(20_000, 2));
    const [e] = await listed(src);
    await rename(`${src}/a`, f.path('moved'));
    await symlink(f.path('secret'), `${src}/a`);
    const reader = new FileReader(f.vault, saver, report, undefined);
    const modes: ReadMode[] = saver.sealsWholeFiles ? ['whole', 'small', 'stream'] : ['small', 'stream'];
    for (const mode of modes) expect(await reader.open(e!, mode), mode).toBeUndefined();
    expect(report.c.warnings).toBe(modes.length);
    expect(await new FileSaver(saver, reader, report, false).save(e!, base(e!), undefined)).toBeUndefined();
    await saver.finish();
    expect((await f.vault.loadIndex()).size).toBe(0);
  });
});
