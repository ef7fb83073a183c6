// The restore's target path (addon path): links on the way, places where no folder can be made, a racing user.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addonFsAt } from '../../src/restorer/fs-at.js';
import { describeTargetPath } from '../support/restore-target.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('restore (addon)', () => {
  it('has the addon', () => {
    expect(addonFsAt(), 'the native addon did not build or load').not.toBeNull();
  });
  describeTargetPath(() => f);
});
