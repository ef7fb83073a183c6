// A local user who can write inside the target races the restore without the addon's writer and blob calls (the
// JavaScript path through /proc/self/fd/<dirfd>/<name>): folders and temporary files are
// swapped for links to a sentinel folder outside the target while restores run. Nothing outside may change.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { portableAsked } from '../support/kernels.js';
import { expectRestoreRaceHarmless } from '../support/restore-race.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('restore raced by a user swapping folders and temporary files for links (no addon: /proc/self/fd)', () => {
  it('never creates, writes, chmods, stamps or removes anything outside the target', async () => {
    const k = portableAsked();
    await expectRestoreRaceHarmless(f, k.kernels);
    expect([...k.asked]).toEqual(expect.arrayContaining(['fileWriter', 'blobOpener', 'blobWriter']));
  }, 120_000);
});
