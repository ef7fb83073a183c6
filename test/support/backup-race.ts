/**
 * Sources swapped under a running backup, for the backup race tests (with the addon's sealer and without).
 *
 * Each scenario file is swapped, after the backup's listing has probed it and before it is read, for a symbolic link
 * to a secret outside the source, for a FIFO, or for another file renamed over it; a folder already entered is moved
 * away (once the files below it are probed) and a link to a secret folder put in its place. These swaps run in a
 * probe wrapped around the real one, armed once the backup's totals are counted: that is the one point between the
 * scan and the read that a test can reach without a hook in the engine, and it makes the window certain instead of
 * likely. A folder is swapped for a link to a secret folder right when the totals are counted ({@link
 * RaceFixture.afterScan}): the walk takes the scan's listing of the folder above it back rather than probe it again,
 * so the window for a folder is between the scan and the walk. A watcher child process also swaps files in a loop while backups run ({@link startWatcher}).
 *
 * A FIFO opened for reading without O_NONBLOCK blocks until a writer comes, possibly on the main thread, where no
 * timer of the test could fire: {@link fifoGuard} is a separate process that, once its deadline passes, opens every
 * FIFO for writing (releasing any reader blocked in open) and records that it had to. The test then fails instead
 * of hanging.
 *
 * The snapshot is then read back through the vault API: no file's content may hold the secret's marker.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, renameSync, symlinkSync } from 'node:fs';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { AttributeProbe } from '../../src/scan/attributes.js';
import { defaultProbe } from '../../src/scan/probe.js';
import { type BackupOptions, type BackupResult, backup } from '../../src/engine/backup.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import type { Vault } from '../../src/repo/vault.js';
import { type TreeNode, nodeDisplayName } from '../../src/repo/tree.js';
import type { VaultFixture } from './vaults.js';

/** Bytes that only the secret files hold. */
export const MARKER = 'TOP-SECRET-MARKER-0123456789';

/** `length` bytes of the secret: the marker, repeated. */
export function secretBytes(length: number): Buffer {
  return Buffer.alloc(length, MARKER);
}

/** `length` bytes of a genuine source file, which never hold the marker. */
export function genuineBytes(length: number, seed: number): Buffer {
  return Buffer.alloc(length, `genuine-${seed}-`);
}

/** File sizes that take each of the backup's read paths: one chunk (the addon), small (synchronous reads), large. */
export const SIZES = { one: 1000, small: 600 * 1024, large: 1536 * 1024 } as const;

type Swap = () => Promise<void>;

export interface RaceFixture {
  readonly src: string;
  /** Swaps to run once the backup's listing has probed the path (absolute) they are keyed by. */
  readonly swaps: Map<string, Swap>;
  /** The relative paths expected in the report as `replaced`. */
  readonly replaced: string[];
  readonly fifos: string[];
  /** Swaps to run, synchronously, once the backup's totals are counted (before the walk). */
  readonly afterScan: (() => void)[];
}

/** Builds the source and the secrets outside it, with the swap of every scenario. */
export async function raceSource(f: VaultFixture): Promise<RaceFixture> {
  const src = f.path('src');
  const outside = f.path('outside');
  await mkdir(src);
  await mkdir(outside);
  const swaps = new Map<string, Swap>();
  const replaced: string[] = [];
  const fifos: string[] = [];
  let seed = 0;
  for (const [kind, size] of Object.entries(SIZES)) {
    const secret = join(outside, `secret-${kind}`);
    await writeFile(secret, secretBytes(size));
    // A link to the secret, put in the file's place.
    const linked = join(src, `link-${kind}`);
    await writeFile(linked, genuineBytes(size, ++seed));
    swaps.set(linked, async () => {
      await rename(linked, `${linked}.was`);
      await symlink(secret, linked);
    });
    replaced.push(`link-${kind}`);
    // A FIFO, put in the file's place: opening it for reading without O_NONBLOCK waits for a writer.
    const fifo = join(src, `fifo-${kind}`);
    await writeFile(fifo, genuineBytes(size, ++seed));
    fifos.push(fifo);
    swaps.set(fifo, async () => {
      await rename(fifo, `${fifo}.was`);
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    });
    replaced.push(`fifo-${kind}`);
    // Another file, of the same size, renamed over it.
    const over = join(src, `renamed-${kind}`);
    const other = join(outside, `other-${kind}`);
    await writeFile(over, genuineBytes(size, ++seed));
    await writeFile(other, secretBytes(size));
    swaps.set(over, () => rename(other, over));
    replaced.push(`renamed-${kind}`);
  }
  // A folder swapped for a link to a secret folder holding files of the same names.
  const dir = join(src, 'dir-link');
  await mkdir(dir);
  await writeFile(join(dir, 'inner'), genuineBytes(SIZES.one, ++seed));
  await mkdir(join(outside, 'secret-dir'));
  await writeFile(join(outside, 'secret-dir', 'inner'), secretBytes(SIZES.one));
  const afterScan = [
    (): void => {
      renameSync(dir, `${dir}.was`);
      symlinkSync(join(outside, 'secret-dir'), dir);
    },
  ];

  // A folder moved away once entered (its entries probed), a link to a secret folder put at its path: what is below
  // must still be read from the folder entered, or left out, never through the link.
  const deep = join(src, 'deep');
  await mkdir(join(deep, 'sub'), { recursive: true });
  await writeFile(join(deep, 'sub', 'file'), genuineBytes(SIZES.one, ++seed));
  await writeFile(join(deep, 'sub', 'big'), genuineBytes(SIZES.large, ++seed));
  await mkdir(join(outside, 'secret-deep', 'sub'), { recursive: true });
  await writeFile(join(outside, 'secret-deep', 'sub', 'file'), secretBytes(SIZES.one));
  await writeFile(join(outside, 'secret-deep', 'sub', 'big'), secretBytes(SIZES.large));
  swaps.set(join(deep, 'sub', 'file'), async () => {
    await rename(deep, `${deep}.was`);
    await symlink(join(outside, 'secret-deep'), deep);
  });
  // Files left alone, which must be backed up as they are.
  await writeFile(join(src, 'plain-one'), genuineBytes(SIZES.one, ++seed));
  await writeFile(join(src, 'plain-large'), genuineBytes(SIZES.large, ++seed));
  return { src, swaps, replaced, fifos, afterScan };
}

/** The real probe, which runs each registered swap right after probing its path, once `armed()` says so. */
export function swappingProbe(swaps: Map<string, Swap>, armed: () => boolean): AttributeProbe {
  const base = defaultProbe();
  return {
    name: 'swapping',
    deviceOf: (p) => base.deviceOf(p),
    probe: async (paths, context) => {
      const results = await base.probe(paths, context);
      if (armed()) {
        for (const p of paths) {
          const swap = swaps.get(p);
          swaps.delete(p);
          if (swap) await swap();
        }
      }
      return results;
    },
  };
}

/**
 * A process that, once `ms` have passed, opens every FIFO in `fifos` for writing in a loop, releasing a reader
 * blocked in open, and records each release in `marker`. Stop it with `stop()` once the backup has ended.
 */
export function fifoGuard(fifos: readonly string[], marker: string, ms = 20_000): { stop(): void } {
  const script = `
    const fs = require('node:fs');
    const [marker, ...fifos] = process.argv.slice(1);
    setTimeout(() => setInterval(() => {
      for (const f of fifos) {
        try {
          const fd = fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
          fs.closeSync(fd);
          fs.appendFileSync(marker, f + '\\n');
        } catch {}
      }
    }, 100), ${ms});`;
  const child = spawn(process.execPath, ['-e', script, marker, ...fifos], { stdio: 'ignore' });
  return { stop: () => void child.kill('SIGKILL') };
}

/** Runs `backup` (with `options`, e.g. the kernels) with the swaps armed and the FIFO guard on; fails the test if a FIFO had to be released. */
export async function raceBackup(f: VaultFixture, race: RaceFixture, options: BackupOptions = {}): Promise<BackupResult> {
  let armed = false;
  const marker = f.path('fifo-released');
  const guard = fifoGuard(race.fifos, marker);
  let result: BackupResult;
  try {
    result = await backup(f.vault, [race.src], {
      ...options,
      scratchDir: f.path('scratch'),
      reportPath: f.path('report.jsonl'),
      probe: swappingProbe(race.swaps, () => armed),
      // Totals are counted before the walk, by the same probe: the swaps wait for the walk's own listing.
      onProgress: (p) => {
        if (p.phase !== 'scan' || armed) return;
        armed = true;
        for (const swap of race.afterScan.splice(0)) swap();
      },
      signal: AbortSignal.timeout(120_000),
    });
  } finally {
    guard.stop();
  }
  expect(existsSync(marker) ? `a backup blocked opening a FIFO: ${await readFile(marker, 'utf8')}` : 'no FIFO blocked').toBe('no FIFO blocked');
  return result;
}

/** Every file of a snapshot, by relative path (names shown as nodeDisplayName), with its content read back. */
export async function snapshotFiles(vault: Vault, snapshotId: string): Promise<Map<string, { node: TreeNode; content: Buffer }>> {
  const index = await vault.loadIndex();
  const snapshot = await vault.readSnapshot(snapshotId);
  const out = new Map<string, { node: TreeNode; content: Buffer }>();
  const walk = async (treeId: string, rel: string): Promise<void> => {
    for (let id: string | undefined = treeId; id; ) {
      const tree = await vault.readTree(index, id);
      for (const node of tree.nodes) {
        const path = rel === '' ? nodeDisplayName(node) : `${rel}/${nodeDisplayName(node)}`;
        if (node.type === 'dir') await walk(node.subtree!, path);
        else if (node.type === 'file') {
          const parts: Buffer[] = [];
          for (const hex of node.content ?? []) parts.push(await vault.readBlob(index, Buffer.from(hex, 'hex'), ObjectType.data));
          out.set(path, { node, content: Buffer.concat(parts) });
        } else out.set(path, { node, content: Buffer.alloc(0) });
      }
      id = tree.next;
    }
  };
  await walk(snapshot.tree, '');
  return out;
}

/** The lines of a backup's report. */
export async function reportLines(path: string): Promise<{ path: string; reason: string; detail?: string }[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { path: string; reason: string; detail?: string });
}

/** Asserts what a raced backup must show: no secret byte anywhere, every swapped entry reported `replaced` and absent. */
export async function expectRaceOutcome(f: VaultFixture, race: RaceFixture, result: BackupResult): Promise<void> {
  expect(result.snapshot).toBeDefined();
  const files = await snapshotFiles(f.vault, result.snapshot!);
  const withSecret = [...files].filter(([, { content }]) => content.includes(MARKER)).map(([path]) => path);
  expect(withSecret).toEqual([]);
  const lines = await reportLines(result.reportPath);
  const replacedPaths = lines.filter((l) => l.reason === 'replaced').map((l) => l.path);
  for (const rel of race.replaced) {
    expect(replacedPaths, `${rel} reported as replaced`).toContain(join(race.src, rel));
    expect(files.has(`src/${rel}`), `${rel} left out of the snapshot`).toBe(false);
  }
  // The folder swapped for a link between the scan and the walk: the walk lists its parent again (the parent
  // changed), finds a link there and skips it, by the support rules or as replaced; nothing below it is stored.
  const dirLink = lines.filter((l) => l.path === join(race.src, 'dir-link')).map((l) => l.reason);
  expect(dirLink.length === 1 && ['replaced', 'reparse-point'].includes(dirLink[0]!), `dir-link reported: ${dirLink.join()}`).toBe(true);
  expect([...files.keys()].filter((p) => p.startsWith('src/dir-link/'))).toEqual([]);
  // What nobody touched is there, whole.
  expect(files.get('src/plain-one')?.content.length).toBe(SIZES.one);
  expect(files.get('src/plain-large')?.content.length).toBe(SIZES.large);
  expect(result.status).toBe('warnings');
}

/**
 * A watcher process that, until stopped, turns each of `targets` in a loop into a symbolic link to `secret`, then a
 * FIFO, then the genuine file again. Each state is made once, under a spare name in `spares` (a folder outside the
 * source, on the same file system), and moved in and out by rename: a loop of renames alone is fast enough to hit
 * the window between a backup's probe and its read many times a run.
 */
export function startWatcher(targets: readonly string[], secret: string, spares: string): { stop(): Promise<void> } {
  const script = `
    const fs = require('node:fs');
    const { execFileSync } = require('node:child_process');
    const [secret, spares, ...targets] = process.argv.slice(1);
    const spare = (i, kind) => spares + '/' + i + '.' + kind;
    targets.forEach((t, i) => fs.symlinkSync(secret, spare(i, 'link')));
    execFileSync('mkfifo', targets.map((t, i) => spare(i, 'fifo')));
    let n = 0;
    const step = () => {
      targets.forEach((t, i) => {
        try {
          switch (n % 3) {
            case 0: fs.renameSync(t, spare(i, 'file')); fs.renameSync(spare(i, 'link'), t); break;
            case 1: fs.renameSync(t, spare(i, 'link')); fs.renameSync(spare(i, 'fifo'), t); break;
            default: fs.renameSync(t, spare(i, 'fifo')); fs.renameSync(spare(i, 'file'), t); break;
          }
        } catch {}
      });
      n++;
      setImmediate(step);
    };
    step();`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script, secret, spares, ...targets], { stdio: 'ignore' });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/**
 * Repeated backups of 200 files while a watcher process (startWatcher) swaps them for links to a secret, FIFOs and
 * other files in a loop: no backup may store a secret byte under any name, nor block opening a FIFO (a guard per run
 * releases a reader stuck in open and records it, so a regression fails instead of hanging).
 */
export async function expectWatcherHarmless(f: VaultFixture, options: BackupOptions = {}): Promise<void> {
  const src = f.path('src');
  await mkdir(src);
  const secret = f.path('secret');
  const spares = f.path('spares');
  await mkdir(spares);
  await writeFile(secret, secretBytes(4000));
  const targets = Array.from({ length: 200 }, (_, i) => join(src, `t${i}`));
  for (const t of targets) await writeFile(t, genuineBytes(4000, 1));
  const watcher = startWatcher(targets, secret, spares);
  const released = f.path('fifo-released');
  const snapshots: string[] = [];
  try {
    for (let run = 0; run < 20 && !existsSync(released); run++) {
      // A guard per run: past its deadline it releases only a reader blocked in open, never this run's brief
      // non-blocking opens, which end long before.
      const guard = fifoGuard(targets, released);
      try {
        const r = await backup(f.vault, [src], { ...options, scratchDir: f.path('scratch'), parent: null, signal: AbortSignal.timeout(120_000) });
        snapshots.push(r.snapshot!);
      } finally {
        guard.stop();
      }
    }
  } finally {
    await watcher.stop();
  }
  expect(existsSync(released), 'a backup blocked opening a FIFO').toBe(false);
  for (const id of snapshots) {
    const files = await snapshotFiles(f.vault, id);
    expect([...files].filter(([, { content }]) => content.includes(MARKER)).map(([p]) => p)).toEqual([]);
  }
}
