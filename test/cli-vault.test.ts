import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './support/seeded.js';
import { tempDir } from './support/trees.js';
import { describeTree } from './support/vaults.js';
import { runCli } from './support/cli.js';

const PASSPHRASE = 'correct horse battery staple';
const vaultpath = (args: string[], env: Record<string, string> = {}) => runCli(args, { VAULTPATH_PASSPHRASE: PASSPHRASE, ...env });

describe('the vault commands, end to end', () => {
  let dir: string;
  let vault: string;
  let src: string;
  beforeAll(async () => {
    dir = await tempDir('vaultpath-cli-vault-');
    vault = join(dir, 'vault');
    src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'a.bin'), seededBytes(2 * 1024 * 1024, 1));
    await writeFile(join(src, 'sub', 'b.txt'), 'hello');
    // A cheap key slot: these tests are about the commands, not the KDF's cost.
    const init = await vaultpath(['init', '--vault', vault, '--kdf-memory', '64KiB', '--json']);
    expect(init.code).toBe(0);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('init refuses a second vault in the same place', async () => {
    const again = await vaultpath(['init', '--vault', vault]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/VP_VAULT_EXISTS/);
  });

  it('init --generate-passphrase shows the passphrase once, and it opens the vault', async () => {
    const other = join(dir, 'generated');
    const r = await vaultpath(['init', '--vault', other, '--generate-passphrase', '--kdf-memory', '64KiB', '--json'], { VAULTPATH_PASSPHRASE: '' });
    const { passphrase } = JSON.parse(r.stdout) as { passphrase: string };
    expect(passphrase).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){6}$/);
    expect((await vaultpath(['snapshots', '--vault', other], { VAULTPATH_PASSPHRASE: passphrase })).code).toBe(0);
  });

  it('backs up with --json reporting the documented fields, then lists the snapshot', async () => {
    const r = await vaultpath(['backup', src, '--vault', vault, '--scratch', join(dir, 'scratch'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const key of ['snapshot', 'files', 'bytesRead', 'bytesNew', 'bytesStored', 'skipped', 'warnings', 'durationMs']) expect(out).toHaveProperty(key);
    expect(out['files']).toBe(2);
    expect(out['bytesRead']).toBe(2 * 1024 * 1024 + 5);
    const list = JSON.parse((await vaultpath(['snapshots', '--vault', vault, '--json'])).stdout) as { id: string }[];
    expect(list.map((s) => s.id)).toContain(out['snapshot']);
  });

  it('restores latest with --json, byte-identical, and verify --read-data finds no damage', async () => {
    await vaultpath(['backup', src, '--vault', vault, '--scratch', join(dir, 'scratch')]);
    const target = join(dir, 'target');
    const r = await vaultpath(['restore', 'latest', '--vault', vault, '--target', target, '--recovery-folder', join(dir, 'recovery'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { files: number; bytes: number; errors: unknown[]; durationMs: number };
    expect(out).toMatchObject({ files: 2, bytes: 2 * 1024 * 1024 + 5, errors: [] });
    expect(await describeTree(join(target, 'src'))).toEqual(await describeTree(src));
    const v = await vaultpath(['verify', '--vault', vault, '--read-data']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/No damage found/);
  });

  it('exits 3 when a backup completes with warnings (a file it may not read), listing the file in the report', async () => {
    const { chmod } = await import('node:fs/promises');
    const own = join(dir, 'warn');
    const source = join(own, 'src');
    await mkdir(source, { recursive: true });
    await writeFile(join(source, 'fine.txt'), 'fine');
    await writeFile(join(source, 'locked.txt'), 'secret');
    await chmod(join(source, 'locked.txt'), 0o000);
    const asRoot = process.getuid?.() === 0;
    // Root reads every file, so as root the backup runs as the unprivileged user nobody, in folders it may write.
    // The folder is sticky, as /tmp is: the report goes to a working folder of nobody's own below it, which vaultpath
    // refuses below a folder any user could rename things in.
    await chmod(own, 0o1777);
    await chmod(source, 0o777);
    const options = asRoot ? { uid: 65534, gid: 65534 } : {};
    const runAs = (args: string[]) => runCli(args, { VAULTPATH_PASSPHRASE: PASSPHRASE, TMPDIR: own, XDG_CACHE_HOME: join(own, 'cache') }, options);
    expect((await runAs(['init', '--vault', join(own, 'vault'), '--kdf-memory', '64KiB'])).code).toBe(0);
    const r = await runAs(['backup', source, '--vault', join(own, 'vault'), '--scratch', join(own, 'scratch'), '--json']);
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout) as { status: string; warnings: number; files: number; reportPath: string };
    expect(out).toMatchObject({ status: 'warnings', warnings: 1, files: 1 });
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(out.reportPath, 'utf8')).toMatch(/locked\.txt.*"reason":"unreadable"/);
  });

  it('exits 1 with the error code on a wrong passphrase, and 2 on a usage error', async () => {
    const wrong = await vaultpath(['snapshots', '--vault', vault], { VAULTPATH_PASSPHRASE: 'not the right passphrase at all' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/VP_WRONG_PASSPHRASE/);
    expect((await vaultpath(['backup', '--vault', vault])).code).toBe(2);
    expect((await vaultpath(['restore', 'latest', '--vault', vault])).code).toBe(2);
    const none = await vaultpath(['snapshots', '--vault', vault], { VAULTPATH_PASSPHRASE: '' });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/VAULTPATH_PASSPHRASE/);
  });

  it('changes the passphrase without re-encrypting: packs are untouched, the old passphrase stops working', async () => {
    const packsBefore = await readdir(join(vault, 'data'), { recursive: true });
    const r = await vaultpath(['passphrase', 'change', '--vault', vault, '--kdf-memory', '64KiB'], { VAULTPATH_NEW_PASSPHRASE: 'an entirely new passphrase' });
    expect(r.code).toBe(0);
    expect(await readdir(join(vault, 'data'), { recursive: true })).toEqual(packsBefore);
    expect((await vaultpath(['snapshots', '--vault', vault])).code).toBe(1);
    expect((await vaultpath(['snapshots', '--vault', vault], { VAULTPATH_PASSPHRASE: 'an entirely new passphrase' })).code).toBe(0);
  });

  it('--dry-run reads and writes nothing', async () => {
    const dry = join(dir, 'dry-vault');
    await vaultpath(['init', '--vault', dry, '--kdf-memory', '64KiB']);
    const r = await vaultpath(['backup', src, '--vault', dry, '--dry-run', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ bytesStored: 0 });
    expect(await readdir(join(dry, 'snapshots')).catch(() => [])).toEqual([]);
  });

  it('paces a backup with --bwlimit, and refuses a rate without a unit or a schedule outside the agent range', async () => {
    const paced = join(dir, 'paced');
    const pacedVault = join(dir, 'paced-vault'); // its own vault: an earlier test changed the shared one's passphrase
    await mkdir(paced);
    await writeFile(join(paced, 'data.bin'), seededBytes(768 * 1024, 42));
    expect((await vaultpath(['init', '--vault', pacedVault, '--kdf-memory', '64KiB'])).code).toBe(0);
    const started = performance.now();
    const r = await vaultpath(['backup', paced, '--vault', pacedVault, '--scratch', join(dir, 'scratch'), '--bwlimit', '512KiB/s', '--json']);
    const seconds = (performance.now() - started) / 1000;
    expect(r.code).toBe(0);
    expect(seconds).toBeGreaterThan(1.2); // 768 KiB at 512 KiB/s: at least 1.5 s less one burst, plus start-up
    const bare = await vaultpath(['backup', paced, '--vault', pacedVault, '--bwlimit', '10']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/has no unit/);
    const slow = await vaultpath(['backup', paced, '--vault', pacedVault, '--work-days', 'mon-fri', '--work-hours', '09:00-18:00', '--work-rate', '10Kbps', '--off-rate', '1MB/s']);
    expect(slow.code).toBe(1);
    expect(slow.stderr).toMatch(/VP_SCHEDULE/);
    const partial = await vaultpath(['backup', paced, '--vault', pacedVault, '--work-days', 'mon-fri']);
    expect(partial.code).toBe(2);
  });
});
