// The restore's target path with no addon: the same guarantees through /proc/self/fd.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addon } from '../../src/native.js';
import { describeTargetPath } from '../support/restore-target.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

vi.mock('../../src/native.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../src/native.js')>()),
  addon: () => null,
  nativeFunction: () => null,
}));

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('restore (no addon)', () => {
  it('has no addon', () => {
    expect(addon()).toBeNull();
  });
  describeTargetPath(() => f);
});
