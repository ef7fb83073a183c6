// The scenarios of backup-race.test.ts with the addon's sealing absent (as where it did not build): small files
// are opened and read with Node's calls on this thread, large ones through file handles.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { nativeFileSealer } from '../../src/native/seal.js';
import { expectRaceOutcome, expectWatcherHarmless, raceBackup, raceSource } from '../support/backup-race.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

vi.mock('../../src/native/seal.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../src/native/seal.js')>()),
  nativeFileSealer: () => null,
  nativeChunkSealer: () => null,
  nativePackWriter: () => null,
}));

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('backup of sources swapped after the scan (without the addon)', () => {
  it('stores no byte of a link\'s, a FIFO\'s or another file\'s target under the name, reports each as replaced, and never blocks', async () => {
    expect(nativeFileSealer(f.vault.keys)).toBeNull();
    const race = await raceSource(f);
    const result = await raceBackup(f, race);
    expect(race.swaps.size).toBe(0); // every swap ran, after its entry was probed
    await expectRaceOutcome(f, race, result);
  });

  it('against a watcher process swapping files in a loop, stores no secret byte in any of repeated backups and never hangs', async () => {
    await expectWatcherHarmless(f);
  });
});
