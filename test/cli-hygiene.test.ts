/**
 * The command as a user meets it when something goes wrong: new passphrases typed twice with the loss warning,
 * Ctrl-C at a prompt, and every failure a user can cause printed as one line with a VP_ code, never a stack.
 * Prompts are answered on a real pseudo-terminal; failures come from real paths (a file as a vault, /dev/full).
 */
import { spawn, spawnSync } from 'node:child_process';
import { access, chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from './support/cli.js';
import { runCliOnTerminal } from './support/pty.js';
import { isRoot, tempDir } from './support/trees.js';

const PASSPHRASE = 'correct horse battery staple';
const LOSS = /If you lose this passphrase, the data cannot be recovered/;
const CHEAP = ['--kdf-memory', '64KiB', '--kdf-iterations', '1'];

/** The last line of stderr is the one failure line; no line is a stack frame. */
function expectOneLine(stderr: string, code: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines.filter((l) => /^\s+at /.test(l))).toEqual([]);
  expect(lines.at(-1)).toMatch(/^vaultpath: .+ \[VP_[A-Z_]+\]$/);
  expect(lines.at(-1)).toMatch(code);
  expect(stderr).not.toMatch(/node:internal|Error: /);
}

describe('the vaultpath command, when a user slips', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = await tempDir('vaultpath-cli-hygiene-');
    // Reports and scratch go to this test's folder, not the user's cache.
    env = { XDG_CACHE_HOME: join(dir, 'cache'), VAULTPATH_PASSPHRASE: '', VAULTPATH_NEW_PASSPHRASE: '' };
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'a.txt'), 'hello');
    await symlink('a.txt', join(dir, 'src', 'link')); // a link is skipped: the scan has a report line to write
    await writeFile(join(dir, 'a-file'), 'not a folder');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  describe('a new passphrase', () => {
    it('is asked twice at a prompt, after the loss warning, and a typing slip asks again instead of creating the vault', async () => {
      const vault = join(dir, 'typed');
      const run = runCliOnTerminal(['init', '--vault', vault, ...CHEAP], env);
      let at = await run.waitFor('New vault passphrase');
      expect(run.output().slice(0, at)).toMatch(LOSS);
      run.type(`${PASSPHRASE}\r`);
      at = await run.waitFor('Type it again', at);
      run.type(`${PASSPHRASE}x\r`);
      at = await run.waitFor('do not match', at);
      at = await run.waitFor('New vault passphrase', at);
      run.type(`${PASSPHRASE}\r`);
      at = await run.waitFor('Type it again', at);
      run.type(`${PASSPHRASE}\r`);
      expect(await run.exit).toBe(0);
      expect(run.output()).toMatch(/Created vault/);
      expect(run.output()).not.toContain(PASSPHRASE); // never echoed
      // The passphrase typed (twice the same) opens the vault.
      expect((await runCli(['snapshots', '--vault', vault], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE })).code).toBe(0);
    });

    it('typed differently three times fails with VP_PASSPHRASE_MISMATCH and creates nothing', async () => {
      const vault = join(dir, 'mismatch');
      const run = runCliOnTerminal(['init', '--vault', vault, ...CHEAP], env);
      let at = 0;
      for (let i = 0; i < 3; i++) {
        at = await run.waitFor('New vault passphrase', at);
        run.type(`${PASSPHRASE}\r`);
        at = await run.waitFor('Type it again', at);
        run.type(`${PASSPHRASE}${i}\r`);
      }
      expect(await run.exit).toBe(1);
      expectOneLine(run.output().replace(/\r?\nEXIT=\d+\s*$/, '').replaceAll('\r', ''), /VP_PASSPHRASE_MISMATCH/);
      await expect(access(vault)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('Ctrl-C at the prompt exits 130 with one line and no stack, and creates nothing', async () => {
      const vault = join(dir, 'interrupted');
      const run = runCliOnTerminal(['init', '--vault', vault, ...CHEAP], env);
      await run.waitFor('New vault passphrase');
      run.type('\x03');
      expect(await run.exit).toBe(130);
      expectOneLine(run.output().replace(/\r?\nEXIT=\d+\s*$/, '').replaceAll('\r', ''), /VP_ABORTED/);
      await expect(access(vault)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('SIGTERM (a service stop) at the prompt also exits 130 with one line', async () => {
      const vault = join(dir, 'terminated');
      const run = runCliOnTerminal(['init', '--vault', vault, ...CHEAP], env);
      await run.waitFor('New vault passphrase');
      const pid = run.commandPid();
      expect(pid).toBeGreaterThan(0);
      process.kill(pid!, 'SIGTERM');
      expect(await run.exit).toBe(130);
      expectOneLine(run.output().replace(/\r?\nEXIT=\d+\s*$/, '').replaceAll('\r', ''), /VP_ABORTED/);
      await expect(access(vault)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('for passphrase change is asked twice and warned about too', async () => {
      const vault = join(dir, 'change');
      expect((await runCli(['init', '--vault', vault, ...CHEAP], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE })).code).toBe(0);
      const next = 'another passphrase, long enough';
      const run = runCliOnTerminal(['passphrase', 'change', '--vault', vault, ...CHEAP], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE });
      let at = await run.waitFor('New passphrase');
      expect(run.output().slice(0, at)).toMatch(LOSS);
      run.type(`${next}\r`);
      at = await run.waitFor('Type it again', at);
      run.type(`${next}\r`);
      expect(await run.exit).toBe(0);
      expect((await runCli(['snapshots', '--vault', vault], { ...env, VAULTPATH_PASSPHRASE: next })).code).toBe(0);
    });

    it('for register is asked twice on a terminal, after the loss warning, and opens the machine\u2019s backups', async () => {
      const vault = join(dir, 'team');
      expect((await runCli(['init', '--vault', vault, '--name', 'Team', ...CHEAP], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE })).code).toBe(0);
      const file = join(dir, 'team.VaultCredentials');
      expect((await runCli(['credentials', 'issue', '--vault', vault, '--out', file], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE })).code).toBe(0);
      const home = join(dir, 'agent-home');
      const mine = 'this machine passphrase, typed';
      const run = runCliOnTerminal(['register', '--credentials', file, '--machine-name', 'host-one', ...CHEAP], { ...env, VAULTPATH_HOME: home });
      let at = await run.waitFor('Passphrase for this machine');
      expect(run.output().slice(0, at)).toMatch(LOSS);
      run.type(`${mine}\r`);
      at = await run.waitFor('Type it again', at);
      run.type(`${mine}\r`);
      expect(await run.exit).toBe(0);
      expect(run.output()).toMatch(/Registered machine host-one/);
      expect((await runCli(['snapshots'], { ...env, VAULTPATH_HOME: home, VAULTPATH_PASSPHRASE: mine })).code).toBe(0);
    });

    it('from the environment or a file is taken once, without a prompt, and the loss warning is still shown', async () => {
      const r = await runCli(['init', '--vault', join(dir, 'from-env'), ...CHEAP], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(LOSS);
      expect(r.stderr).not.toMatch(/Type it again/);
      await writeFile(join(dir, 'pass.txt'), `${PASSPHRASE}\n`);
      const f = await runCli(['init', '--vault', join(dir, 'from-file'), '--passphrase-file', join(dir, 'pass.txt'), ...CHEAP], env);
      expect(f.code).toBe(0);
      expect(f.stderr).toMatch(LOSS);
    });
  });

  describe('failures', () => {
    let vault: string;
    beforeAll(async () => {
      vault = join(dir, 'vault');
      expect((await runCli(['init', '--vault', vault, ...CHEAP], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE })).code).toBe(0);
      const b = await runCli(['backup', join(dir, 'src'), '--vault', vault, '--scratch', join(dir, 'scratch')], { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE });
      expect(b.code).toBe(0);
    });
    const vp = (...args: string[]) => runCli(args, { ...env, VAULTPATH_PASSPHRASE: PASSPHRASE });

    it('a vault path that is a file, or lies below a file', async () => {
      for (const args of [['snapshots', '--vault', join(dir, 'a-file')], ['init', '--vault', join(dir, 'a-file', 'v'), ...CHEAP]]) {
        const r = await vp(...args);
        expect(r.code).toBe(1);
        expectOneLine(r.stderr, /a-file/);
      }
    });

    it('a report path that is a folder, lies below a file, or is not writable', async () => {
      for (const report of [join(dir, 'src'), join(dir, 'a-file', 'report.jsonl')]) {
        const r = await vp('scan', join(dir, 'src'), '--report', report);
        expect(r.code).toBe(1);
        expectOneLine(r.stderr, /VP_LOCAL_IO/);
        expect(r.stderr).toContain(report);
      }
    });

    it.runIf(isRoot())('a report folder another user may not write to (EACCES)', async () => {
      const closed = join(dir, 'closed');
      await mkdir(closed, { mode: 0o700 });
      await chmod(dir, 0o755);
      const r = await runCli(['scan', join(dir, 'src'), '--report', join(closed, 'r.jsonl')], { ...env, XDG_CACHE_HOME: '/nonexistent' }, { uid: 65534, gid: 65534 });
      expect(r.code).toBe(1);
      expectOneLine(r.stderr, /EACCES.*VP_LOCAL_IO|VP_LOCAL_IO/);
    });

    it.runIf(isRoot())('a report on a read-only file system (EROFS)', async (context) => {
      const ro = join(dir, 'read-only');
      await mkdir(ro);
      if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'none', ro]).status !== 0) context.skip();
      try {
        const r = await vp('scan', join(dir, 'src'), '--report', join(ro, 'r.jsonl'));
        expect(r.code).toBe(1);
        expectOneLine(r.stderr, /EROFS.*VP_LOCAL_IO/);
      } finally {
        spawnSync('umount', [ro]);
      }
    });

    it('a full disk under the report (/dev/full: ENOSPC)', async () => {
      const r = await vp('scan', join(dir, 'src'), '--report', '/dev/full');
      expect(r.code).toBe(1);
      expectOneLine(r.stderr, /ENOSPC.*VP_LOCAL_IO/);
    });

    it('a restore --target that is a file', async () => {
      const r = await vp('restore', 'latest', '--vault', vault, '--target', join(dir, 'a-file'), '--recovery-folder', join(dir, 'recovery'));
      expect(r.code).toBe(1);
      expectOneLine(r.stderr, /a-file/);
    });

    it('stdout closed by its reader (EPIPE)', async () => {
      // A reader that has gone before anything is written: the listing's write fails with EPIPE.
      const child = spawn(process.execPath, [CLI, 'snapshots', '--vault', vault, '--json'], { env: { ...process.env, ...env, VAULTPATH_PASSPHRASE: PASSPHRASE }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(141); // a reader that has gone is no failure to report (as for \`yes | head -1\`)
      expect(stderr).toBe('');
    });

    it('prints the details with VAULTPATH_DEBUG=1', async () => {
      const r = await runCli(['scan', join(dir, 'src'), '--report', '/dev/full'], { ...env, VAULTPATH_DEBUG: '1' });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^\s+at /m);
    });
  });
});
