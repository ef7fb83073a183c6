/**
 * What the command leaves on disk: a vault owner-only whatever the umask, and a folder that is not a vault exactly
 * as it was after the command was pointed at it.
 */
import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, rm, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from './support/cli.js';
import { tempDir } from './support/trees.js';

const PASSPHRASE = 'correct horse battery staple';

/** Runs the command under umask 000, so that only the modes it asks for count. */
async function underUmask0(args: string[], env: Record<string, string>): Promise<number> {
  try {
    await promisify(execFile)('/bin/sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, CLI, ...args], { env: { ...process.env, ...env } });
    return 0;
  } catch (e) {
    return (e as { code: number }).code;
  }
}

/** Every entry below `root` (and root itself): its kind, mode, size and mtime, to compare before and after. */
async function fingerprint(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string, rel: string): Promise<void> => {
    const st = await lstat(path);
    out.push(`${rel} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.ctimeMs}`);
    if (st.isDirectory()) for (const name of (await readdir(path)).sort()) await visit(join(path, name), `${rel}/${name}`);
  };
  await visit(root, '.');
  return out;
}

describe('what the vault command leaves on disk', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = await tempDir('vaultpath-cli-hygiene-vault-');
    env = { XDG_CACHE_HOME: join(dir, 'cache'), VAULTPATH_PASSPHRASE: PASSPHRASE };
    await mkdir(join(dir, 'src', 'sub'), { recursive: true });
    await writeFile(join(dir, 'src', 'a.txt'), 'hello');
    await writeFile(join(dir, 'src', 'sub', 'b.bin'), Buffer.alloc(100_000, 7));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('makes every folder of a vault 0700 and every file 0600, even under umask 000', async () => {
    const vault = join(dir, 'vault');
    expect(await underUmask0(['init', '--vault', vault, '--kdf-memory', '64KiB', '--kdf-iterations', '1'], env)).toBe(0);
    expect(await underUmask0(['backup', join(dir, 'src'), '--vault', vault, '--scratch', join(dir, 'scratch')], env)).toBe(0);
    const modes = new Map<string, number>();
    const visit = async (path: string, rel: string): Promise<void> => {
      for (const name of await readdir(path)) {
        const st = await lstat(join(path, name));
        modes.set(`${rel}${name}${st.isDirectory() ? '/' : ''}`, st.mode & 0o7777);
        if (st.isDirectory()) await visit(join(path, name), `${rel}${name}/`);
      }
    };
    await visit(vault, '');
    expect([...modes.keys()].some((k) => k.startsWith('data/'))).toBe(true);
    expect([...modes.keys()].some((k) => k.startsWith('snapshots/') && !k.endsWith('/'))).toBe(true);
    for (const [name, mode] of modes) expect(`${name} ${mode.toString(8)}`).toBe(`${name} ${name.endsWith('/') ? '700' : '600'}`);
    expect((await lstat(vault)).mode & 0o7777).toBe(0o700);
    // The scratch run folder and the report folder are the user's alone as well.
    expect((await lstat(join(dir, 'scratch'))).mode & 0o077).toBe(0);
    expect((await lstat(join(dir, 'cache', 'vaultpath', 'reports'))).mode & 0o7777).toBe(0o700);
    for (const name of await readdir(join(dir, 'cache', 'vaultpath', 'reports'))) {
      expect((await lstat(join(dir, 'cache', 'vaultpath', 'reports', name))).mode & 0o7777).toBe(0o600);
    }
  });

  it('writes nothing into a folder that is not a vault: an empty one, or one of unrelated files', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const documents = join(dir, 'documents');
    await mkdir(join(documents, 'letters'), { recursive: true });
    await writeFile(join(documents, 'letters', 'one.txt'), 'dear');
    await writeFile(join(documents, 'notes.md'), '# notes');
    const past = new Date(Date.UTC(2020, 0, 1));
    for (const p of [join(documents, 'letters', 'one.txt'), join(documents, 'letters'), join(documents, 'notes.md'), documents, empty]) await utimes(p, past, past);
    for (const folder of [empty, documents]) {
      const before = await fingerprint(folder);
      for (const command of ['snapshots', 'verify']) {
        const r = await runCli([command, '--vault', folder], env);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/\[VP_[A-Z_]+\]$/m);
      }
      const r = await runCli(['restore', 'latest', '--vault', folder, '--target', join(dir, 'target'), '--recovery-folder', join(dir, 'recovery')], env);
      expect(r.code).toBe(1);
      expect(await fingerprint(folder)).toEqual(before);
    }
  });
});
