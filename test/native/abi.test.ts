// The addon is used only when its interface is the one this code calls: a build left from another version of the
// package (its arguments or results laid out differently) is set aside and the portable code runs instead.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ADDON_ABI, ADDON_FILE, addon, usableAddon } from '../../src/native/addon.js';

describe.runIf(process.platform === 'linux')('the native addon', () => {
  it('is built with the interface this code calls, and used', () => {
    const built = createRequire(import.meta.url)(`../../build/Release/${ADDON_FILE}`) as Record<string, unknown>;
    expect(built['abiVersion']).toBe(ADDON_ABI);
    expect(addon()).toBe(built);
  });

  it('is set aside when its interface version differs or is missing', () => {
    const built = createRequire(import.meta.url)(`../../build/Release/${ADDON_FILE}`) as Record<string, unknown>;
    expect(usableAddon(built)).toBe(built);
    expect(usableAddon({ ...built, abiVersion: ADDON_ABI + 1 })).toBeNull();
    const { abiVersion: _, ...older } = built;
    expect(usableAddon(older)).toBeNull();
  });
});
