/**
 * A local attacker for restore race tests: a separate process that, while restores run, keeps swapping the folders
 * and temporary files it finds in the target for symbolic links to a sentinel folder outside it. The test asks it for
 * a full pass at chosen moments (a handshake through files, waited for synchronously from `onProgress`), so swaps
 * certainly fall in the middle of each restore, whatever the machine's speed; between those it loops freely.
 *
 * The sentinel is described before and after (type, mode, size, times, inode, content hash of every entry): a
 * restore that wrote, renamed, chmod-ed, stamped or removed anything in it changes the description.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { Kernels } from '../../src/native/ports.js';
import type { VaultFixture } from './vaults.js';

/** Makes the sentinel folder: files and a subfolder with modes and times no restored file has. */
export async function makeSentinel(dir: string): Promise<void> {
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'secret'), 'do not touch\n');
  await writeFile(join(dir, 'sub', 'deeper'), 'nor this\n');
  await chmod(join(dir, 'secret'), 0o600);
  await chmod(join(dir, 'sub', 'deeper'), 0o640);
  await chmod(join(dir, 'sub'), 0o710);
  await chmod(dir, 0o711);
  for (const p of [join(dir, 'secret'), join(dir, 'sub', 'deeper'), join(dir, 'sub'), dir]) await utimes(p, 1_234_567_890, 1_234_567_890);
}

/** Everything about the sentinel that a write, rename, chmod, utime or unlink through it would change. */
export function describeSentinel(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const path = rel === '' ? dir : join(dir, rel);
    const st = lstatSync(path, { bigint: true });
    const head = `${(Number(st.mode) & 0o177777).toString(8)} ${st.ino} ${st.mtimeNs} ${st.size}`;
    if (st.isDirectory()) {
      out[rel || '.'] = `dir ${head}`;
      for (const name of readdirSync(path).sort()) walk(rel === '' ? name : `${rel}/${name}`);
    } else if (st.isFile()) {
      out[rel] = `file ${head} ${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`;
    } else out[rel] = `other ${head}`;
  };
  walk('');
  return out;
}

const WATCHER = `
import { existsSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [target, sentinel, control] = process.argv.slice(1);
let n = 0, swaps = 0;
const pass = (dir) => {
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.name.startsWith('moved-')) { if (e.isDirectory()) pass(p); continue; }
    if (e.isDirectory()) {
      const moved = join(dir, 'moved-' + n++);
      try { renameSync(p, moved); symlinkSync(sentinel, p); swaps++; } catch {}
      pass(moved);
    } else if (e.isFile() && e.name.startsWith('.vaultpath-restore-')) {
      try { renameSync(p, join(dir, 'moved-' + n++)); symlinkSync(join(sentinel, 'secret'), p); swaps++; } catch {}
    }
  }
};
writeFileSync(join(control, 'ready'), '');
for (;;) {
  if (existsSync(join(control, 'stop'))) break;
  let asked = 0;
  try { asked = Number(readFileSync(join(control, 'ask'), 'utf8')) || 0; } catch {}
  pass(target);
  if (asked > 0) writeFileSync(join(control, 'done'), String(asked));
}
writeFileSync(join(control, 'swaps'), String(swaps));
`;

export interface Watcher {
  /** Asks for one whole pass over the target and waits for it, synchronously (call from `onProgress`). */
  passNow(): void;
  /** Stops the watcher; resolves to the number of swaps it made. */
  stop(): Promise<number>;
}

/** Starts the attacker on `target` (which must exist), swapping in links to `sentinel`; `control` is its own folder. */
export async function startWatcher(target: string, sentinel: string, control: string): Promise<Watcher> {
  mkdirSync(control, { recursive: true });
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', WATCHER, target, sentinel, control], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  while (!existsSync(join(control, 'ready'))) await new Promise((r) => setTimeout(r, 5));
  let asked = 0;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  return {
    passNow() {
      asked++;
      writeFileSync(join(control, 'ask'), String(asked));
      for (;;) {
        let done = 0;
        try {
          done = Number(readFileSync(join(control, 'done'), 'utf8')) || 0;
        } catch {
          // not written yet
        }
        if (done >= asked) return;
        Atomics.wait(sleeper, 0, 0, 1);
      }
    },
    async stop() {
      writeFileSync(join(control, 'stop'), '');
      await exited;
      return Number(readFileSync(join(control, 'swaps'), 'utf8'));
    },
  };
}

/**
 * The race scenario both restore paths (addon and fallback) run: a backup of folders with small and large files,
 * then `rounds` restores into fresh targets while the watcher swaps folders and temporary files for links to a
 * sentinel, a full pass forced every few files. Returns the sentinel before and after each round, the errors the
 * restores reported, and how many swaps the watcher made.
 */
export async function raceRestores(
  f: { path(...parts: string[]): string; vault: unknown },
  run: {
    backup: (sources: string[], scratch: string) => Promise<unknown>;
    restore: (target: string, options: { recoveryFolder: string; onProgress: (p: { files: number }) => void }) => Promise<{ errors: readonly { path: string; reason: string }[]; files: number }>;
  },
  rounds: number,
): Promise<{ before: Record<string, string>; after: Record<string, string>[]; reasons: string[]; swaps: number; files: number }> {
  const src = f.path('src');
  for (let d = 0; d < 6; d++) {
    await mkdir(join(src, `a${d}`, 'b'), { recursive: true });
    for (let i = 0; i < 15; i++) await writeFile(join(src, `a${d}`, `f${i}`), `file ${d}/${i}\n`.repeat(100 + i));
    for (let i = 0; i < 5; i++) await writeFile(join(src, `a${d}`, 'b', `g${i}`), `deep ${d}/${i}\n`.repeat(50));
    if (d % 2 === 0) await writeFile(join(src, `a${d}`, 'b', 'large'), Buffer.alloc(1536 * 1024 + d, d + 1));
  }
  await run.backup([src], f.path('scratch'));
  const sentinel = f.path('sentinel');
  await makeSentinel(sentinel);
  const before = describeSentinel(sentinel);
  const after: Record<string, string>[] = [];
  const reasons: string[] = [];
  let swaps = 0;
  let files = 0;
  for (let round = 0; round < rounds; round++) {
    const target = f.path(`target-${round}`);
    await mkdir(target);
    const watcher = await startWatcher(target, sentinel, f.path(`control-${round}`));
    try {
      const r = await run.restore(target, {
        recoveryFolder: f.path('recovery'),
        onProgress: (p) => {
          if (p.files % 6 === 1) watcher.passNow();
        },
      });
      reasons.push(...r.errors.map((e) => e.reason));
      files += r.files;
    } finally {
      swaps += await watcher.stop();
    }
    after.push(describeSentinel(sentinel));
  }
  return { before, after, reasons, swaps, files };
}

/**
 * Runs {@link raceRestores} with the real backup and restore (on the addon's paths, or with `kernels` on the ones
 * they choose, e.g. the portable path) and asserts the outcome: the sentinel outside the
 * target never changes, every failure the swaps cause is named as such, and the rest is restored.
 */
export async function expectRestoreRaceHarmless(f: VaultFixture, kernels?: Kernels): Promise<void> {
  const r = await raceRestores(f, {
    backup: (sources, scratch) => backup(f.vault, sources, { scratchDir: scratch, kernels }),
    restore: (target, options) => restore(f.vault, 'latest', target, { ...options, kernels }),
  }, 4);
  expect(r.swaps).toBeGreaterThan(0);
  for (const after of r.after) expect(after).toEqual(r.before);
  // Whatever the swaps made fail is named as such; the rest was restored (inside moved folders, out of the way).
  for (const reason of r.reasons) expect(reason).toMatch(/^VP_UNSAFE_PATH: |^a symbolic link is in the way/);
  expect(r.files).toBeGreaterThan(0);
}
