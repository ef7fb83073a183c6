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
