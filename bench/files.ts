/**
 * Millions-of-files benchmark: many small files, as whole processes, vaultpath's CLI beside restic (when it is on
 * PATH). Not part of `npm test`.
 *
 * The tree (deterministic, built once under the system temp folder and reused; one tree per set of sizes):
 *   - `--files N` small files in all (default 1,000,000), each 0–4 KiB of seeded bytes (slices of one seeded
 *     stream, so most files differ and a few repeat);
 *   - of them, `--big-folder M` in one folder (default 200,000, at most a fifth of N);
 *   - the rest in folders of `--per-folder K` (default 250), two levels deep: a few thousand folders at 1M.
 * Steps, each in a fresh process: first backup, unchanged backup, full restore. Each step starts with the disk's
 * write-back done (`sync`, outside its time); nothing is pre-read (reading a million files to warm them costs more
 * than a step). Each step reports wall seconds and peak RSS (GNU time), and with restic the ratio ours / restic's.
 *
 * Options: `--only vaultpath|restic`; `--cli PATH` runs another build of vaultpath's CLI (to compare builds);
 * `--profile DIR` writes a CPU profile of vaultpath's unchanged backup into DIR; `--generate` builds the tree and
 * stops; `--json` prints the rows as JSON.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const KiB = 1024;
const PASSPHRASE = 'benchmark passphrase, not secret';

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
}
function count(name: string, fallback: number): number {
  const raw = flag(name);
  if (raw === undefined) return fallback;
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`--${name} expected a whole number, got ${raw}`);
  return n;
}

const FILES = count('files', 1_000_000);
const BIG = Math.min(count('big-folder', 200_000), Math.floor(FILES / 5));
const PER_FOLDER = Math.max(1, count('per-folder', 250));
const only = flag('only');
const cli = flag('cli') ? resolve(flag('cli')!) : new URL('../../dist/cli/main.js', import.meta.url).pathname;
const profileDir = flag('profile');
const base = join(tmpdir(), 'vaultpath-bench-files');
const corpus = join(base, `tree-${FILES}-${BIG}-${PER_FOLDER}`);

/** Seeded bytes every file is a slice of: 64 MiB, so files rarely share content. */
const POOL = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16)).update(Buffer.alloc(64 * 1024 * KiB));

function content(n: number): Buffer {
  // Sizes spread over 0–4 KiB; offsets scattered over the pool (Knuth's multiplicative hash of the number).
  const size = (n * 2654435761) % (4 * KiB + 1);
  const at = ((n * 40503) % (POOL.length / 64)) * 61 % (POOL.length - 4 * KiB);
  return POOL.subarray(at, at + size);
}

/** Builds the tree once; a tree left half-built by an interrupted run is built again. */
async function buildTree(): Promise<void> {
  const done = join(corpus, '.complete');
  if (existsSync(done)) return;
  await rm(corpus, { recursive: true, force: true });
  const started = Date.now();
  let n = 0;
  const big = join(corpus, 'big');
  mkdirSync(big, { recursive: true });
  for (let i = 0; i < BIG; i++) writeFileSync(join(big, `f${String(i).padStart(6, '0')}.dat`), content(n++));
  const folders = Math.ceil((FILES - BIG) / PER_FOLDER);
  const fanOut = Math.max(1, Math.ceil(Math.sqrt(folders)));
  for (let d = 0; n < FILES; d++) {
    const dir = join(corpus, `d${Math.floor(d / fanOut)}`, `s${d % fanOut}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < PER_FOLDER && n < FILES; i++) writeFileSync(join(dir, `file-${i}.txt`), content(n++));
  }
  await writeFile(done, '');
  console.error(`built ${FILES.toLocaleString('en-US')} files (${folders.toLocaleString('en-US')} folders and one of ${BIG.toLocaleString('en-US')}) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

interface Step {
  readonly wall: number;
  readonly rssMiB: number;
}

function timed(command: string, args: string[], env: Record<string, string>): Step {
  spawnSync('sync');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', command, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const last = r.stderr.trim().split('\n').at(-1)!;
  const [wall, kb] = last.split(' ').map(Number);
  if (r.status !== 0 && r.status !== 3) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  return { wall: wall!, rssMiB: kb! / 1024 };
}

/**
 * Waits until a minute has passed since files were last deleted here: ext4 without a journal skips inodes freed in
 * the last 60 seconds, checking each, which would charge a restore for the cleanup before it (see bench/e2e.ts).
 */
async function settle(): Promise<void> {
  const stamp = join(base, '.last-delete');
  const last = existsSync(stamp) ? Number(readFileSync(stamp, 'utf8')) : 0;
  const wait = last + 65_000 - Date.now();
  if (wait > 0) {
    console.error(`waiting ${Math.ceil(wait / 1000)} s: files were deleted here less than a minute ago`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function remove(path: string): Promise<void> {
  if (!existsSync(path)) return;
  await rm(path, { recursive: true, force: true });
  await writeFile(join(base, '.last-delete'), String(Date.now()));
}

async function run(tool: 'vaultpath' | 'restic'): Promise<Record<string, Step>> {
  // Per tree: runs of different sizes may share the cache folder.
  const repo = join(base, `${tool}-repo-${FILES}`);
  const target = join(base, `${tool}-restore-${FILES}`);
  await remove(repo);
  await remove(target);
  await settle();
  const steps: Record<string, Step> = {};
  if (tool === 'vaultpath') {
    const env = { VAULTPATH_PASSPHRASE: PASSPHRASE };
    const node = process.execPath;
    spawnSync(node, [cli, 'init', '--vault', repo], { env: { ...process.env, ...env } });
    const backupArgs = [cli, 'backup', corpus, '--vault', repo, '--scratch', join(base, `scratch-${FILES}`)];
    steps['first backup'] = timed(node, backupArgs, env);
    const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', resolve(profileDir)] : [];
    steps['unchanged backup'] = timed(node, [...profile, ...backupArgs], env);
    steps['full restore'] = timed(node, [cli, 'restore', 'latest', '--vault', repo, '--target', target, '--recovery-folder', join(base, `recovery-${FILES}`)], env);
  } else {
    const env = { RESTIC_PASSWORD: PASSPHRASE, RESTIC_REPOSITORY: repo };
    spawnSync('restic', ['init', '-q'], { env: { ...process.env, ...env } });
    const backupArgs = ['backup', corpus, '--compression', 'off', '-q'];
    steps['first backup'] = timed('restic', backupArgs, env);
    steps['unchanged backup'] = timed('restic', backupArgs, env);
    steps['full restore'] = timed('restic', ['restore', 'latest', '--target', target, '-q'], env);
  }
  await remove(target);
  await remove(repo);
  return steps;
}

async function main(): Promise<void> {
  mkdirSync(base, { recursive: true });
  await buildTree();
  if (process.argv.includes('--generate')) return;
  const haveRestic = only !== 'vaultpath' && spawnSync('restic', ['version']).status === 0;
  const ours = only === 'restic' ? undefined : await run('vaultpath');
  const theirs = haveRestic ? await run('restic') : undefined;
  const stepNames = Object.keys(ours ?? theirs ?? {});
  const rows = stepNames.map((step) => ({
    step,
    vaultpath: ours ? { seconds: ours[step]!.wall, peakRssMiB: ours[step]!.rssMiB } : undefined,
    restic: theirs ? { seconds: theirs[step]!.wall, peakRssMiB: theirs[step]!.rssMiB } : undefined,
    ratio: ours && theirs ? ours[step]!.wall / theirs[step]!.wall : undefined,
  }));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ files: FILES, bigFolder: BIG, perFolder: PER_FOLDER, rows }, null, 2));
    return;
  }
  console.log(`${FILES.toLocaleString('en-US')} files of 0–4 KiB (one folder of ${BIG.toLocaleString('en-US')}, the rest ${PER_FOLDER} a folder); whole processes, wall seconds, peak RSS`);
  const n = (x: number | undefined, digits: number, width: number): string => (x === undefined ? '–' : x.toFixed(digits)).padStart(width);
  console.log(`${'step'.padEnd(18)}${'vaultpath s'.padStart(12)}${'RSS MiB'.padStart(9)}${'restic s'.padStart(10)}${'RSS MiB'.padStart(9)}${'ratio'.padStart(8)}`);
  for (const r of rows) {
    console.log(`${r.step.padEnd(18)}${n(r.vaultpath?.seconds, 2, 12)}${n(r.vaultpath?.peakRssMiB, 0, 9)}${n(r.restic?.seconds, 2, 10)}${n(r.restic?.peakRssMiB, 0, 9)}${n(r.ratio, 2, 8)}`);
  }
  if (!theirs && only !== 'vaultpath') console.log('(restic is not on PATH: install it to compare)');
}

await main();
