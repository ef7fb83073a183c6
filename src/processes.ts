/**
 * Whether a process of this machine is still running: how vaultpath tells the leftovers of a killed run (a lock,
 * temporary files, a scratch or recovery folder named with its pid) from those of a run still going.
 *
 * @module
 */

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
