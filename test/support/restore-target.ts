/**
 * What a restore must do with the path of its target, whichever descriptor calls it uses (the calling test file
 * leaves the addon in place or mocks it away): a link on the way that another user can have made or changed is
 * refused with VP_UNSAFE_PATH and nothing is written through it; links only root or this user control are followed;
 * a place where no folder can be made fails at once with VP_TARGET.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lchown, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { describeSentinel, makeSentinel } from './restore-race.js';
import { isRoot } from './trees.js';
import type { Kernels } from '../../src/native/ports.js';
import type { VaultFixture } from './vaults.js';

/** The kernels the describing test file runs with (the addon's when it gives none). */
let kernels: Kernels | undefined;

async function oneFileSnapshot(f: VaultFixture): Promise<void> {
  await mkdir(f.path('src'));
  await writeFile(f.path('src', 'a'), 'restored\n');
  await backup(f.vault, [f.path('src')], { scratchDir: f.path('scratch'), kernels });
}

const attempt = (f: VaultFixture, target: string): Promise<unknown> =>
  restore(f.vault, 'latest', target, { recoveryFolder: f.path('recovery'), kernels }).catch((e: unknown) => e);

/**
 * A loop in another process that keeps turning `at` into a link to `to`, removing it, making it a folder, removing
 * it again, until stopped: whatever a restore made there is swept away too, so the loop never stalls.
 */
function flipper(at: string, to: string): { stop: () => Promise<void>; ready: string } {
  const script = `
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
const [at, to, stop, ready] = process.argv.slice(1);
const steps = [() => symlinkSync(to, at), () => rmSync(at, { force: true }), () => mkdirSync(at), () => rmSync(at, { recursive: true, force: true })];
let ok = 0;
for (let i = 0; !existsSync(stop); i = (i + 1) % steps.length) {
  try { steps[i](); ok++; } catch { try { rmSync(at, { recursive: true, force: true }); } catch {} }
  if (ok === 4) writeFileSync(ready, '');
}`;
  const stopFile = `${at}.stop`;
  const ready = `${at}.ready`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, at, to, stopFile, ready], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    ready,
    async stop() {
      await writeFile(stopFile, '');
      await exited;
    },
  };
}

/**
 * A one-file snapshot, a sentinel folder (described as it is now), and a folder every user can write to (no sticky
 * bit), where the test plays the other user.
 */
async function openFolderBesideSentinel(f: VaultFixture): Promise<{ sentinel: string; before: Record<string, string>; open: string }> {
  await oneFileSnapshot(f);
  const sentinel = f.path('sentinel');
  await makeSentinel(sentinel);
  const open = f.path('open');
  await mkdir(open);
  await chmod(open, 0o777);
  return { sentinel, before: describeSentinel(sentinel), open };
}

export function describeTargetPath(fixture: () => VaultFixture, withKernels?: () => Kernels): void {
  describe('the target path', () => {
    beforeEach(() => {
      kernels = withKernels?.();
    });
    it('refuses a link in a folder other users can write to, as the target or above it, writing nothing through it', async () => {
      const f = fixture();
      const { sentinel, before, open } = await openFolderBesideSentinel(f);
      await symlink(sentinel, join(open, 'link'));
      for (const target of [join(open, 'link'), join(open, 'link', 'new', 'deeper'), join(open, 'link', 'sub')]) {
        const e = await attempt(f, target);
        expect(e, target).toMatchObject({ code: 'VP_UNSAFE_PATH', message: expect.stringContaining(`${join(open, 'link')} is a symbolic link in a folder other users can write to`) });
      }
      expect(describeSentinel(sentinel)).toEqual(before);
    });

    it.runIf(isRoot())('refuses a link that belongs to another user, even in a folder only this user can write to', async () => {
      const f = fixture();
      await oneFileSnapshot(f);
      const sentinel = f.path('sentinel');
      await makeSentinel(sentinel);
      const before = describeSentinel(sentinel);
      await mkdir(f.path('home'), { mode: 0o755 });
      await symlink(sentinel, f.path('home', 'restore'));
      await lchown(f.path('home', 'restore'), 65534, 65534);
      const e = await attempt(f, f.path('home', 'restore'));
      expect(e).toMatchObject({ code: 'VP_UNSAFE_PATH', message: expect.stringContaining('that belongs to user 65534') });
      expect(describeSentinel(sentinel)).toEqual(before);
    });

    it('follows links only root or this user control (relative, absolute, with ..) and makes the missing folders', async () => {
      const f = fixture();
      await oneFileSnapshot(f);
      await mkdir(f.path('mine', 'real'), { recursive: true, mode: 0o755 });
      await chmod(f.path('mine'), 0o755);
      await symlink('real', f.path('mine', 'rel'));
      await symlink(f.path('mine', 'real'), f.path('mine', 'abs'));
      await symlink('../mine/./real', f.path('mine', 'up'));
      for (const [via, made] of [['rel', 'one'], ['abs', 'two'], ['up', 'three']] as const) {
        const r = await restore(f.vault, 'latest', f.path('mine', via, made, 'x'), { recoveryFolder: f.path('recovery'), kernels });
        expect(r.errors).toEqual([]);
        expect(await readFile(f.path('mine', 'real', made, 'x', 'src', 'a'), 'utf8')).toBe('restored\n');
      }
    });

    it('fails with VP_TARGET, at once, where no folder can be made or links loop', async () => {
      const f = fixture();
      await oneFileSnapshot(f);
      await mkdir(f.path('loop'), { mode: 0o755 });
      await symlink('b', f.path('loop', 'a'));
      await symlink('a', f.path('loop', 'b'));
      for (const target of ['/proc/1/vaultpath-target', '/proc/self/fd/1/x', f.path('loop', 'a', 'x')]) {
        const e = await attempt(f, target);
        expect(e, target).toMatchObject({ code: 'VP_TARGET' });
      }
      expect(existsSync('/proc/1/vaultpath-target')).toBe(false);
    });

    it('writes nothing outside while another user keeps swapping a folder on the way for a link', async () => {
      const f = fixture();
      const { sentinel, before, open } = await openFolderBesideSentinel(f);
      const flip = flipper(join(open, 't'), sentinel);
      const codes = new Map<string, number>();
      try {
        while (!existsSync(flip.ready)) await new Promise((r) => setTimeout(r, 5));
        for (let i = 0; i < 40; i++) {
          const r = await attempt(f, join(open, 't', `round-${i}`));
          const code = (r as { code?: string }).code ?? 'restored';
          codes.set(code, (codes.get(code) ?? 0) + 1);
          // Any failure is one of the two refusals, never a raw error of a call the swap made fail.
          if (!['restored', 'VP_UNSAFE_PATH', 'VP_TARGET'].includes(code)) expect.fail(`${code}: ${(r as Error).message}`);
          expect(describeSentinel(sentinel)).toEqual(before);
        }
      } finally {
        await flip.stop();
      }
      expect([...codes.keys()].sort()).not.toEqual([]);
      expect(describeSentinel(sentinel)).toEqual(before);
    }, 60_000);
  });
}
