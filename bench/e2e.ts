/**
 * End-to-end benchmark: whole backups and restores through the CLI, as whole processes, against restic when it is
 * on PATH (Debian: `apt-get install restic`). Not part of `npm test`.
 *
 * The corpus (~1 GiB, deterministic, built once under the temp folder):
 *   - 6 files of 64 MiB of incompressible data;
 *   - 200 text files of ~256 KiB;
 *   - 10,000 small files of 1–32 KiB;
 *   - one 64 MiB file present twice;
 *   - a 256 MiB sparse file holding 16 MiB of data.
 * Steps: first backup, unchanged second backup, backup after a ~1% change (bytes overwritten in a large file,
 * bytes inserted at the start of a text file, appends, small files added and deleted), and a full restore.
 * Each step starts from a warm page cache (its inputs and the program's files read once beforehand) and finished
 * write-back (`sync`), both outside its time (`--cold`: nothing is pre-read, for either tool; only `sync` runs
 * before each step, as a plain side-by-side script would, so the steps meet whatever the page cache kept). Each
 * reports wall seconds, MB/s of the corpus's logical size, and peak RSS (GNU time), and with restic the ratio ours
 * / restic's (lower is better). `--json` prints the rows as JSON.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MiB = 1024 * 1024;
const base = join(tmpdir(), 'vaultpath-bench-e2e');
const corpus = join(base, 'corpus');
const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const PASSPHRASE = 'benchmark passphrase, not secret';

function bytes(length: number, seed: number): Buffer {
  return createCipheriv('aes-256-ctr', Buffer.alloc(32, seed), Buffer.alloc(16)).update(Buffer.alloc(length));
}

function text(length: number, seed: number): Buffer {
  const words = ['vault', 'path', 'backup', 'chunk', 'seal', 'pack', 'index', 'tree', 'restore', 'verify', 'scratch', 'throttle'];
  const noise = bytes(length, seed);
  let out = '';
  for (let i = 0; out.length < length; i++) out += words[noise[i % noise.length]! % words.length] + (noise[(i * 7) % noise.length]! % 9 === 0 ? '\n' : ' ');
  return Buffer.from(out.slice(0, length));
}

async function buildCorpus(): Promise<void> {
  if (existsSync(join(base, '.corpus-complete'))) return;
  await rm(corpus, { recursive: true, force: true });
  await mkdir(join(corpus, 'large'), { recursive: true });
  for (let i = 0; i < 6; i++) await writeFile(join(corpus, 'large', `blob-${i}.bin`), bytes(64 * MiB, 10 + i));
  await mkdir(join(corpus, 'text'));
  for (let i = 0; i < 200; i++) await writeFile(join(corpus, 'text', `doc-${i}.txt`), text(256 * 1024, 100 + (i % 250)));
  for (let d = 0; d < 100; d++) {
    const dir = join(corpus, 'small', `d${d}`);
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 100; i++) {
      const n = d * 100 + i;
      await writeFile(join(dir, `f${i}.dat`), bytes(1024 + ((n * 7919) % (31 * 1024)), (n % 200) + 20).subarray(0));
    }
  }
  const twice = bytes(64 * MiB, 77);
  await writeFile(join(corpus, 'twice-a.bin'), twice);
  await writeFile(join(corpus, 'twice-b.bin'), twice);
  const sparse = join(corpus, 'sparse.img');
  await writeFile(sparse, '');
  await truncate(sparse, 256 * MiB);
  const fh = await open(sparse, 'r+');
  for (let i = 0; i < 4; i++) await fh.write(bytes(4 * MiB, 90 + i), 0, 4 * MiB, (i * 64 + 8) * MiB);
  await fh.close();
  await writeFile(join(base, '.corpus-complete'), '');
}

/** About 1% of the corpus changes, in the ways users change files. {@link revertChange} undoes it. */
async function changeCorpus(): Promise<void> {
  const fh = await open(join(corpus, 'large', 'blob-2.bin'), 'r+');
  await fh.write(bytes(4 * MiB, 200), 0, 4 * MiB, 30 * MiB); // overwritten in place
  await fh.close();
  const doc = join(corpus, 'text', 'doc-7.txt');
  await writeFile(doc, Buffer.concat([Buffer.from('inserted at the start\n'), await readFile(doc)]));
  for (let i = 0; i < 20; i++) await appendFile(join(corpus, 'text', `doc-${20 + i}.txt`), text(16 * 1024, 300 + i));
  for (let i = 0; i < 100; i++) await writeFile(join(corpus, 'small', 'd5', `new-${i}.dat`), bytes(8 * 1024, 400 + i));
  for (let i = 0; i < 50; i++) await unlink(join(corpus, 'small', 'd6', `f${i}.dat`));
}

/**
 * Puts back what {@link changeCorpus} changed, file by file, so the next tool backs up the same corpus. Rebuilding
 * the corpus instead would delete and create 10,000 files just before the next tool's steps (see {@link settle}).
 */
async function revertChange(): Promise<void> {
  const fh = await open(join(corpus, 'large', 'blob-2.bin'), 'r+');
  await fh.write(bytes(34 * MiB, 12).subarray(30 * MiB), 0, 4 * MiB, 30 * MiB);
  await fh.close();
  await writeFile(join(corpus, 'text', 'doc-7.txt'), text(256 * 1024, 107));
  for (let i = 20; i < 40; i++) await writeFile(join(corpus, 'text', `doc-${i}.txt`), text(256 * 1024, 100 + i));
  for (let i = 0; i < 100; i++) await unlink(join(corpus, 'small', 'd5', `new-${i}.dat`));
  for (let i = 0; i < 50; i++) {
    const n = 6 * 100 + i;
    await writeFile(join(corpus, 'small', 'd6', `f${i}.dat`), bytes(1024 + ((n * 7919) % (31 * 1024)), (n % 200) + 20));
  }
}

/**
 * Waits until a minute has passed since this benchmark last deleted a restored tree. On ext4 without a journal
 * (many virtual machines' root disks), the inode allocator skips every inode freed in the last 60 seconds, checking
 * each one, so creating 10,000 files just after deleting 10,000 costs seconds of system time that belongs to
 * neither tool: a restore's time would depend on how recently the previous one was cleaned up.
 */
async function settle(): Promise<void> {
  const stamp = join(base, '.last-delete');
  const last = existsSync(stamp) ? Number(await readFile(stamp, 'utf8')) : 0;
  const wait = last + 65_000 - Date.now();
  if (wait > 0) {
    console.error(`waiting ${Math.ceil(wait / 1000)} s: files were deleted here less than a minute ago`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** Deletes what the runs restored, and notes when, for {@link settle}. */
async function removeRestored(): Promise<void> {
  for (const tool of ['vaultpath', 'restic']) {
    const target = join(base, `${tool}-restore`);
    if (!existsSync(target)) continue;
    await rm(target, { recursive: true, force: true });
    await writeFile(join(base, '.last-delete'), String(Date.now()));
  }
}

interface Step {
  readonly wall: number;
  readonly rssMiB: number;
}

/**
 * Reads every file below `paths` once, outside the timing, so each step starts from the page cache whatever came
 * before it: its inputs, and the program itself. Without this, on a virtual machine whose memory manager gives idle
 * page cache back to the host within a minute or two (here, DAMON reclaim), the first tool's first backup read the
 * corpus from disk and the second's from memory, and every Node start read the 94 MB node binary again.
 */
function warm(...paths: string[]): void {
  spawnSync('sh', ['-c', 'find "$@" -type f -exec cat {} + > /dev/null 2>&1', 'warm', ...paths]);
}

/** The files each tool runs from: its binary, and for vaultpath its build and runtime dependencies. */
function programFiles(command: string): string[] {
  if (command !== process.execPath) return [spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim()];
  const root = new URL('../../', import.meta.url).pathname;
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  return [process.execPath, join(root, 'dist'), join(root, 'build'), ...Object.keys(pkg.dependencies ?? {}).map((d) => join(root, 'node_modules', d))];
}

/** `--cold`: no step's inputs or program files are read beforehand. */
const cold = process.argv.includes('--cold');

function timed(command: string, args: string[], env: Record<string, string>, inputs: readonly string[]): Step {
  if (!cold) warm(...programFiles(command), ...inputs);
  // Every step starts with the disk's write-back done (outside the timing), so no step pays for the one before it
  // and the tools are compared on equal terms; a step's own writes are still in its time as far as they block it.
  spawnSync('sync');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', command, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  const last = r.stderr.trim().split('\n').at(-1)!;
  const [wall, kb] = last.split(' ').map(Number);
  if (r.status !== 0 && r.status !== 3) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  return { wall: wall!, rssMiB: kb! / 1024 };
}

async function run(tool: 'vaultpath' | 'restic'): Promise<Record<string, Step>> {
  const repo = join(base, `${tool}-repo`);
  const target = join(base, `${tool}-restore`);
  await rm(repo, { recursive: true, force: true });
  const steps: Record<string, Step> = {};
  if (tool === 'vaultpath') {
    const env = { VAULTPATH_PASSPHRASE: PASSPHRASE };
    const node = process.execPath;
    spawnSync(node, [cli, 'init', '--vault', repo], { env: { ...process.env, ...env } });
    const backupArgs = [cli, 'backup', corpus, '--vault', repo, '--scratch', join(base, 'scratch')];
    steps['first backup'] = timed(node, backupArgs, env, [corpus, repo]);
    steps['unchanged backup'] = timed(node, backupArgs, env, [corpus, repo]);
    await changeCorpus();
    steps['after a 1% change'] = timed(node, backupArgs, env, [corpus, repo]);
    steps['full restore'] = timed(node, [cli, 'restore', 'latest', '--vault', repo, '--target', target, '--recovery-folder', join(base, 'recovery')], env, [repo]);
  } else {
    const env = { RESTIC_PASSWORD: PASSPHRASE, RESTIC_REPOSITORY: repo };
    spawnSync('restic', ['init', '-q'], { env: { ...process.env, ...env } });
    const backupArgs = ['backup', corpus, '--compression', 'off', '-q'];
    steps['first backup'] = timed('restic', backupArgs, env, [corpus, repo]);
    steps['unchanged backup'] = timed('restic', backupArgs, env, [corpus, repo]);
    await changeCorpus();
    steps['after a 1% change'] = timed('restic', backupArgs, env, [corpus, repo]);
    steps['full restore'] = timed('restic', ['restore', 'latest', '--target', target, '-q'], env, [repo]);
  }
  await revertChange();
  return steps;
}

async function main(): Promise<void> {
  const haveRestic = spawnSync('restic', ['version']).status === 0;
  await buildCorpus();
  const logical = 6 * 64 * MiB + 200 * 256 * 1024 + 10_000 * 16.5 * 1024 + 2 * 64 * MiB + 256 * MiB;
  await removeRestored(); // left by an interrupted run
  await settle();
  let ours: Record<string, Step>;
  let theirs: Record<string, Step> | undefined;
  try {
    // Each run changes the corpus and puts it back, so both tools back up the same bytes.
    ours = await run('vaultpath');
    theirs = haveRestic ? await run('restic') : undefined;
  } catch (e) {
    await rm(join(base, '.corpus-complete'), { force: true }); // the corpus may be left changed: rebuild it next time
    throw e;
  } finally {
    await removeRestored();
  }

  const rows = Object.keys(ours).map((step) => ({
    step,
    seconds: ours[step]!.wall,
    mbPerSecond: logical / 1e6 / ours[step]!.wall,
    peakRssMiB: ours[step]!.rssMiB,
    restic: theirs ? { seconds: theirs[step]!.wall, peakRssMiB: theirs[step]!.rssMiB, ratio: ours[step]!.wall / theirs[step]!.wall } : undefined,
  }));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ corpusBytes: logical, mode: cold ? 'cold' : 'warm', rows }, null, 2));
    return;
  }
  console.log(`corpus: ${(logical / 2 ** 30).toFixed(2)} GiB logical; ${cold ? 'cold (nothing pre-read)' : 'warm (inputs and programs read beforehand)'}; whole processes, wall seconds; MB/s of the logical size`);
  console.log(`${'step'.padEnd(20)}${'vaultpath'.padStart(11)}${'MB/s'.padStart(8)}${'RSS MiB'.padStart(9)}` + (theirs ? `${'restic'.padStart(9)}${'RSS MiB'.padStart(9)}${'ratio'.padStart(8)}` : ''));
  for (const r of rows) {
    console.log(
      `${r.step.padEnd(20)}${r.seconds.toFixed(2).padStart(11)}${r.mbPerSecond.toFixed(0).padStart(8)}${r.peakRssMiB.toFixed(0).padStart(9)}` +
        (r.restic ? `${r.restic.seconds.toFixed(2).padStart(9)}${r.restic.peakRssMiB.toFixed(0).padStart(9)}${r.restic.ratio.toFixed(2).padStart(8)}` : ''),
    );
  }
  if (!theirs) console.log('(restic is not on PATH: install it to compare)');
  if (process.env['NODE_EXTRA_CA_CERTS']) {
    // Node 20 reads and parses the whole CA bundle at start-up when this is set, before any of our code runs.
    console.log('(NODE_EXTRA_CA_CERTS is set: every node process parses its CA bundle at start-up, which each vaultpath step pays)');
  }
}

await main();
