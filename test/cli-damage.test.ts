import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './support/seeded.js';
import { tempDir } from './support/trees.js';
import { runCli } from './support/cli.js';

const PASSPHRASE = 'correct horse battery staple';
const vaultpath = (args: string[], env: Record<string, string> = {}) => runCli(args, { VAULTPATH_PASSPHRASE: PASSPHRASE, ...env });

/** Every file below `dir` (relative paths), folders left out. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (!e.isDirectory()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  return out.sort();
}

describe('the commands with a damaged snapshot', () => {
  let dir: string;
  let vault: string;
  let src: string;
  let older: string;
  let newest: string;
  beforeAll(async () => {
    dir = await tempDir('vaultpath-cli-damage-');
    vault = join(dir, 'vault');
    src = join(dir, 'src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'a.bin'), seededBytes(100_000, 1));
    expect((await vaultpath(['init', '--vault', vault, '--kdf-memory', '64KiB'])).code).toBe(0);
    older = (JSON.parse((await vaultpath(['backup', src, '--vault', vault, '--scratch', join(dir, 'scratch'), '--json'])).stdout) as { snapshot: string }).snapshot;
    await writeFile(join(src, 'b.txt'), 'only in the newest');
    newest = (JSON.parse((await vaultpath(['backup', src, '--vault', vault, '--scratch', join(dir, 'scratch'), '--json'])).stdout) as { snapshot: string }).snapshot;
    const path = join(vault, 'snapshots', newest);
    const bytes = await readFile(path);
    bytes[40]! ^= 0xff;
    await writeFile(path, bytes);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('snapshots lists the damaged one with its id, in text and in --json, and exits 1', async () => {
    const text = await vaultpath(['snapshots', '--vault', vault]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(older.slice(0, 8));
    expect(text.stdout).toMatch(new RegExp(`^${newest.slice(0, 8)}\\s+DAMAGED: snapshot ${newest}`, 'm'));
    expect(text.stderr).toContain(newest);

    const json = await vaultpath(['snapshots', '--vault', vault, '--json']);
    const list = JSON.parse(json.stdout) as { id: string; damaged?: boolean; error?: { code: string } }[];
    expect(list.map((s) => s.id)).toEqual([older, newest]);
    expect(list[1]).toMatchObject({ id: newest, damaged: true, error: { code: 'VP_AUTH_FAILED' } });
  });

  it('restore latest fails with VP_SNAPSHOT_DAMAGED naming it, and restores nothing', async () => {
    const target = join(dir, 'target-strict');
    const r = await vaultpath(['restore', 'latest', '--vault', vault, '--target', target, '--recovery-folder', join(dir, 'recovery')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/VP_SNAPSHOT_DAMAGED/);
    expect(r.stderr).toContain(newest);
    expect(await readdir(target).catch(() => [])).toEqual([]);
  });

  it('restore latest --skip-damaged restores the newest readable snapshot and names the one passed over', async () => {
    const target = join(dir, 'target-skip');
    const r = await vaultpath(['restore', 'latest', '--skip-damaged', '--vault', vault, '--target', target, '--recovery-folder', join(dir, 'recovery'), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ snapshot: older, skippedDamaged: [newest] });
    expect(r.stderr).toContain(`Passed over snapshot ${newest}`);
    expect(await readdir(join(target, 'src'))).toEqual(['a.bin']);
  });

  it('backup goes on: it takes the newest readable snapshot as its parent (only a hint) and says which it passed over', async () => {
    const r = await vaultpath(['backup', src, '--vault', vault, '--scratch', join(dir, 'scratch'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { parent: string; skippedDamaged: string[]; filesUnchanged: number };
    expect(out).toMatchObject({ parent: older, skippedDamaged: [newest], filesUnchanged: 1 });
    expect(r.stderr).toContain(`Passed over snapshot ${newest}`);
  });

  it('backup --parent latest fails on the damaged snapshot, and with --skip-damaged passes over it', async () => {
    const strict = await vaultpath(['backup', src, '--parent', 'latest', '--vault', vault, '--scratch', join(dir, 'scratch')]);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/VP_SNAPSHOT_DAMAGED/);
    const r = await vaultpath(['backup', src, '--parent', 'latest', '--skip-damaged', '--vault', vault, '--scratch', join(dir, 'scratch'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { parent: string; skippedDamaged: string[] };
    expect(out.skippedDamaged).toEqual([newest]);
    expect(out.parent).not.toBe(newest);
  });
});

describe('the commands with a damaged index object', () => {
  it('verify names it and how to clear it, and backups go on', async () => {
    const dir = await tempDir('vaultpath-cli-damage-');
    try {
      const vault = join(dir, 'vault');
      const src = join(dir, 'src');
      await mkdir(src, { recursive: true });
      await writeFile(join(src, 'a.bin'), seededBytes(100_000, 1));
      expect((await vaultpath(['init', '--vault', vault, '--kdf-memory', '64KiB'])).code).toBe(0);
      expect((await vaultpath(['backup', src, '--vault', vault, '--scratch', join(dir, 'scratch')])).code).toBe(0);
      const [name] = await readdir(join(vault, 'index'));
      const path = join(vault, 'index', name!);
      const bytes = await readFile(path);
      bytes[40]! ^= 0xff;
      await writeFile(path, bytes);

      const v = await vaultpath(['verify', '--vault', vault]);
      expect(v.code).toBe(1);
      expect(v.stdout).toContain(`DAMAGED index/${name}`);
      expect(v.stdout).toMatch(/Delete this index object/);
      const b = await vaultpath(['backup', src, '--vault', vault, '--scratch', join(dir, 'scratch'), '--json']);
      expect(b.code).toBe(0);
      const target = join(dir, 'target');
      expect((await vaultpath(['restore', 'latest', '--vault', vault, '--target', target, '--recovery-folder', join(dir, 'recovery')])).code).toBe(0);
      expect(await readFile(join(target, 'src', 'a.bin'))).toEqual(seededBytes(100_000, 1));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('init that fails', () => {
  it('removes the config and key slot it wrote, and leaves the folder as it found it', async () => {
    const dir = await tempDir('vaultpath-cli-init-');
    try {
      const vault = join(dir, 'vault');
      // Something in the way of the vault's identity (the step after the config): init fails there.
      await mkdir(join(vault, 'registry', 'vault'), { recursive: true });
      const r = await vaultpath(['init', '--vault', vault, '--kdf-memory', '64KiB']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/VP_ALREADY_EXISTS/);
      expect(await filesUnder(vault)).toEqual([]);
      expect(await readdir(join(vault, 'registry'))).toEqual(['vault']);
      // Nothing of it stays in the way: with the obstacle gone, init succeeds.
      await rm(join(vault, 'registry'), { recursive: true });
      expect((await vaultpath(['init', '--vault', vault, '--kdf-memory', '64KiB'])).code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('into a folder that was not there: removes the folder it made', async () => {
    const dir = await tempDir('vaultpath-cli-init-');
    try {
      const vault = join(dir, 'new', 'vault');
      // Key-derivation parameters out of bounds fail the key slot, after the folder was made.
      const r = await vaultpath(['init', '--vault', vault, '--kdf-memory', '1KiB']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/VP_KDF_PARAMS/);
      expect(await readdir(join(dir, 'new'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
