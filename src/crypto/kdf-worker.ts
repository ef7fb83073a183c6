/**
 * The key-derivation worker: runs one Argon2id derivation off the main thread, so that the ~0.5 s it costs overlaps
 * whatever the caller does meanwhile (loading modules, a backup's scan, reading the vault's objects).
 *
 * It may be started before the job is known ({@link prepareKdf} in kdf.ts), so that its own start-up is out of the
 * way too. One message in: `{ passphrase, salt, m, t, p }`, parameters already checked by kdf.ts. One message out:
 * `{ key }` (32 bytes) or `{ error }`; the worker then ends. An abort terminates it from the outside.
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { argon2id } from '@noble/hashes/argon2.js';

parentPort!.once('message', (job: { passphrase: Uint8Array; salt: Uint8Array; m: number; t: number; p: number }) => {
  try {
    const key = argon2id(job.passphrase, job.salt, { m: job.m, t: job.t, p: job.p, dkLen: 32, maxmem: job.m * 1024 + 1024 * 1024 });
    job.passphrase.fill(0);
    parentPort!.postMessage({ key }, [key.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ error: String((e as Error).message ?? e) });
  }
  parentPort!.close();
});
