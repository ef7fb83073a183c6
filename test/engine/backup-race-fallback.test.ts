// The scenarios of backup-race.test.ts with the addon's sealing absent (as where it did not build): small files
// are opened and read with Node's calls on this thread, large ones through file handles. The run is given portable
// kernels, and each test checks it asked the sealing ports (so none of the addon's sealing was used).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectRaceOutcome, expectWatcherHarmless, raceBackup, raceSource } from '../support/backup-race.js';
import { type AskedKernels, portableAsked } from '../support/kernels.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
let k: AskedKernels;
beforeEach(async () => {
  f = await makeVault();
  k = portableAsked();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('backup of sources swapped after the scan (without the addon)', () => {
  it('stores no byte of a link\'s, a FIFO\'s or another file\'s target under the name, reports each as replaced, and never blocks', async () => {
    const race = await raceSource(f);
    const result = await raceBackup(f, race, { kernels: k.kernels });
    expect(race.swaps.size + race.afterScan.length).toBe(0); // every swap ran, after its entry was probed or the scan
    await expectRaceOutcome(f, race, result);
    expect([...k.asked]).toEqual(expect.arrayContaining(['fileSealer', 'packWriter']));
  });

  it('against a watcher process swapping files in a loop, stores no secret byte in any of repeated backups and never hangs', async () => {
    await expectWatcherHarmless(f, { kernels: k.kernels });
    expect([...k.asked]).toEqual(expect.arrayContaining(['fileSealer', 'packWriter']));
  });
});
