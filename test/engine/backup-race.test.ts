// A backup reads exactly the files it scanned: sources swapped after the scan for a symbolic link to a secret, a FIFO
// or another file, and folders swapped for links, are reported `replaced` and left out, with the addon's sealer (the
// default where it is built). The same scenarios without the addon: backup-race-fallback.test.ts.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { nativeFileSealer } from '../../src/engine/native-seal.js';
import { MARKER, expectRaceOutcome, fifoGuard, genuineBytes, raceBackup, raceSource, secretBytes, snapshotFiles, startWatcher } from '../support/backup-race.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('backup of sources swapped after the scan (addon)', () => {
  it('stores no byte of a link\'s, a FIFO\'s or another file\'s target under the name, reports each as replaced, and never blocks', async () => {
    expect(nativeFileSealer(f.vault.keys)).not.toBeNull();
    const race = await raceSource(f);
    const result = await raceBackup(f, race);
    expect(race.swaps.size).toBe(0); // every swap ran, after its entry was probed
    await expectRaceOutcome(f, race, result);
  });

  it('against a watcher process swapping files in a loop, stores no secret byte in any of repeated backups and never hangs', async () => {
    const src = f.path('src');
    await mkdir(src);
    const secret = f.path('secret');
    const spares = f.path('spares');
    await mkdir(spares);
    await writeFile(secret, secretBytes(4000));
    const targets = Array.from({ length: 200 }, (_, i) => join(src, `t${i}`));
    for (const t of targets) await writeFile(t, genuineBytes(4000, 1));
    const watcher = startWatcher(targets, secret, spares);
    const released = f.path('fifo-released');
    const snapshots: string[] = [];
    try {
      for (let run = 0; run < 20 && !existsSync(released); run++) {
        // A guard per run: past its deadline it releases only a reader blocked in open, never this run's brief
        // non-blocking opens, which end long before.
        const guard = fifoGuard(targets, released);
        try {
          const r = await backup(f.vault, [src], { scratchDir: f.path('scratch'), parent: null, signal: AbortSignal.timeout(120_000) });
          snapshots.push(r.snapshot!);
        } finally {
          guard.stop();
        }
      }
    } finally {
      await watcher.stop();
    }
    expect(existsSync(released), 'a backup blocked opening a FIFO').toBe(false);
    for (const id of snapshots) {
      const files = await snapshotFiles(f.vault, id);
      expect([...files].filter(([, { content }]) => content.includes(MARKER)).map(([p]) => p)).toEqual([]);
    }
  });
});
