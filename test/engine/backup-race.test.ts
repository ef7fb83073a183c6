// A backup reads exactly the files it scanned: sources swapped after the scan for a symbolic link to a secret, a FIFO
// or another file, and folders swapped for links, are reported `replaced` and left out, with the addon's sealer (the
// default where it is built). The same scenarios without the addon: backup-race-fallback.test.ts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeFileSealer } from '../../src/native/seal.js';
import { expectRaceOutcome, expectWatcherHarmless, raceBackup, raceSource } from '../support/backup-race.js';
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
    expect(race.swaps.size + race.afterScan.length).toBe(0); // every swap ran, after its entry was probed or the scan
    await expectRaceOutcome(f, race, result);
  });

  it('against a watcher process swapping files in a loop, stores no secret byte in any of repeated backups and never hangs', async () => {
    await expectWatcherHarmless(f);
  });
});
