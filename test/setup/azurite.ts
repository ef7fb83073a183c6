/**
 * Starts one Azurite blob server for the whole suite (test/support/azurite-process.ts) and stops it by PID at the
 * end. Tests read its endpoint with `inject('azurite')` and use containers of their own.
 */
import type { TestProject } from 'vitest/node';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from '../support/azurite-process.js';

declare module 'vitest' {
  export interface ProvidedContext {
    azurite: { endpoint: string; account: string; key: string; pid: number };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const azurite = await startAzurite();
  project.provide('azurite', { endpoint: azurite.endpoint, account: AZURITE_ACCOUNT, key: AZURITE_KEY, pid: azurite.pid });
  return () => azurite.stop();
}
