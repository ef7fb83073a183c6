/**
 * The file-type support rules of the Azure Backup (MARS) agent and DPM online backup, as a table.
 *
 * Each row is one documented rule with its reason code; the first row whose condition holds decides. Order is
 * precedence: every skip rule comes before every backup rule, so a hard link that is also encrypted is skipped as
 * a hard link, and an encrypted, compressed and sparse file is skipped as encrypted-compressed.
 *
 * A condition names attributes that must be `true`. An unknown attribute (`undefined`: the platform cannot say)
 * does not satisfy a condition, so unknowns never cause a skip: the file is backed up, and the report counts the
 * unknowns.
 *
 * Decisions:
 * - `backup`: back up, incremental (unchanged files and chunks are reused);
 * - `backup-full`: back up, **full backups only**: never reuse earlier chunks of this file (encrypted files);
 * - `backup-sparse`: back up, incremental; holes are recorded, not stored as data;
 * - `skip`: not backed up; the reason code says why.
 *
 * @module
 */
import type { EntryAttributes, EntryKind } from './attributes.js';

export type DecisionKind = 'backup' | 'backup-full' | 'backup-sparse' | 'skip';

/** Why an entry is not backed up. */
export type SkipReason =
  | 'hard-link'
  | 'reparse-point'
  | 'encrypted-compressed'
  | 'encrypted-sparse'
  | 'compressed-stream'
  | 'sparse-stream'
  | 'case-collision'
  | 'unsupported-type'
  | 'unreadable'
  | 'vanished'
  /** Swapped after the scan for a symbolic link, a FIFO, a device or another file: not read (backup only). */
  | 'replaced'
  /** A folder nested deeper than the format lets readers follow (FORMAT.md §10): left out (backup only). */
  | 'too-deep';

export const SKIP_REASONS: readonly SkipReason[] = [
  'hard-link',
  'reparse-point',
  'encrypted-compressed',
  'encrypted-sparse',
  'compressed-stream',
  'sparse-stream',
  'case-collision',
  'unsupported-type',
  'unreadable',
  'vanished',
  'replaced',
  'too-deep',
];

export type Decision =
  | { readonly kind: 'backup' | 'backup-full' | 'backup-sparse'; readonly rule: string }
  | { readonly kind: 'skip'; readonly reason: SkipReason; readonly rule: string };

/** One row of the rules table. */
export interface SupportRule {
  /** Stable id, shown in reports. */
  readonly id: string;
  /** Attributes that must all be `true` for the row to apply (empty: always applies). */
  readonly when: Partial<Record<keyof EntryAttributes, true>>;
  readonly decision: Decision;
  /** Where the rule comes from, for the report and the docs. */
  readonly source: string;
}

const skip = (reason: SkipReason): Decision => ({ kind: 'skip', reason, rule: reason });
const MATRIX = 'MARS support matrix / DPM online backup file types';

/** The rules for regular files, in precedence order. */
export const FILE_RULES: readonly SupportRule[] = Object.freeze([
  { id: 'hard-link', when: { hardLink: true }, decision: skip('hard-link'), source: MATRIX },
  { id: 'reparse-point', when: { reparsePoint: true }, decision: skip('reparse-point'), source: MATRIX },
  { id: 'compressed-stream', when: { compressedStream: true }, decision: skip('compressed-stream'), source: MATRIX },
  { id: 'sparse-stream', when: { sparseStream: true }, decision: skip('sparse-stream'), source: MATRIX },
  { id: 'encrypted-compressed', when: { encrypted: true, compressed: true }, decision: skip('encrypted-compressed'), source: MATRIX },
  { id: 'encrypted-sparse', when: { encrypted: true, sparse: true }, decision: skip('encrypted-sparse'), source: MATRIX },
  { id: 'encrypted', when: { encrypted: true }, decision: { kind: 'backup-full', rule: 'encrypted' }, source: MATRIX },
  { id: 'compressed-sparse', when: { compressed: true, sparse: true }, decision: { kind: 'backup-sparse', rule: 'compressed-sparse' }, source: MATRIX },
  { id: 'sparse', when: { sparse: true }, decision: { kind: 'backup-sparse', rule: 'sparse' }, source: MATRIX },
  { id: 'compressed', when: { compressed: true }, decision: { kind: 'backup', rule: 'compressed' }, source: MATRIX },
  { id: 'default', when: {}, decision: { kind: 'backup', rule: 'default' }, source: 'any other file' },
]);

const DIR_BACKUP: Decision = { kind: 'backup', rule: 'folder' };
const SYMLINK_SKIP: Decision = skip('reparse-point');
const OTHER_SKIP: Decision = skip('unsupported-type');

/**
 * The decision for an entry of `kind` with `attributes`, by the first matching row of `rules` (for files).
 * Folders are backed up unless they are reparse points (mount points); their contents are decided one by one.
 * Symbolic links are reparse points. FIFOs, sockets and devices are `unsupported-type`.
 */
export function decide(kind: EntryKind, attributes: EntryAttributes, rules: readonly SupportRule[] = FILE_RULES): Decision {
  switch (kind) {
    case 'dir':
      return attributes.reparsePoint === true ? SYMLINK_SKIP : DIR_BACKUP;
    case 'symlink':
      return SYMLINK_SKIP;
    case 'other':
      return OTHER_SKIP;
    case 'file':
      for (const rule of rules) {
        let applies = true;
        for (const name in rule.when) {
          if (attributes[name as keyof EntryAttributes] !== true) {
            applies = false;
            break;
          }
        }
        if (applies) return rule.decision;
      }
      throw new Error('the rules table has no default row');
  }
}
