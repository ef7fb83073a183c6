// A local user who can write inside the target races the restore (addon path): folders and temporary files are
// swapped for links to a sentinel folder outside the target while restores run. Nothing outside may change.
import { describe, expect, it } from 'vitest';
import { afterEach, beforeEach } from 'vitest';
import { nativeWriter } from '../../src/native/write-files.js';
import { nativeBlobWriter } from '../../src/native/open.js';
import { expectRestoreRaceHarmless } from '../support/restore-race.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('restore raced by a user swapping folders and temporary files for links (addon)', () => {
  it('never creates, writes, chmods, stamps or removes anything outside the target', async () => {
    expect(nativeWriter(), 'the native addon did not build or load').not.toBeNull();
    expect(nativeBlobWriter(f.vault.keys)).not.toBeNull();
    await expectRestoreRaceHarmless(f);
  }, 120_000);
});
