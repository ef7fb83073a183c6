// A local user who can write inside the target races the restore (addon path): folders and temporary files are
// swapped for links to a sentinel folder outside the target while restores run. Nothing outside may change.
import { describe, expect, it } from 'vitest';
import { afterEach, beforeEach } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { nativeWriter } from '../../src/engine/native-writer.js';
import { nativeBlobWriter } from '../../src/engine/native-open.js';
import { raceRestores } from '../support/restore-race.js';
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
    const r = await raceRestores(f, {
      backup: (sources, scratch) => backup(f.vault, sources, { scratchDir: scratch }),
      restore: (target, options) => restore(f.vault, 'latest', target, options),
    }, 4);
    expect(r.swaps).toBeGreaterThan(0);
    for (const after of r.after) expect(after).toEqual(r.before);
    // Whatever the swaps made fail is named as such; the rest was restored (inside moved folders, out of the way).
    for (const reason of r.reasons) expect(reason).toMatch(/^VP_UNSAFE_PATH: |^a symbolic link is in the way/);
    expect(r.files).toBeGreaterThan(0);
  }, 120_000);
});
