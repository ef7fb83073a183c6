/**
 * Passphrase policy and generator.
 *
 * A passphrase is Unicode-normalized to NFC before anything else, so the composed and decomposed spellings of the
 * same text ("é" as U+00E9 or as "e" + U+0301) open the same vault (borg #1048 lost users their data over this).
 * Its length is counted in code points of the NFC form: at least {@link MIN_PASSPHRASE_LENGTH}, the minimum the
 * Azure Backup agent asks for. Control characters and unpaired surrogates are refused: they do not survive being
 * typed, pasted or encoded, and two ill-formed strings can encode to the same bytes.
 *
 * A new passphrase also may not begin or end with whitespace: copy and paste adds it silently, and a passphrase
 * that works only with an invisible trailing space is a lost vault. Whitespace inside is kept as typed.
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import { VaultpathError } from '../errors.js';

/** The minimum length of a passphrase, in Unicode code points after NFC normalization. */
export const MIN_PASSPHRASE_LENGTH = 16;

// Letters and digits that cannot be mistaken for one another when read aloud or off paper:
// no 0/o, 1/l/i, no u/v pair, lower case only.
const ALPHABET = '23456789abcdefghjkmnpqrstwxyz';
const GROUPS = 7;
const GROUP_LENGTH = 4;

/** Bits of entropy in a passphrase from {@link generatePassphrase}: 28 symbols of a 29-letter alphabet. */
export const GENERATED_PASSPHRASE_BITS = Math.floor(GROUPS * GROUP_LENGTH * Math.log2(ALPHABET.length));

export interface PassphraseCheckOptions {
  /**
   * Whether the passphrase is being chosen for a new key slot. New passphrases must also not begin or end with
   * whitespace; passphrases that open an existing slot are taken as they are.
   * @default false
   */
  readonly isNew?: boolean;
}

/**
 * Normalizes `passphrase` (NFC) and checks it against the policy.
 *
 * @returns the UTF-8 bytes of the normalized passphrase: the exact KDF input.
 * @throws {VaultpathError} `VP_PASSPHRASE_POLICY` with a message that states the rule that was broken.
 * @example
 * ```ts
 * const bytes = passphraseBytes('correct horse battery staple', { isNew: true });
 * ```
 */
export function passphraseBytes(passphrase: string, options: PassphraseCheckOptions = {}): Uint8Array {
  if (typeof passphrase !== 'string') throw new TypeError(`"passphrase" expected string, got ${typeof passphrase}`);
  if (!passphrase.isWellFormed()) {
    throw policy('The passphrase contains an unpaired surrogate (broken Unicode text); type it again.');
  }
  const normalized = passphrase.normalize('NFC');
  const length = [...normalized].length;
  if (length < MIN_PASSPHRASE_LENGTH) {
    throw policy(
      `The passphrase has ${length} characters; it must have at least ${MIN_PASSPHRASE_LENGTH} ` +
        '(counted as Unicode characters after normalization). Choose a longer one, or let vaultpath generate one.',
    );
  }
  const control = /\p{Cc}/u.exec(normalized);
  if (control) {
    const cp = control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw policy(
      `The passphrase contains the control character U+${cp} at position ${[...normalized.slice(0, control.index)].length + 1}; ` +
        'control characters (tabs, newlines, escapes) are not allowed.',
    );
  }
  if (options.isNew && /^\s|\s$/u.test(normalized)) {
    throw policy(
      'The passphrase begins or ends with whitespace, which copy and paste adds or drops silently; remove it.',
    );
  }
  return new TextEncoder().encode(normalized);
}

/**
 * Generates a passphrase of at least 128 bits of entropy from the system CSPRNG.
 *
 * The result is seven groups of four lower-case letters and digits joined by hyphens (34 characters, about
 * 136 bits), from an alphabet without look-alikes (no 0/o, 1/l/i, u/v), so it can be read off a screen or paper
 * and typed back without doubt.
 *
 * @example
 * ```ts
 * generatePassphrase(); // e.g. 'k7mq-2xhd-9ptw-fa3n-r8ce-4jyb-6gsz'
 * ```
 */
export function generatePassphrase(): string {
  const groups: string[] = [];
  for (let g = 0; g < GROUPS; g++) {
    let group = '';
    // randomInt draws uniformly (rejection sampling), so every symbol carries log2(29) bits.
    for (let i = 0; i < GROUP_LENGTH; i++) group += ALPHABET[randomInt(ALPHABET.length)];
    groups.push(group);
  }
  return groups.join('-');
}

function policy(message: string): VaultpathError {
  return new VaultpathError('VP_PASSPHRASE_POLICY', message);
}
