import { describe, expect, it } from 'vitest';
import { DEFAULT_KDF_PARAMS, checkKdfParams, deriveKey } from '../../src/crypto/kdf.js';
import { VaultpathError } from '../../src/errors.js';

const salt = new Uint8Array(32).fill(9);
const pass = new TextEncoder().encode('correct horse battery staple');

describe('Argon2id key derivation', () => {
  // Known answers from the Argon2 reference implementation (the `argon2` command of Debian's argon2 package):
  //   echo -n 'correct horse battery staple' | argon2 saltsaltsaltsaltsaltsaltsaltsalt -id -t 1 -k 64 -p 1 -l 32 -r
  // A change here means every key slot ever written stops opening.
  it.each([
    [{ memoryKiB: 64, iterations: 1, parallelism: 1 }, '8e8db95e07b5b6a069a656edd01f4834c0cb39485e4be83de94d0d7b98fcb58f'],
    [{ memoryKiB: 1024, iterations: 2, parallelism: 2 }, 'd7e4297569d5da78b0a2449dff9fd4d3cc551f371ccb34ef6b70cbcdb72b3bc2'],
  ])('matches the reference Argon2id (v1.3) for %o', async (params, expected) => {
    const key = await deriveKey(pass, Buffer.from('saltsaltsaltsaltsaltsaltsaltsalt'), params);
    expect(Buffer.from(key).toString('hex')).toBe(expected);
  });

  it('defaults to at least 64 MiB of memory', () => {
    expect(DEFAULT_KDF_PARAMS.memoryKiB).toBeGreaterThanOrEqual(64 * 1024);
  });

  it.each([
    ['64 GiB of memory', { memoryKiB: 64 * 1024 * 1024, iterations: 1, parallelism: 1 }, /memory is 67108864 KiB/],
    ['zero iterations', { memoryKiB: 64, iterations: 0, parallelism: 1 }, /iterations is 0/],
    ['a million iterations', { memoryKiB: 64, iterations: 1_000_000, parallelism: 1 }, /iterations/],
    ['255 lanes', { memoryKiB: 4096, iterations: 1, parallelism: 255 }, /parallelism/],
    ['less than 8 KiB a lane', { memoryKiB: 16, iterations: 1, parallelism: 4 }, /8 KiB per lane/],
    ['a fraction', { memoryKiB: 64.5, iterations: 1, parallelism: 1 }, /memory/],
  ])('refuses %s before running anything', async (_, params, message) => {
    expect(() => checkKdfParams(params)).toThrow(message);
    const started = performance.now();
    await expect(deriveKey(pass, salt, params)).rejects.toMatchObject({ code: 'VP_KDF_PARAMS' });
    // Refused, not attempted: a 64 GiB derivation would take minutes or exhaust memory.
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('stops when aborted, with VP_ABORTED', async () => {
    const controller = new AbortController();
    const running = deriveKey(pass, salt, { memoryKiB: 256 * 1024, iterations: 4, parallelism: 1 }, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('user pressed Ctrl-C')), 20);
    const e = await running.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(VaultpathError);
    expect((e as VaultpathError).code).toBe('VP_ABORTED');
  });
});
