/**
 * The built command at the edges of its environment: a command line it does not accept, an output that cannot be
 * written, and working-folder variables that are empty or relative. Every case runs the real CLI as a child process
 * with a real descriptor on its stdout (a pipe whose reader is gone, a file opened read-only, /dev/full).
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../support/cli.js';
import { tempDir } from '../support/trees.js';

/** One line on stderr, ending in its code; no stack frame, no Node internals. */
function expectOneLine(stderr: string, code: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^vaultpath: .+ \[VP_[A-Z_]+\]$/);
  expect(lines[0]).toMatch(code);
  expect(stderr).not.toMatch(/^\s+at |node:internal|Error: /m);
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Runs `sh -c script` with `$VP` the CLI, and collects its stderr. */
function sh(script: string, env: Record<string, string> = {}, cwd?: string): Promise<Exit> {
  const child = spawn('sh', ['-c', script], { cwd, env: { ...process.env, ...env, VP: CLI, NODE: process.execPath }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

/** Runs the CLI with a stdout pipe whose reading end is closed before the command starts: every write gets EPIPE. */
function withReaderGone(args: readonly string[], env: Record<string, string> = {}): Promise<Exit> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

describe('the vaultpath command at its edges', () => {
  let dir: string;
  let src: string;
  beforeAll(async () => {
    dir = await tempDir('vaultpath-cli-edges-');
    src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'hello');
    await symlink('a.txt', join(src, 'link')); // skipped: the scan has a report line, and a report file to write
    await writeFile(join(dir, 'read-only'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  describe('a command line it does not accept', () => {
    it.each([
      ['an unknown option', ['backup', '--bogus', 'x'], /unknown option '--bogus'/],
      ['an option without its value', ['snapshots', '--vault'], /option '--vault <value>' argument missing/],
      ['a value for a switch', ['snapshots', '--json=yes'], /'--json' does not take an argument/],
      ['an unknown command', ['frobnicate'], /unknown command "frobnicate"/],
      ['a missing argument', ['scan'], /scan needs at least one folder/],
    ])('%s: exit 2, one line with VP_USAGE and the way to the help', async (_, args, what) => {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expectOneLine(r.stderr, /VP_USAGE\]$/);
      expect(r.stderr).toMatch(what);
      expect(r.stderr).toMatch(/run "vaultpath --help" for usage/);
      expect(r.stderr).not.toMatch(/To specify a positional argument/); // parseArgs' advice, which does not apply
      expect(r.stdout).toBe('');
    });
  });

  describe('an output that cannot be written', () => {
    it.each([
      ['the human summary', ['scan']],
      ['the JSON', ['scan', '--json']],
    ])('a reader gone before the output is written (EPIPE), for %s: exit 141, nothing said', async (_, args) => {
      const r = await withReaderGone([...args, src]);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(141);
      expect(r.stderr).toBe('');
    });

    it('a reader gone in the middle of a command stops it through its signal, so that it cleans up after itself', async () => {
      // The demo prints a line after creating its vault, then backs up, restores and verifies: the failed write stops
      // it there, and it removes its workspace (a folder in the temporary folder) on the way out.
      const tmp = join(dir, 'demo-tmp');
      await mkdir(tmp, { mode: 0o700 });
      const r = await withReaderGone(['demo', '--source', src], { TMPDIR: tmp });
      expect(r.code).toBe(141);
      expect(r.stderr).toBe('');
      expect(await readdir(tmp)).toEqual([]);
    });

    it('a stdout opened read-only (EBADF): exit 1, one line with VP_LOCAL_IO', async () => {
      const r = await sh('exec "$NODE" "$VP" scan "$SRC" 1<"$RO"', { SRC: src, RO: join(dir, 'read-only') });
      expect(r.code).toBe(1);
      expectOneLine(r.stderr, /could not write the output \(stdout\): .*\(EBADF\) \[VP_LOCAL_IO\]$/);
    });

    it('a full stdout (/dev/full: ENOSPC): exit 1, one line with VP_LOCAL_IO', async () => {
      const r = await sh('exec "$NODE" "$VP" scan --json "$SRC" >/dev/full', { SRC: src });
      expect(r.code).toBe(1);
      expectOneLine(r.stderr, /could not write the output \(stdout\): no space left on the device \(ENOSPC\) \[VP_LOCAL_IO\]$/);
    });

    it('a stdout closed before start (>&-) is the /dev/null Node puts in its place: the output is discarded, no stack', async () => {
      const r = await sh('exec "$NODE" "$VP" scan "$SRC" >&-', { SRC: src });
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
    });
  });

  describe('working-folder variables that are empty or relative', () => {
    it('are passed over: the report goes to the next absolute candidate, not below the current folder', async () => {
      const cwd = join(dir, 'cwd');
      const tmp = join(dir, 'tmp');
      await mkdir(cwd, { mode: 0o700 });
      await mkdir(tmp, { mode: 0o700 });
      // HOME "/" is never taken as a user's own, so the temporary folder is used: TMPDIR is relative, TMP is not.
      const env = { XDG_CACHE_HOME: 'rel-cache', HOME: '/', TMPDIR: 'rel-tmp', TMP: tmp, TEMP: '' };
      const child = spawn(process.execPath, [CLI, 'scan', '--json', src], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      expect(await new Promise((resolve) => child.on('close', resolve))).toBe(0);
      const { report } = JSON.parse(stdout) as { report: string };
      expect(report.startsWith(join(tmp, `vaultpath-${process.getuid!()}`, 'reports') + '/')).toBe(true);
      expect(await readdir(cwd)).toEqual([]);
    });
  });
});
