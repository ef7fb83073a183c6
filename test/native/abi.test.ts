// The addon is used only when its interface is the one this code calls: a build left from another version of the
// package (its arguments or results laid out differently) is set aside and the portable code runs instead.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ADDON_ABI, ADDON_FILE, ADDON_FUNCTIONS, addon, usableAddon } from '../../src/native/addon.js';

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

  it('is loaded from the file binding.gyp builds, never from a build of its former name (vaultpath_statx.node)', () => {
    const gyp = JSON.parse(readFileSync(new URL('../../binding.gyp', import.meta.url), 'utf8')) as { targets: { target_name: string }[] };
    expect(gyp.targets.map((t) => `${t.target_name}.node`)).toEqual([ADDON_FILE]);
    expect(ADDON_FILE).not.toBe('vaultpath_statx.node');
  });

  it('exports exactly the functions its TypeScript declaration lists', () => {
    const exported = Object.entries(addon() ?? {}).filter(([, v]) => typeof v === 'function').map(([k]) => k);
    expect(exported.sort()).toEqual([...ADDON_FUNCTIONS].sort());
  });
});
