/**
 * Which Argon2id runs, and what the fast ones owe the caller: Node's own `crypto.argon2` first, @node-rs/argon2
 * second, @noble/hashes last, each giving the reference's key; an abort that does not wait for a derivation that
 * cannot be stopped; keys and passphrase copies of abandoned derivations wiped.
 *
 * Node 20 has no `crypto.argon2`: its path is held to the same answers through a stand-in with Node's signature that
 * runs the real library, so that the mapping of parameters to Node's names is checked here too.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import {
  type KdfProviders,
  type NodeArgon2,
  type NodeRsArgon2,
  deriveKeyWith,
  kdfImplementation,
  loadNodeRsArgon2,
  nodeArgon2,
} from '../../src/crypto/kdf.js';
import { settledBeforeIo } from '../support/settled.js';

const pass = new TextEncoder().encode('correct horse battery staple');
const refSalt = Buffer.from('saltsaltsaltsaltsaltsaltsaltsalt');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// From the reference `argon2` command, as in kdf.test.ts, e.g.
//   echo -n 'correct horse battery staple' | argon2 saltsaltsaltsaltsaltsaltsaltsalt -id -t 3 -k 4096 -p 1 -l 32 -r
const KNOWN: [memoryKiB: number, iterations: number, parallelism: number, hex: string][] = [
  [64, 1, 1, '8e8db95e07b5b6a069a656edd01f4834c0cb39485e4be83de94d0d7b98fcb58f'],
  [100, 1, 2, 'e5c29b2226485ee8715925fb54ef1b890bb6aa4a10028e81088cc118a4c3ca0d'],
  [1024, 3, 2, 'ed813c06eacd4a910a1697592f85d96b02cf91ecc7bf8432a1c8386a346f0b17'],
  [4096, 3, 1, '99ea7783cbb54eefd4b352ae4a67858ab56c1051be5f0b04f9174f7c20f85421'],
];

const library = loadNodeRsArgon2();
const libraryLoads = library !== null;

/** A call to the Node-shaped stand-in, held until the test lets it finish (`run`) or fail (`fail`). */
interface HeldCall {
  algorithm: string;
  parameters: Parameters<NodeArgon2>[1];
  run(): Promise<Uint8Array>;
  fail(message: string): void;
}

/**
 * A function with `crypto.argon2`'s signature that computes with the real @node-rs/argon2 from Node's parameter
 * names. With `hold`, each call waits in `held` until the test runs it.
 */
function nodeStandIn(lib: NodeRsArgon2, hold = false): { fn: NodeArgon2; held: HeldCall[] } {
  const held: HeldCall[] = [];
  const fn: NodeArgon2 = (algorithm, parameters, callback) => {
    const call: HeldCall = {
      algorithm,
      parameters,
      async run() {
        const { message, nonce, memory, passes, parallelism, tagLength } = parameters;
        const key = await lib.hashRaw(message, { algorithm: 2, version: 1, memoryCost: memory, timeCost: passes, parallelism, outputLen: tagLength, salt: nonce });
        callback(null, key);
        return key;
      },
      fail(message) {
        callback(new Error(message), new Uint8Array(0));
      },
    };
    held.push(call);
    if (!hold) void call.run().catch((e: unknown) => callback(e as Error, new Uint8Array(0)));
  };
  return { fn, held };
}

describe('choosing the Argon2id implementation', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'vp-argon2-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('prefers Node\'s own, then @node-rs/argon2, then @noble/hashes', () => {
    const node: NodeArgon2 = () => undefined;
    const lib = { hashRaw: async () => new Uint8Array(32) } satisfies NodeRsArgon2;
    expect(kdfImplementation({ node: () => node, nodeRs: () => lib })).toBe('node');
    expect(kdfImplementation({ node: () => null, nodeRs: () => lib })).toBe('node-rs');
    expect(kdfImplementation({ node: () => null, nodeRs: () => null })).toBe('noble');
    // And here, with the real providers: Node's own where the runtime has it, else the library where it loads.
    expect(kdfImplementation()).toBe(nodeArgon2() ? 'node' : libraryLoads ? 'node-rs' : 'noble');
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('loads the prebuilt @node-rs/argon2 on Linux x64', () => {
    expect(libraryLoads, '@node-rs/argon2-linux-x64-gnu (an optional dependency) is not installed or does not load').toBe(true);
  });

  it.runIf(libraryLoads)('falls back to @noble/hashes, with the same keys, when the prebuilt binary is missing', async () => {
    // The package as an install without optional dependencies leaves it: its loader, but no binary beside it.
    const pkg = join(scratch, 'node_modules', '@node-rs', 'argon2');
    cpSync(join(createRequire(import.meta.url).resolve('@node-rs/argon2'), '..'), pkg, { recursive: true });
    const providers: KdfProviders = { node: () => null, nodeRs: () => loadNodeRsArgon2(join(pkg, 'index.js')) };
    expect(() => createRequire(import.meta.url)(join(pkg, 'index.js'))).toThrow(/native binding/i);
    expect(providers.nodeRs()).toBeNull();
    expect(loadNodeRsArgon2('@node-rs/argon2-not-installed')).toBeNull();
    const implementation = kdfImplementation(providers);
    expect(implementation).toBe('noble');
    for (const [memoryKiB, iterations, parallelism, expected] of KNOWN) {
      expect(hex(await deriveKeyWith(implementation, pass, refSalt, { memoryKiB, iterations, parallelism }, {}, providers))).toBe(expected);
    }
  }, 60_000);

  it('refuses an implementation its providers lack', async () => {
    const none: KdfProviders = { node: () => null, nodeRs: () => null };
    await expect(deriveKeyWith('node', pass, refSalt, { memoryKiB: 64, iterations: 1, parallelism: 1 }, {}, none)).rejects.toThrow(/not available/);
    await expect(deriveKeyWith('node-rs', pass, refSalt, { memoryKiB: 64, iterations: 1, parallelism: 1 }, {}, none)).rejects.toThrow(/not available/);
  });
});

describe.runIf(libraryLoads)('the Argon2id implementations on the libuv pool', () => {
  const lib = library!;

  it('passes Node\'s crypto.argon2 its parameters under Node\'s names, and gets the reference keys', async () => {
    const { fn, held } = nodeStandIn(lib);
    const providers: KdfProviders = { node: () => fn, nodeRs: () => null };
    for (const [memoryKiB, iterations, parallelism, expected] of KNOWN) {
      expect(hex(await deriveKeyWith('node', pass, refSalt, { memoryKiB, iterations, parallelism }, {}, providers))).toBe(expected);
    }
    expect(held.map((c) => c.algorithm)).toEqual(KNOWN.map(() => 'argon2id'));
    expect(held.map((c) => c.parameters.tagLength)).toEqual(KNOWN.map(() => 32));
    // The passphrase went in as bytes, in a copy of its own, wiped once the derivation ended.
    for (const call of held) {
      expect(call.parameters.message).not.toBe(pass);
      expect(call.parameters.message.length).toBe(pass.length);
      expect(call.parameters.message.every((b) => b === 0)).toBe(true);
    }
  }, 60_000);

  it('reports a failure of Node\'s crypto.argon2 as a failed derivation', async () => {
    const { fn, held } = nodeStandIn(lib, true);
    const running = deriveKeyWith('node', pass, refSalt, { memoryKiB: 64, iterations: 1, parallelism: 1 }, {}, { node: () => fn, nodeRs: () => null });
    held[0]!.fail('out of memory');
    await expect(running).rejects.toThrow(/Argon2id failed: out of memory/);
  });

  it.each(['node', 'node-rs'] as const)('rejects (%s) with VP_ABORTED at once, without waiting for the derivation it cannot stop', async (impl) => {
    const { fn, held } = nodeStandIn(lib, true);
    const providers: KdfProviders = { node: () => fn, nodeRs: () => lib };
    const params = { memoryKiB: 64 * 1024, iterations: 1, parallelism: 1 };
    for (let round = 0; round < 3; round++) {
      const controller = new AbortController();
      // The job is on the pool (Node's one is held there until the test runs it) when the signal fires.
      const running = deriveKeyWith(impl, pass, refSalt, params, { signal: controller.signal }, providers);
      controller.abort(new Error('user pressed Ctrl-C'));
      expect(await settledBeforeIo(running)).toMatchObject({ code: 'VP_ABORTED' });
    }
    // A derivation that was under way when the abort came ends in the background; its key is wiped unread, and so
    // is the copy of the passphrase it read.
    for (const call of held) {
      const key = await call.run();
      expect(key.every((b) => b === 0)).toBe(true);
      expect(call.parameters.message.every((b) => b === 0)).toBe(true);
    }
    expect(held.length).toBe(impl === 'node' ? 3 : 0);
    // The pool is still usable, and gives the reference key.
    const next = deriveKeyWith(impl, pass, refSalt, { memoryKiB: 64, iterations: 1, parallelism: 1 }, {}, providers);
    if (impl === 'node') void held[3]!.run();
    expect(hex(await next)).toBe(KNOWN[0]![3]);
  }, 60_000);

  it('gives the caller a key of its own, not the library\'s buffer', async () => {
    const handed: Uint8Array[] = [];
    const watching: NodeRsArgon2 = { hashRaw: async (...args) => { const key = await lib.hashRaw(...args); handed.push(key); return key; } };
    const key = await deriveKeyWith('node-rs', pass, refSalt, { memoryKiB: 64, iterations: 1, parallelism: 1 }, {}, { node: () => null, nodeRs: () => watching });
    expect(hex(key)).toBe(KNOWN[0]![3]);
    expect(key.buffer).not.toBe(handed[0]!.buffer);
    expect(handed[0]!.every((b) => b === 0)).toBe(true);
  });
});
