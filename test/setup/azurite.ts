/**
 * Starts one Azurite blob server for the whole suite: the npm package (a devDependency), spawned as
 * `node …/azurite/dist/src/blob/main.js` on 127.0.0.1 with an OS-chosen port, in memory, without telemetry, and
 * stopped by its PID at the end. Tests read its endpoint with `inject('azurite')` and use containers of their own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    azurite: { endpoint: string; account: string; key: string; pid: number };
  }
}

/** The well-known development account every Azurite has. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

let child: ChildProcess | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const main = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
  child = spawn(
    process.execPath,
    [main, '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--disableTelemetry', '--loose', '--skipApiVersionCheck', '--silent'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`Azurite did not start within 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child!.stdout!.on('data', onData);
    child!.stderr!.on('data', onData);
    child!.once('exit', (code) => reject(new Error(`Azurite exited (${code}) before listening:\n${out}`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  project.provide('azurite', { endpoint: `http://127.0.0.1:${port}`, account: AZURITE_ACCOUNT, key: AZURITE_KEY, pid: child.pid! });
  return async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    process.kill(child.pid!, 'SIGTERM');
    const timer = setTimeout(() => child?.pid && process.kill(child.pid, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
}
