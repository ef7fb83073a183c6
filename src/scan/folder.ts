/**
 * One folder at a time, in name order: the listing the backup engine walks depth first, so that each folder's
 * tree can be written as soon as its contents are.
 *
 * It applies the same rules as the streamed scan (walk.ts, scan.ts): exclusions with the same glob semantics
 * (fast-glob's picomatch, dot files included, case-insensitive), case collisions by {@link caseCollisions}, the same
 * probe and the same support rules. A test holds the two to the same entries and decisions.
 *
 * @module
 */
import { readdirSync } from 'node:fs';
import { sep } from 'node:path';
import picomatch from 'picomatch';
import type { AttributeProbe } from './attributes.js';
import { type SupportRule, FILE_RULES, decide } from './rules.js';
import type { ScanEntry } from './scan.js';
import { caseCollisions, caseKey, excludePatterns, folderKeys, kindOfDirent, reasonOf } from './walk.js';

export interface FolderListerOptions {
  readonly root: string;
  readonly probe: AttributeProbe;
  readonly rules?: readonly SupportRule[];
  readonly exclude?: readonly string[];
  /** Globs a file must match to be included (folders are always walked). @default all files */
  readonly include?: readonly string[];
  readonly excludeFilesIn?: readonly string[];
}

/** Lists folders of one root, applying exclusions, collisions, the probe and the rules. */
export class FolderLister {
  readonly root: string;
  readonly rootDev: number;
  readonly #probe: AttributeProbe;
  readonly #rules: readonly SupportRule[];
  readonly #excluded: (path: string) => boolean;
  readonly #included: ((path: string) => boolean) | undefined;
  readonly #filesExcludedIn: Set<string>;

  constructor(options: FolderListerOptions) {
    this.root = options.root;
    this.#probe = options.probe;
    this.rootDev = options.probe.deviceOf(options.root);
    this.#rules = options.rules ?? FILE_RULES;
    const ignore = excludePatterns(options.exclude ?? []);
    this.#excluded = ignore.length > 0 ? picomatch(ignore, { dot: true, nocase: true }) : () => false;
    this.#included = options.include && options.include.length > 0 ? picomatch([...options.include], { dot: true, nocase: true }) : undefined;
    this.#filesExcludedIn = folderKeys(options.excludeFilesIn);
  }

  /**
   * The entries of folder `relDir` ('' for the root), sorted by name, each with its decision; a folder that cannot
   * be listed gives one `unreadable` (or `vanished`) entry for itself instead.
   */
  async list(relDir: string): Promise<ScanEntry[]> {
    const dirPath = relDir === '' ? this.root : this.root + sep + relDir.split('/').join(sep);
    let dirents;
    try {
      // Synchronous, like the probe's statx batch after it: a listing costs tens of microseconds, less than the
      // round trip through the thread pool, and the walk waits for it either way.
      dirents = readdirSync(dirPath, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      const reason = reasonOf(code);
      return [{ root: this.root, path: dirPath, relativePath: relDir, kind: 'dir', decision: { kind: 'skip', reason, rule: reason }, detail: `${code}: could not list the folder` }];
    }
    const collided = caseCollisions(dirents.map((d) => d.name));
    const filesExcluded = this.#filesExcludedIn.has(caseKey(relDir));
    // Sorted by name first, so each entry takes its place as it is made (no re-sorting of entries by a derived name).
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const slots: (ScanEntry | undefined)[] = new Array(dirents.length);
    const toProbe: { at: number; rel: string; path: string }[] = [];
    for (const [at, d] of dirents.entries()) {
      const rel = relDir === '' ? d.name : `${relDir}/${d.name}`;
      const kind = kindOfDirent(d);
      if (this.#excluded(rel)) continue;
      if (kind !== 'dir' && (filesExcluded || (this.#included && !this.#included(rel)))) continue;
      const path = dirPath + sep + d.name;
      const kept = collided.get(d.name);
      if (kept !== undefined) {
        slots[at] = { root: this.root, path, relativePath: rel, kind, decision: { kind: 'skip', reason: 'case-collision', rule: 'case-collision' }, detail: `same name as "${kept}" but for case` };
        continue;
      }
      toProbe.push({ at, rel, path });
    }
    const results = toProbe.length > 0 ? await this.#probe.probe(toProbe.map((t) => t.path), { rootDev: this.rootDev }) : [];
    for (const [i, t] of toProbe.entries()) {
      const r = results[i]!;
      if (!r.ok) {
        const reason = reasonOf(r.code);
        slots[t.at] = { root: this.root, path: t.path, relativePath: t.rel, kind: 'file', decision: { kind: 'skip', reason, rule: reason }, detail: `${r.code}: ${reason === 'vanished' ? 'it vanished during the scan' : 'it cannot be read'}` };
      } else {
        slots[t.at] = { root: this.root, path: t.path, relativePath: t.rel, kind: r.entry.kind, decision: decide(r.entry.kind, r.entry.attributes, this.#rules), stats: r.entry };
      }
    }
    return slots.filter((e): e is ScanEntry => e !== undefined);
  }
}
