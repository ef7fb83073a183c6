import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_KDF_PARAMS, KDF_BOUNDS, checkKdfParams, deriveKey, deriveKeyWith, kdfImplementation, loadNodeRsArgon2, nodeArgon2 } from '../../src/crypto/kdf.js';
import { VaultpathError } from '../../src/errors.js';
import { settledBeforeIo } from '../support/settled.js';

const salt = new Uint8Array(32).fill(9);
const pass = new TextEncoder().encode('correct horse battery staple');
const refSalt = Buffer.from('saltsaltsaltsaltsaltsaltsaltsalt');

/**
 * Every implementation: Node's own only where the runtime has it (Node 24.7+), @node-rs/argon2 where its prebuilt
 * binary loads (the code then falls back to the next one); @noble/hashes everywhere.
 */
const IMPLEMENTATIONS = ['node', 'node-rs', 'noble'] as const;
const AVAILABLE = { node: nodeArgon2() !== null, 'node-rs': loadNodeRsArgon2() !== null, noble: true };
const skipped = (impl: (typeof IMPLEMENTATIONS)[number]): boolean => !AVAILABLE[impl];
/** The implementations that run on the libuv pool and are there on this machine. */
const POOL_IMPLEMENTATIONS = (['node', 'node-rs'] as const).filter((impl) => AVAILABLE[impl]);

// Known answers from the Argon2 reference implementation (the `argon2` command of Debian's argon2 package), e.g.
//   echo -n 'correct horse battery staple' | argon2 saltsaltsaltsaltsaltsaltsaltsalt -id -t 1 -k 64 -p 1 -l 32 -r
// (-k is memory in KiB). A change here means every key slot ever written stops opening.
const KNOWN: [memoryKiB: number, iterations: number, parallelism: number, hex: string][] = [
  [8, 1, 1, 'f068312609beeb89c1b44cde2f55b61382cc7d4a696eea53139ce6eae169f91e'],
  [12, 1, 1, '7a484d0f751736b3ea6b8a2c2973f92cdb3b720e10d238764ffeae5380c6f7fc'],
  [64, 1, 1, '8e8db95e07b5b6a069a656edd01f4834c0cb39485e4be83de94d0d7b98fcb58f'],
  [64, 3, 1, '50a6e29dacfdafee0d1ce943051dd3913f3268816fec2d775ecc05e622c351bd'],
  [100, 1, 2, 'e5c29b2226485ee8715925fb54ef1b890bb6aa4a10028e81088cc118a4c3ca0d'],
  [256, 2, 1, 'd81160a1d21a800f9a09d337d83bffc4683c7896e271cddd8c80bc0b031cb8f5'],
  [1000, 2, 1, '0d5ae3759be2ef78aa3961059347de615231eca89f879452a689bb308066a734'],
  [1024, 1, 1, '62f9a01f0062062ffcedf4afdab7321c8d7ab682704bd2dbe15b30eb40aa61b2'],
  [1024, 2, 2, 'd7e4297569d5da78b0a2449dff9fd4d3cc551f371ccb34ef6b70cbcdb72b3bc2'],
  [1024, 3, 2, 'ed813c06eacd4a910a1697592f85d96b02cf91ecc7bf8432a1c8386a346f0b17'],
  [4096, 1, 1, '5d4ba72a3c4e00cafbfee536a06dedc50321dd6844c07444ef1eae5f29e4f9e2'],
  [4096, 3, 1, '99ea7783cbb54eefd4b352ae4a67858ab56c1051be5f0b04f9174f7c20f85421'],
  [4096, 2, 2, '95b7db4e0e39d440e1b20c388c50b6a187546948707f13cd0dee387e7d7dcbdb'],
  [16384, 1, 1, '5d24c264790c182a01d73fdd04560e0af29a1603bc65a50cf2f82886e3179a8b'],
  [16384, 1, 2, '20c2078fb4f41974c9aa748140e75f7d82967257ad9673eac8fbe9c440ad1ba9'],
  [65536, 1, 1, 'b6034183b88ae7f6d71ae4e755e6fdf1273631ed196067673a1571555de1288b'],
  [65536, 2, 1, 'bb4896d9bbadda2e6c1261e0cc254eac84746e7bf207bc7c9dd750f74d51f17b'],
  [65536, 1, 2, '7e78405f657b9bc7744f113efc8209ce223eb7010f2beba6e8d755cfa9e1363b'],
];

describe.each(IMPLEMENTATIONS)('Argon2id key derivation (%s)', (impl) => {
  const test = skipped(impl) ? it.skip : it;

  test.each(KNOWN)('matches the reference Argon2id (v1.3) for m = %i KiB, t = %i, p = %i', async (memoryKiB, iterations, parallelism, expected) => {
    const key = await deriveKeyWith(impl, pass, refSalt, { memoryKiB, iterations, parallelism });
    expect(Buffer.from(key).toString('hex')).toBe(expected);
  }, 60_000);

  test('matches the reference for a passphrase that spans two BLAKE2b blocks of H0, and another salt', async () => {
    // echo -n "$P" | argon2 saltsaltsaltsaltsaltsaltsaltsalt -id -t 2 -k 2048 -p 1 -l 32 -r
    const long = new TextEncoder().encode('Ünïcödé passphrase, longer than one BLAKE2b block with the salt: the quick brown fox jumps');
    expect(long.length).toBe(94);
    const key = await deriveKeyWith(impl, long, refSalt, { memoryKiB: 2048, iterations: 2, parallelism: 1 });
    expect(Buffer.from(key).toString('hex')).toBe('05fa9a5a617e9777794dc605fe65e049e7e1f45ec307071d3cecc99fafc68b2a');
    // echo -n 'correct horse battery staple' | argon2 'ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`' -id -t 1 -k 512 -p 1 -l 32 -r
    const otherSalt = Uint8Array.from({ length: 32 }, (_, i) => 65 + i);
    const key2 = await deriveKeyWith(impl, pass, otherSalt, { memoryKiB: 512, iterations: 1, parallelism: 1 });
    expect(Buffer.from(key2).toString('hex')).toBe('84204fe969a17a889755f8d05b518bec85e1b6f684996d31ea2427f50b193b93');
  });

  test.each([
    ['64 GiB of memory', { memoryKiB: 64 * 1024 * 1024, iterations: 1, parallelism: 1 }, /memory is 67108864 KiB/],
    ['zero iterations', { memoryKiB: 64, iterations: 0, parallelism: 1 }, /iterations is 0/],
    ['a million iterations', { memoryKiB: 64, iterations: 1_000_000, parallelism: 1 }, /iterations/],
    ['255 lanes', { memoryKiB: 4096, iterations: 1, parallelism: 255 }, /parallelism/],
    ['less than 8 KiB a lane', { memoryKiB: 16, iterations: 1, parallelism: 4 }, /8 KiB per lane/],
    ['a fraction', { memoryKiB: 64.5, iterations: 1, parallelism: 1 }, /memory/],
    ['a negative memory', { memoryKiB: -1, iterations: 1, parallelism: 1 }, /memory/],
    ['NaN iterations', { memoryKiB: 64, iterations: NaN, parallelism: 1 }, /iterations/],
  ])('refuses %s before running anything', async (_, params, message) => {
    expect(() => checkKdfParams(params)).toThrow(message);
    // Refused, not attempted: the refusal settles before any I/O callback could run, so no derivation was started
    // (a 64 GiB derivation would take minutes or exhaust memory).
    const outcome = await settledBeforeIo(deriveKeyWith(impl, pass, salt, params));
    expect(outcome).toMatchObject({ code: 'VP_KDF_PARAMS', message });
  });

  test('stops when aborted, with VP_ABORTED, before an equal derivation started beside it finishes', async () => {
    const params = { memoryKiB: 64 * 1024, iterations: 1, parallelism: 1 };
    const controller = new AbortController();
    const order: string[] = [];
    const running = deriveKeyWith(impl, pass, salt, params, { signal: controller.signal }).then(
      () => order.push('aborted one resolved'),
      (err: unknown) => (order.push('aborted one rejected'), err),
    );
    const twin = deriveKeyWith(impl, pass, salt, params).then(() => order.push('twin finished'));
    controller.abort(new Error('user pressed Ctrl-C')); // the derivation is under way: it passed its abort check
    const e = await running;
    await twin;
    expect(e).toBeInstanceOf(VaultpathError);
    expect((e as VaultpathError).code).toBe('VP_ABORTED');
    // Prompt, whatever the machine's speed: the abort does not wait for the derivation it cannot stop.
    expect(order).toEqual(['aborted one rejected', 'twin finished']);
  }, 60_000);

  test('refuses an already aborted signal before running', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(deriveKeyWith(impl, pass, salt, DEFAULT_KDF_PARAMS, { signal: controller.signal })).rejects.toMatchObject({ code: 'VP_ABORTED' });
  });
});

describe('Argon2id implementations', () => {
  it('defaults to at least 64 MiB of memory', () => {
    expect(DEFAULT_KDF_PARAMS.memoryKiB).toBeGreaterThanOrEqual(64 * 1024);
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('installs the prebuilt Argon2id on Linux x64 (or uses Node\'s own), and deriveKey uses it', async () => {
    // Without the library vaultpath still works (it falls back to @noble/hashes), but the fast path would go untested.
    expect(AVAILABLE['node-rs'], '@node-rs/argon2 or its prebuilt @node-rs/argon2-linux-x64-gnu is missing: was the install run with optional packages?').toBe(true);
    expect(kdfImplementation()).toBe(AVAILABLE.node ? 'node' : 'node-rs');
    const params = { memoryKiB: 64, iterations: 1, parallelism: 1 };
    expect(Buffer.from(await deriveKey(pass, refSalt, params)).toString('hex')).toBe(KNOWN[2]![3]);
  });

  it.skipIf(POOL_IMPLEMENTATIONS.length === 0).each(POOL_IMPLEMENTATIONS)('%s and noble agree on random inputs', async (impl) => {
    for (let i = 0; i < 24; i++) {
      const p = randomInt(1, 5);
      const params = { memoryKiB: randomInt(8 * p, 3 * 1024), iterations: randomInt(1, 4), parallelism: p };
      const passphrase = randomBytes(randomInt(0, 300));
      const s = randomBytes(32);
      const [a, b] = await Promise.all([deriveKeyWith(impl, passphrase, s, params), deriveKeyWith('noble', passphrase, s, params)]);
      expect(Buffer.from(a).toString('hex'), `${JSON.stringify(params)} passphrase ${passphrase.toString('hex')} salt ${s.toString('hex')}`).toBe(
        Buffer.from(b).toString('hex'),
      );
    }
  }, 60_000);

  it.each(IMPLEMENTATIONS.filter((impl) => AVAILABLE[impl]))('refuses (%s) what Argon2 does not define, even under bounds that let it through', async (impl) => {
    const loose = { ...KDF_BOUNDS, iterations: { min: 0, max: 64 }, memoryKiB: { min: 8, max: 8 * 1024 * 1024 } };
    // t = 0 is not Argon2; 5 GiB is beyond what any implementation here is ever asked for. Refused before any work
    // is queued; a derivation on the thread pool or a worker could not settle before an I/O callback.
    expect(await settledBeforeIo(deriveKeyWith(impl, pass, salt, { memoryKiB: 64, iterations: 0, parallelism: 1 }, { bounds: loose }))).toMatchObject({
      code: 'VP_KDF_PARAMS',
      message: expect.stringMatching(/iterations is 0/),
    });
    expect(await settledBeforeIo(deriveKeyWith(impl, pass, salt, { memoryKiB: 5 * 1024 * 1024, iterations: 1, parallelism: 1 }, { bounds: loose }))).toMatchObject({
      code: 'VP_KDF_PARAMS',
      message: expect.stringMatching(/memory is 5242880 KiB/),
    });
  });

  it.skipIf(POOL_IMPLEMENTATIONS.length === 0).each(POOL_IMPLEMENTATIONS)('keeps the event loop free while the %s fill runs', async (impl) => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    const started = performance.now();
    await deriveKeyWith(impl, pass, salt, { memoryKiB: 64 * 1024, iterations: 2, parallelism: 1 });
    clearInterval(timer);
    // A blocked loop would tick once at most; a free one about every 2 ms.
    expect(ticks).toBeGreaterThan(Math.min(10, (performance.now() - started) / 20));
  });
});
