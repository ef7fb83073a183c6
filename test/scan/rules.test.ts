import { describe, expect, it } from 'vitest';
import { type EntryAttributes, ATTRIBUTE_NAMES } from '../../src/scan/attributes.js';
import { FILE_RULES, decide } from '../../src/scan/rules.js';

/**
 * The support rules written a second time, as plain if/else straight from the agent's table, so the
 * table-driven `decide` is checked against an independent reading rather than against itself.
 */
function expected(a: EntryAttributes): string {
  const is = (v: boolean | undefined): boolean => v === true;
  if (is(a.hardLink)) return 'skip:hard-link';
  if (is(a.reparsePoint)) return 'skip:reparse-point';
  if (is(a.compressedStream)) return 'skip:compressed-stream';
  if (is(a.sparseStream)) return 'skip:sparse-stream';
  if (is(a.encrypted) && is(a.compressed)) return 'skip:encrypted-compressed';
  if (is(a.encrypted) && is(a.sparse)) return 'skip:encrypted-sparse';
  if (is(a.encrypted)) return 'backup-full';
  if (is(a.sparse)) return 'backup-sparse'; // sparse, and compressed + sparse (treated as sparse)
  return 'backup'; // compressed, or nothing special
}

/** Every combination of the seven attributes, each true, false or unknown: 3^7 = 2187. */
function* matrix(): Generator<EntryAttributes> {
  const values = [true, false, undefined] as const;
  for (let n = 0; n < 3 ** ATTRIBUTE_NAMES.length; n++) {
    const a: Record<string, boolean | undefined> = {};
    let k = n;
    for (const name of ATTRIBUTE_NAMES) {
      a[name] = values[k % 3];
      k = Math.floor(k / 3);
    }
    yield a as unknown as EntryAttributes;
  }
}

const label = (d: ReturnType<typeof decide>): string => (d.kind === 'skip' ? `skip:${d.reason}` : d.kind);
const none: EntryAttributes = {
  encrypted: false, compressed: false, sparse: false, hardLink: false, reparsePoint: false, compressedStream: false, sparseStream: false,
};

describe('the support rules for files', () => {
  it('decide every one of the 2,187 attribute combinations as the documented table says', () => {
    let checked = 0;
    for (const a of matrix()) {
      expect(label(decide('file', a)), JSON.stringify(a)).toBe(expected(a));
      checked++;
    }
    expect(checked).toBe(2187);
  });

  it.each([
    [{ encrypted: true }, 'backup-full', 'encrypted'],
    [{ compressed: true }, 'backup', 'compressed'],
    [{ sparse: true }, 'backup-sparse', 'sparse'],
    [{ compressed: true, sparse: true }, 'backup-sparse', 'compressed-sparse'],
    [{ hardLink: true }, 'skip:hard-link', 'hard-link'],
    [{ reparsePoint: true }, 'skip:reparse-point', 'reparse-point'],
    [{ encrypted: true, compressed: true }, 'skip:encrypted-compressed', 'encrypted-compressed'],
    [{ encrypted: true, sparse: true }, 'skip:encrypted-sparse', 'encrypted-sparse'],
    [{ compressedStream: true }, 'skip:compressed-stream', 'compressed-stream'],
    [{ sparseStream: true }, 'skip:sparse-stream', 'sparse-stream'],
    [{}, 'backup', 'default'],
  ])('row %o: %s by rule %s', (attrs, decision, rule) => {
    const d = decide('file', { ...none, ...attrs });
    expect(label(d)).toBe(decision);
    expect(d.rule).toBe(rule);
  });

  it('never skip because of an unknown attribute', () => {
    const unknown = Object.fromEntries(ATTRIBUTE_NAMES.map((n) => [n, undefined])) as unknown as EntryAttributes;
    expect(label(decide('file', unknown))).toBe('backup');
  });

  it('have one row per documented rule, each with a reason, and a default last', () => {
    expect(FILE_RULES.map((r) => r.id)).toEqual([
      'hard-link', 'reparse-point', 'compressed-stream', 'sparse-stream', 'encrypted-compressed', 'encrypted-sparse',
      'encrypted', 'compressed-sparse', 'sparse', 'compressed', 'default',
    ]);
    expect(FILE_RULES.at(-1)!.when).toEqual({});
  });
});

describe('the rules for other kinds', () => {
  it('back up folders, but skip a folder that is a reparse point (mount point)', () => {
    expect(label(decide('dir', none))).toBe('backup');
    expect(label(decide('dir', { ...none, reparsePoint: true }))).toBe('skip:reparse-point');
  });

  it('skip symbolic links as reparse points and special files as unsupported', () => {
    expect(label(decide('symlink', none))).toBe('skip:reparse-point');
    expect(label(decide('other', none))).toBe('skip:unsupported-type');
  });
});
