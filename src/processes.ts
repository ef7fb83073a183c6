/**
 * Whether a process of this machine is still running: how vaultpath tells the leftovers of a killed run (a lock,
 * temporary files, a scratch or recovery folder named with its pid) from those of a run still going; and this
 * host's tag, so that the leftovers of another host sharing a folder are never taken for this one's.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

/** This host, as 8 hex digits (of the SHA-256 of its name): written into the names of a run's leftovers. */
export const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** True when `pid` names a process of this machine that has ended (never this process itself). */
export function isGone(pid: number): boolean {
  return pid !== process.pid && !isRunning(pid);
}

/**
 * True when process `pid` of this machine exists (signal 0: nothing is sent; EPERM means it exists under another
 * user). A pid that is not a positive whole number no process can have is never running.
 */
export function isRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
