/**
 * Per-user working folders from an environment with empty or relative folder variables: each is passed over for the
 * next candidate, so the folder is always absolute and never depends on the current folder.
 */
import { isAbsolute, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { userFolder } from '../../src/stage/user-folders.js';

const uid = process.getuid?.() ?? 'user';

describe('per-user working folders, from odd environment variables', () => {
  it('pass over a relative or empty XDG_CACHE_HOME for the home folder', () => {
    for (const cache of ['', 'rel', './cache', 'cache/../x']) {
      expect(userFolder('reports', { XDG_CACHE_HOME: cache, HOME: '/h' })).toBe('/h/.cache/vaultpath/reports');
    }
  });

  it('pass over a relative or empty TMPDIR for TMP, then TEMP, then /tmp', () => {
    // HOME "/" is never taken (it is no user's own), so the temporary folder is used.
    const base = { HOME: '/', XDG_CACHE_HOME: '' };
    expect(userFolder('scratch', { ...base, TMPDIR: 'rel' })).toBe(`/tmp/vaultpath-${uid}/scratch`);
    expect(userFolder('scratch', { ...base, TMPDIR: '' })).toBe(`/tmp/vaultpath-${uid}/scratch`);
    expect(userFolder('scratch', { ...base, TMPDIR: 'rel', TMP: '/t1', TEMP: '/t2' })).toBe(`/t1/vaultpath-${uid}/scratch`);
    expect(userFolder('scratch', { ...base, TMPDIR: './rel', TMP: 'rel', TEMP: '/t2' })).toBe(`/t2/vaultpath-${uid}/scratch`);
    expect(userFolder('scratch', { ...base, TMPDIR: '/t0/', TMP: '/t1' })).toBe(`/t0/vaultpath-${uid}/scratch`);
  });

  it('are read from the environment given, not from the one of this process', () => {
    const saved = process.env['TMPDIR'];
    process.env['TMPDIR'] = 'rel-of-this-process';
    try {
      const path = userFolder('recovery', { HOME: '/' });
      expect(isAbsolute(path)).toBe(true);
      expect(path).toBe(join('/tmp', `vaultpath-${uid}`, 'recovery'));
    } finally {
      if (saved === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = saved;
    }
  });
});
