import { describe, expect, it } from 'vitest';
import { GENERATED_PASSPHRASE_BITS, MIN_PASSPHRASE_LENGTH, generatePassphrase, passphraseBytes } from '../../src/crypto/passphrase.js';
import { VaultpathError } from '../../src/errors.js';

function policyError(fn: () => unknown): VaultpathError {
  try {
    fn();
  } catch (e) {
    if (e instanceof VaultpathError && e.code === 'VP_PASSPHRASE_POLICY') return e;
    throw e;
  }
  throw new Error('expected VP_PASSPHRASE_POLICY');
}

describe('the passphrase policy', () => {
  it('refuses 15 characters with a message that states the rule', () => {
    const e = policyError(() => passphraseBytes('a'.repeat(15)));
    expect(e.message).toMatch(/has 15 characters; it must have at least 16/);
  });

  it('accepts 16 characters', () => {
    expect(passphraseBytes('a'.repeat(16)).length).toBe(16);
    expect(MIN_PASSPHRASE_LENGTH).toBe(16);
  });

  it('counts code points, not UTF-16 units or bytes: 16 emoji pass, 8 do not', () => {
    expect(passphraseBytes('😀'.repeat(16)).length).toBe(64);
    policyError(() => passphraseBytes('😀'.repeat(8))); // 16 UTF-16 units, 8 characters
  });

  it('counts after NFC normalization: 15 decomposed é are 15 characters, not 30', () => {
    const decomposed = 'e\u0301'.repeat(15);
    expect(decomposed.length).toBe(30);
    policyError(() => passphraseBytes(decomposed));
  });

  it('gives composed and decomposed spellings the same bytes, so both open the same vault', () => {
    const composed = 'café crème brûlée!';
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    expect(Buffer.from(passphraseBytes(decomposed))).toEqual(Buffer.from(passphraseBytes(composed)));
  });

  it.each([
    ['a tab', 'correct horse\tbattery'],
    ['a newline', 'correct horse battery\n'],
    ['an escape', 'correct\u001bhorse battery'],
    ['a NUL', 'correct horse\u0000battery'],
    ['DEL', 'correct horse\u007fbattery'],
  ])('refuses control characters: %s', (_, p) => {
    expect(policyError(() => passphraseBytes(p)).message).toMatch(/control character U\+00/);
  });

  it('refuses unpaired surrogates', () => {
    policyError(() => passphraseBytes('correct horse battery \ud800'));
  });

  it('refuses leading or trailing whitespace in a new passphrase, but keeps inner spaces', () => {
    policyError(() => passphraseBytes(' correct horse battery', { isNew: true }));
    policyError(() => passphraseBytes('correct horse battery ', { isNew: true }));
    expect(passphraseBytes('correct horse battery', { isNew: true }).length).toBe(21);
    // An existing slot's passphrase is taken as typed.
    expect(passphraseBytes('correct horse battery ').length).toBe(22);
  });
});

describe('generatePassphrase', () => {
  it('returns at least 16 characters that pass the policy for new passphrases', () => {
    const p = generatePassphrase();
    expect([...p].length).toBeGreaterThanOrEqual(16);
    expect(() => passphraseBytes(p, { isNew: true })).not.toThrow();
  });

  it('carries at least 128 bits of entropy', () => {
    expect(GENERATED_PASSPHRASE_BITS).toBeGreaterThanOrEqual(128);
    const symbols = generatePassphrase().replaceAll('-', '').length;
    const alphabet = new Set<string>();
    for (let i = 0; i < 300; i++) for (const c of generatePassphrase().replaceAll('-', '')) alphabet.add(c);
    expect(symbols * Math.log2(alphabet.size)).toBeGreaterThanOrEqual(128);
  });

  it('uses no characters that read alike (0/o, 1/l/i, u/v) and no upper case', () => {
    for (let i = 0; i < 300; i++) expect(generatePassphrase()).toMatch(/^[2-9a-hjkmnp-tw-z]{4}(-[2-9a-hjkmnp-tw-z]{4}){6}$/);
  });

  it('does not repeat', () => {
    const seen = new Set(Array.from({ length: 1000 }, generatePassphrase));
    expect(seen.size).toBe(1000);
  });
});
