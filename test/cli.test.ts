import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './support/seeded.js';

const run = promisify(execFile);
const bin = new URL('../dist/cli/main.js', import.meta.url).pathname;

async function vaultpath(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('the vaultpath command', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultpath-cli-'));
    const big = seededBytes(3 * 1024 * 1024, 9);
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'a.bin'), big);
    await writeFile(join(dir, 'sub', 'copy-of-a.bin'), big); // deduplicates against a.bin
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'note.txt'), 'hello');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prints usage with --help and exits 0', async () => {
    const r = await vaultpath('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage:/);
  });

  it('exits 2 with a hint on an unknown command or option', async () => {
    for (const args of [['frobnicate'], ['--frobnicate']]) {
      const r = await vaultpath(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/vaultpath --help/);
    }
  });

  it('generates a passphrase as JSON', async () => {
    const r = await vaultpath('passphrase', 'generate', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { passphrase: string; bits: number };
    expect(out.passphrase).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){6}$/);
    expect(out.bits).toBeGreaterThanOrEqual(128);
  });

  it('runs the demo over a folder: every chunk verified, duplicates counted once', async () => {
    const r = await vaultpath('demo', '--source', dir, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    expect(out['files']).toBe(4);
    expect(out['bytes']).toBe(2 * 3 * 1024 * 1024 + 5);
    expect(out['uniqueBytes']).toBe(3 * 1024 * 1024 + 5);
    expect(out['verified']).toBe(out['uniqueChunks']);
  });
});
