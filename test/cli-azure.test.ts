/** The vault commands against an Azure vault (Azurite on 127.0.0.1), exactly as with a local one. */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './support/seeded.js';
import { tempDir } from './support/trees.js';
import { describeTree } from './support/vaults.js';
import { runCli } from './support/cli.js';
import { azureEnv, azureLocation, azurite, containerName } from './support/azure.js';
import { startAuthProxy } from './support/auth-proxy.js';

const PASSPHRASE = 'correct horse battery staple';
const vaultpath = (args: string[], env: Record<string, string> = {}) => runCli(args, { VAULTPATH_PASSPHRASE: PASSPHRASE, ...azureEnv(), ...env });

describe('an Azure vault through the CLI', () => {
  let dir: string;
  let src: string;
  let location: string;
  beforeAll(async () => {
    dir = await tempDir('vaultpath-cli-azure-');
    src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'a.bin'), seededBytes(6 * 1024 * 1024 + 3, 11));
    await writeFile(join(src, 'sub', 'b.txt'), 'hello');
    await writeFile(join(src, 'sub', 'empty'), '');
    location = azureLocation(containerName('cli'), { prefix: 'hosts/one' });
    const init = await vaultpath(['init', '--vault', location, '--kdf-memory', '64KiB', '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ vault: location });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('backs up, lists, restores byte-identical and verifies, with --vault URL', async () => {
    const backup = await vaultpath(['backup', src, '--vault', location, '--scratch', join(dir, 'scratch'), '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    expect(JSON.parse(backup.stdout)).toMatchObject({ files: 3, bytesRead: 6 * 1024 * 1024 + 8 });
    const again = await vaultpath(['backup', src, '--vault', location, '--scratch', join(dir, 'scratch'), '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ filesUnchanged: 3, bytesNew: 0 });
    const list = JSON.parse((await vaultpath(['snapshots', '--vault', location, '--json'])).stdout) as unknown[];
    expect(list).toHaveLength(2);
    const restored = await vaultpath(['restore', 'latest', '--vault', location, '--target', join(dir, 'target'), '--recovery-folder', join(dir, 'recovery'), '--json']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(await describeTree(join(dir, 'target', 'src'))).toEqual(await describeTree(src));
    const verify = await vaultpath(['verify', '--vault', location, '--read-data', '--json']);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('says VP_STORE_AUTH for a wrong account key, and never prints the key', async () => {
    const key = Buffer.alloc(64, 3).toString('base64');
    const r = await vaultpath(['snapshots', '--vault', location], { AZURE_STORAGE_KEY: key });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('VP_STORE_AUTH');
    expect(r.stdout + r.stderr).not.toContain(key);
  });

  it('says VP_CONTAINER_NOT_FOUND for a container that does not exist', async () => {
    const r = await vaultpath(['snapshots', '--vault', azureLocation(containerName('none'))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('VP_CONTAINER_NOT_FOUND');
  });

  it('goes through an authenticated proxy given by --proxy and --proxy-user, and fails fast on a wrong password', async () => {
    const proxy = await startAuthProxy('agent', 'proxy password 1');
    try {
      const ok = await vaultpath(['snapshots', '--vault', location, '--proxy', proxy.url, '--proxy-user', 'agent', '--json'], { VAULTPATH_PROXY_PASSWORD: 'proxy password 1' });
      expect(ok.code, ok.stderr).toBe(0);
      expect(proxy.seen.filter((r) => r.accepted).length).toBeGreaterThan(2);
      const before = proxy.seen.length;
      const bad = await vaultpath(['snapshots', '--vault', location, '--proxy', proxy.url, '--proxy-user', 'agent'], { VAULTPATH_PROXY_PASSWORD: 'not it' });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('VP_PROXY_AUTH');
      expect(bad.stderr).not.toContain('not it');
      expect(proxy.seen.length - before).toBe(1); // refused once, never retried
    } finally {
      await proxy.close();
    }
  });

  it('keeps secrets out of --json output (the location carries no SAS)', async () => {
    const { credential } = azurite();
    const r = await vaultpath(['snapshots', '--vault', location, '--json']);
    expect(r.stdout).not.toContain(credential.accountKey);
  });
});
