/**
 * Every parser of vault objects and local files, on a few hundred seeded mutations of valid inputs each (the long
 * run is `npm run fuzz`), and on JSON nested 100,000 deep: each input gives a value or a VaultpathError with a
 * code, never another error, a stack overflow or a hang.
 */
import { describe, expect, it } from 'vitest';
import { VaultpathError } from '../../src/errors.js';
import { VaultKeys } from '../../src/crypto/keys.js';
import { FIXED_MASTER_KEY } from '../support/seeded.js';
import { type FuzzTarget, Rng, fuzzTargets, mutate, runOne } from '../support/fuzz-parsers.js';

const INPUTS = 300;
const SEED = 20_261_203;
const targets = await fuzzTargets(VaultKeys.fromMasterKey(FIXED_MASTER_KEY));

describe('every parser, on seeded mutations of valid inputs', () => {
  it.each(targets.map((t, i) => [t.name, t, i] as const))('%s gives a value or a VaultpathError with a code', (_name, target: FuzzTarget, i) => {
    const rng = new Rng(SEED + i);
    const failures: string[] = [];
    const codes = new Set<string>();
    for (let n = 0; n < INPUTS; n++) {
      const input = mutate(rng, target);
      const outcome = runOne(target, input);
      if (outcome.kind === 'failed') failures.push(`input ${n} (${input.toString('base64').slice(0, 200)}): ${String(outcome.error)}`);
      if (outcome.kind === 'refused') codes.add(outcome.code);
    }
    expect(failures).toEqual([]);
    // The mutations reach the parser: some inputs are refused (and their valid seeds accepted, below).
    expect(codes.size).toBeGreaterThan(0);
    for (const s of target.seeds) expect(runOne(target, s)).toEqual({ kind: 'accepted' });
  });
});

describe('JSON nested 100,000 deep', () => {
  const deep = [
    Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`),
    Buffer.from(`{"nodes":${'[{"a":'.repeat(50_000)}1${'}]'.repeat(50_000)}}`),
    // Unclosed: the scan must stop at the limit, not wait for the end.
    Buffer.from(`{"version":1,"x":${'{"a":'.repeat(100_000)}`),
  ];
  // Within every size limit (64 KiB), so the nesting scan is what refuses it.
  const deepButSmall = Buffer.from(`{"version":1,"x":${'['.repeat(30_000)}`);
  it.each(targets.filter((t) => t.json).map((t) => [t.name, t] as const))('%s refuses it with a typed error, without a stack overflow', (_name, target: FuzzTarget) => {
    for (const input of [...deep, deepButSmall]) {
      let error: unknown;
      try {
        target.parse(input);
      } catch (e) {
        error = e;
      }
      // Refused by the nesting scan, before parsing: vault objects as over a format limit, local files as damaged.
      const code = target.name === 'credentials file' ? 'VP_CREDENTIALS_INVALID' : target.name === 'agent settings' ? 'VP_SETTINGS' : 'VP_FORMAT_LIMIT';
      expect(error).toBeInstanceOf(VaultpathError);
      const why = input === deepButSmall ? /nests deeper than the \d levels its format allows/ : /(nests deeper than the \d levels|is \d+ bytes, more than the \d+) its format allows/;
      expect(error).toMatchObject({ code, message: expect.stringMatching(why) });
    }
  });
});
