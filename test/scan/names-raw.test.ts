// Names that are not valid UTF-8 are scanned as their bytes: found, probed and counted, never reported as vanished
// because a string made from them names nothing.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ScanEntry, scan, scanTotals } from '../../src/scan/scan.js';
import { tempDir } from '../support/trees.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir('vaultpath-names-');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe.runIf(process.platform === 'linux')('scanning names that are not UTF-8', () => {
  it('finds, probes and counts them by their bytes, in the streamed scan and in the totals', async () => {
    const root = join(dir, 'root');
    await mkdir(root);
    const raw = Buffer.from([0x66, 0xff, 0x6f]);
    const rootBytes = Buffer.from(root);
    await writeFile(Buffer.concat([rootBytes, Buffer.from('/'), raw]), 'twelve bytes');
    await mkdir(Buffer.concat([rootBytes, Buffer.from('/d'), raw]));
    await writeFile(join(root, 'plain'), 'abc');
    const entries: ScanEntry[] = [];
    for await (const e of scan([root])) entries.push(e);
    const file = entries.find((e) => e.nameRaw?.equals(raw));
    expect(file).toMatchObject({ kind: 'file', decision: { kind: 'backup' }, stats: { size: 12 } });
    expect(entries.filter((e) => e.decision.kind === 'skip')).toEqual([]);
    const totals = await scanTotals([root]);
    expect([totals.files, totals.bytesToRead, totals.dirs]).toEqual([2, 15, 1]);
    expect(totals.skipped).toEqual({});
  });
});
