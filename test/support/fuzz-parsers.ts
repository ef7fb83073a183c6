/**
 * Seeded mutation fuzzing of every parser of vault objects and local files, shared by `npm run fuzz` (many inputs,
 * timed) and test/fuzz/parsers.test.ts (a few hundred per parser).
 *
 * Each target starts from valid plaintexts made by the real encoders, mutates them (bytes: flips, inserts,
 * deletes, truncation, splicing; JSON: a value of another type, deeper nesting, huge, negative and fractional
 * numbers, long strings, duplicate and unknown keys, missing keys), and hands the result to the parser the way a
 * reader meets it: a sealed object or blob is sealed again under the vault's keys so it passes authentication and
 * reaches the decoder behind it. The only acceptable outcomes are a value or a VaultpathError with a known code.
 */
import { createHash } from 'node:crypto';
import { ERROR_CODES, VaultpathError } from '../../src/errors.js';
import { type SealKeys, joinSealed, openBlob, openObject, sealBlob, sealObject } from '../../src/crypto/envelope.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { type KeySlot, createKeySlot, decodeKeySlot } from '../../src/crypto/key-slot.js';
import { type Tree, decodeSnapshot, decodeTree, encodeSnapshot, encodeTree, nodeDisplayName, nodeNameKey, splitTimeNs } from '../../src/repo/tree.js';
import { decodeLock, encodeLock, isAbandoned } from '../../src/repo/lock.js';
import { CONFIG_ID, decodeConfig, openConfig } from '../../src/repo/config.js';
import { encodeIndex, openIndex } from '../../src/repo/index-file.js';
import { PACK_HEADER_ID, encodePackHeader, openPackHeader, packTail, readPackTrailer } from '../../src/repo/pack.js';
import { decodeCredentialsFile, makeCredentials, verifyCredentials } from '../../src/agent/credentials.js';
import { decodeCredentialsState, decodeIdentity, decodeMachineRecord } from '../../src/agent/identity.js';
import { decodeAgentFile, publicView } from '../../src/agent/settings.js';
import { jsonTooDeep } from '../../src/json.js';
import { TEST_KDF } from './seeded.js';

/** One parser under fuzzing. */
export interface FuzzTarget {
  readonly name: string;
  /** Valid inputs, as the encoders write them. */
  readonly seeds: readonly Buffer[];
  /** Whether the input is JSON (JSON-aware mutations apply). */
  readonly json: boolean;
  /** Parses `input` as a reader does, and uses the result as a reader would. */
  parse(input: Buffer): unknown;
}

/** What one input gave. */
export type Outcome = { readonly kind: 'accepted' } | { readonly kind: 'refused'; readonly code: string } | { readonly kind: 'failed'; readonly error: unknown };

/** Runs `target` on `input`: accepted, refused with a VaultpathError of a known code, or failed (anything else). */
export function runOne(target: FuzzTarget, input: Buffer): Outcome {
  try {
    target.parse(input);
    return { kind: 'accepted' };
  } catch (e) {
    if (e instanceof VaultpathError && typeof e.code === 'string' && e.code in ERROR_CODES) return { kind: 'refused', code: e.code };
    return { kind: 'failed', error: e };
  }
}

// ---- seeded randomness ---------------------------------------------------------------------------------------

/** A small seeded generator (mulberry32): the same seed gives the same inputs on every machine. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

// ---- mutations -----------------------------------------------------------------------------------------------

const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x2d, 0x30, 0x39, 0x65, 0x2e, 0x20];

function byteMutation(rng: Rng, input: Buffer, seeds: readonly Buffer[]): Buffer {
  const at = input.length === 0 ? 0 : rng.int(input.length);
  switch (rng.int(7)) {
    case 0: {
      // bit flip
      if (input.length === 0) return Buffer.of(rng.int(256));
      const out = Buffer.from(input);
      out[at]! ^= 1 << rng.int(8);
      return out;
    }
    case 1: {
      // byte insert
      const b = rng.next() < 0.5 ? rng.pick(INTERESTING_BYTES) : rng.int(256);
      return Buffer.concat([input.subarray(0, at), Buffer.of(b), input.subarray(at)]);
    }
    case 2:
      // byte delete (a run of up to 8)
      return Buffer.concat([input.subarray(0, at), input.subarray(at + 1 + rng.int(8))]);
    case 3:
      // truncation
      return input.subarray(0, at);
    case 4: {
      // splice: the head of this input and the tail of another seed
      const other = rng.pick(seeds);
      return Buffer.concat([input.subarray(0, at), other.subarray(rng.int(other.length + 1))]);
    }
    case 5: {
      // a run of this input repeated
      const len = 1 + rng.int(Math.min(64, Math.max(1, input.length - at)));
      const run = input.subarray(at, at + len);
      return Buffer.concat([input.subarray(0, at), ...Array.from({ length: 2 + rng.int(20) }, () => run), input.subarray(at + len)]);
    }
    default: {
      // a random u32 written somewhere (counts, lengths, offsets in binary formats)
      if (input.length < 4) return Buffer.concat([input, Buffer.alloc(4, 0xff)]);
      const out = Buffer.from(input);
      const pos = rng.int(out.length - 3);
      const values = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff0, rng.int(2 ** 32), out.readUInt32LE(pos) + 1, out.readUInt32LE(pos) - 1];
      out.writeUInt32LE(rng.pick(values) >>> 0, pos);
      return out;
    }
  }
}

/** Raw JSON text spliced into a document as it is serialised. */
class Raw {
  constructor(readonly text: string) {}
}
/** An object serialised with its entries as given: keys may repeat. */
class Entries {
  constructor(readonly entries: readonly (readonly [string, unknown])[]) {}
}

function serialise(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Entries) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${serialise(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(serialise).join(',')}]`;
  if (v !== null && typeof v === 'object') return serialise(new Entries(Object.entries(v)));
  return JSON.stringify(v) ?? 'null';
}

function nested(depth: number, rng: Rng): Raw {
  const [open, close] = rng.next() < 0.5 ? ['[', ']'] : ['{"a":', '}'];
  const closed = rng.next() < 0.8;
  return new Raw(open.repeat(depth) + (open === '[' ? '1' : '1') + (closed ? close.repeat(depth) : ''));
}

function replacement(rng: Rng, current: unknown): unknown {
  const longString = (): string => 'x'.repeat(rng.pick([256, 4096, 65_536, 100_001]));
  const options: (() => unknown)[] = [
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => 1.5,
    () => -0.5,
    () => 2 ** 53 + 2,
    () => 1e308,
    () => new Raw('1e400'),
    () => new Raw('-1e400'),
    () => 4294967296,
    () => -9007199254740993,
    () => '',
    () => 'x',
    () => longString(),
    () => '-1',
    () => '1'.repeat(40),
    () => '\u0000',
    () => '../..',
    () => '2026-13-45T99:99:99Z',
    () => [],
    () => [1, 2],
    () => ['a'],
    () => [[0, 1], [-1, 2]],
    () => ({}),
    () => ({ a: 1 }),
    () => nested(2 + rng.int(8), rng),
    () => nested(rng.pick([64, 1000, 100_000]), rng),
    () => (typeof current === 'string' ? current + current : typeof current === 'number' ? current * 2 + 1 : current),
    () => (typeof current === 'number' ? -current - 1 : typeof current === 'string' ? current.slice(1) : current),
    () => (Array.isArray(current) ? [...current, ...current] : current),
    () => (Array.isArray(current) ? current.slice(1) : current),
  ];
  return rng.pick(options)();
}

/** Every place in `v` a value sits (up to a bound), as [container, key] pairs. */
function places(v: unknown, out: [Record<string, unknown> | unknown[], string | number][] = [], depth = 0): typeof out {
  if (depth > 8 || out.length > 2000) return out;
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push([v, i]);
      places(x, out, depth + 1);
    });
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push([v as Record<string, unknown>, k]);
      places(x, out, depth + 1);
    }
  }
  return out;
}

function jsonMutation(rng: Rng, input: Buffer): Buffer | undefined {
  // A document an earlier round made deep is mutated byte-wise: walking it here would overflow this stack.
  if (jsonTooDeep(input, 32)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(input.toString('utf8'));
  } catch {
    return undefined;
  }
  const at = places(doc);
  const op = rng.int(6);
  if (op === 5 || at.length === 0) {
    // the whole document replaced by deep nesting or another type
    return Buffer.from(serialise(rng.next() < 0.5 ? nested(rng.pick([3, 10, 100_000]), rng) : replacement(rng, doc)), 'utf8');
  }
  const [container, key] = rng.pick(at);
  const record = container as Record<string | number, unknown>;
  switch (op) {
    case 0:
    case 1:
      record[key] = replacement(rng, record[key]);
      break;
    case 2:
      // a key removed (or an element)
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete record[key];
      break;
    case 3:
      // a key repeated with another value (JSON.parse keeps the last)
      if (!Array.isArray(container)) {
        const entries = Object.entries(container);
        const dup = new Entries([...entries, [key as string, replacement(rng, record[key])]]);
        if (container === doc) return Buffer.from(serialise(dup), 'utf8');
        const parent = findParent(at, container);
        if (parent) (parent[0] as Record<string | number, unknown>)[parent[1]] = dup;
      }
      break;
    default:
      // an unknown key added
      if (!Array.isArray(container)) record[`x${rng.int(100)}`] = replacement(rng, undefined);
      else container.push(replacement(rng, container[0]));
  }
  return Buffer.from(serialise(doc), 'utf8');
}

function findParent(at: readonly [Record<string, unknown> | unknown[], string | number][], child: unknown): [Record<string, unknown> | unknown[], string | number] | undefined {
  return at.find(([c, k]) => (c as Record<string | number, unknown>)[k] === child);
}

/** One input for `target`: a seed with 1 to 3 mutations stacked. */
export function mutate(rng: Rng, target: FuzzTarget): Buffer {
  let input = rng.pick(target.seeds);
  const rounds = 1 + rng.int(3);
  for (let i = 0; i < rounds; i++) {
    const viaJson = target.json && rng.next() < 0.6 ? jsonMutation(rng, input) : undefined;
    input = viaJson ?? byteMutation(rng, input, target.seeds);
  }
  return input;
}

// ---- targets ---------------------------------------------------------------------------------------------------

const hex = (b: number): string => createHash('sha256').update(Buffer.of(b)).digest('hex');
const NOW = Date.parse('2026-11-22T10:00:00.000Z');

function sampleTrees(): Tree[] {
  return [
    {
      nodes: [
        { name: 'a.txt', type: 'file', mode: 0o644, mtimeNs: '1700000000123456789', ctimeNs: '1700000000123456789', inode: '42', size: 10, content: [hex(1)], decision: 'backup' },
        { name: 'big', type: 'file', mode: 0o600, mtimeNs: '-5', size: 3_000_000, content: [hex(2), hex(3)], holes: [[0, 4096], [1_000_000, 8192]], decision: 'backup-sparse' },
        { name: 'dir', type: 'dir', mode: 0o755, mtimeNs: '0', subtree: hex(4) },
        { name: 'empty', type: 'file', mode: 0o644, mtimeNs: '1', size: 0, content: [] },
        { nameRaw: Buffer.from([0xff, 0x41]).toString('base64'), type: 'file', mode: 0o644, mtimeNs: '2', size: 1, content: [hex(5)] },
        { name: 'link', type: 'symlink', mode: 0o777, mtimeNs: '3', linkTarget: '../a.txt' },
      ],
      next: hex(6),
    },
    { nodes: [] },
    { nodes: [{ name: 'src', type: 'dir', mode: 0o755, mtimeNs: '1', subtree: hex(7) }] },
  ];
}

const SNAPSHOT = {
  version: 1 as const,
  time: '2026-11-22T10:00:00.000Z',
  hostname: 'host-1',
  paths: ['/srv/data', '/home'],
  tree: hex(8),
  parent: hex(9),
  status: 'warnings' as const,
  warnings: 2,
  stats: { files: 10, dirs: 3, bytesRead: 1000, bytesNew: 500, bytesStored: 600, skipped: 1 },
  program: 'vaultpath 0.1.0',
};

/** The parsers under fuzzing, with the keys of a vault to seal mutated objects under. */
export async function fuzzTargets(keys: SealKeys): Promise<FuzzTarget[]> {
  const id = Buffer.from(hex(10), 'hex');
  const sealedObject = (type: (typeof ObjectType)[keyof typeof ObjectType], objectId: Uint8Array, plain: Buffer): Buffer => joinSealed(sealObject(keys, type, objectId, plain));

  const trees = sampleTrees().map(encodeTree);
  const useTree = (t: Tree): void => {
    for (const n of t.nodes) {
      nodeDisplayName(n);
      nodeNameKey(n);
      splitTimeNs(BigInt(n.mtimeNs));
      if (n.ctimeNs !== undefined) BigInt(n.ctimeNs);
    }
  };

  const indexEntries = [
    { id: Buffer.from(hex(11), 'hex'), type: ObjectType.data, codec: 0, packId: Buffer.from(hex(12), 'hex'), offset: 0, length: 1_048_624, plaintextLength: 1_048_576 },
    { id: Buffer.from(hex(13), 'hex'), type: ObjectType.tree, codec: 0, packId: Buffer.from(hex(14), 'hex'), offset: 0, length: 348, plaintextLength: 300 },
    { id: Buffer.from(hex(15), 'hex'), type: ObjectType.data, codec: 0, packId: Buffer.from(hex(12), 'hex'), offset: 1_048_624, length: 4_000_048, plaintextLength: 4_000_000 },
  ] as const;
  const indexPlain = encodeIndex({ entries: indexEntries, supersedes: [Buffer.from(hex(16), 'hex')] });

  const packEntries = [
    { type: ObjectType.data, codec: 0, id: Buffer.from(hex(17), 'hex'), offset: 0, length: 148, plaintextLength: 100 },
    { type: ObjectType.tree, codec: 0, id: Buffer.from(hex(18), 'hex'), offset: 148, length: 348, plaintextLength: 300 },
  ] as const;
  const headerPlain = encodePackHeader(packEntries);
  const tail = packTail(keys, packEntries);
  const sealedHeaderLength = tail.slice(0, -1).reduce((n, p) => n + p.length, 0);
  const packSize = 148 + 348 + sealedHeaderLength + 8;
  const trailer = tail.at(-1)!;

  const slotMaster = Buffer.alloc(32, 7);
  const slot: KeySlot = await createKeySlot(slotMaster, 'a passphrase of sixteen+', { kdf: TEST_KDF });

  const identity = { format: 'vaultpath-vault' as const, version: 1 as const, id: 'ab'.repeat(16), name: 'backups', createdAt: '2026-11-22T10:00:00.000Z' };
  const state = { generation: 3, key: Buffer.alloc(32, 1).toString('base64'), issuedAt: '2026-11-22T10:00:00.000Z' };
  const credentials = makeCredentials(identity, state, 'https://acct.blob.core.windows.net/vault', { sasToken: 'sv=2025-01-05&sig=abc' }, NOW);
  const localCredentials = makeCredentials(identity, state, '/srv/vault', {}, NOW);
  const agentFile = {
    format: 'vaultpath-agent',
    version: 1,
    registration: {
      vaultId: identity.id,
      vaultName: 'backups',
      location: '/srv/vault',
      machineLocation: '/srv/vault/machines/host-1',
      machineId: 'cd'.repeat(16),
      machineName: 'host-1',
      registeredAt: '2026-11-22T10:00:00.000Z',
      generation: 3,
      access: { sasToken: `sealed:v1:${Buffer.alloc(40, 3).toString('base64')}` },
    },
    settings: {
      proxy: { url: 'http://proxy:3128', username: 'u', password: `sealed:v1:${Buffer.alloc(30, 4).toString('base64')}` },
      throttle: { workDays: 'Mon-Fri', workHours: '09:00-17:00', workRate: '8Mbit/s', offRate: 'unlimited', tz: 'Europe/Paris' },
      scratchDir: '/var/tmp/scratch',
      recoveryFolder: '/var/tmp/recovery',
    },
  };
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v, null, 2), 'utf8');
  const config = { version: 1, id: hex(19), createdAt: '2026-11-22T10:00:00.000Z', chunker: { minSize: 524288, avgSize: 1048576, maxSize: 8388608 } };

  return [
    { name: 'tree', seeds: trees, json: true, parse: (b) => useTree(decodeTree(b, 'tree')) },
    {
      name: 'tree (sealed blob)',
      seeds: trees,
      json: true,
      parse: (b) => useTree(decodeTree(openBlob(keys, ObjectType.tree, id, joinSealed(sealBlob(keys, ObjectType.tree, id, b))), 'tree')),
    },
    { name: 'snapshot', seeds: [encodeSnapshot(SNAPSHOT), encodeSnapshot({ ...SNAPSHOT, parent: null, status: 'complete', warnings: 0 })], json: true, parse: (b) => decodeSnapshot(b, 'snapshot') },
    {
      name: 'snapshot (sealed)',
      seeds: [encodeSnapshot(SNAPSHOT)],
      json: true,
      parse: (b) => decodeSnapshot(openObject(keys, ObjectType.snapshot, id, sealedObject(ObjectType.snapshot, id, b)), 'snapshot'),
    },
    {
      name: 'lock (sealed)',
      seeds: [encodeLock({ time: '2026-11-22T10:00:00.000Z', hostname: 'host-1', pid: 4242, exclusive: false })],
      json: true,
      parse: (b) => {
        const lock = decodeLock(openObject(keys, ObjectType.lock, id, sealedObject(ObjectType.lock, id, b)), 'lock');
        isAbandoned(lock, { now: NOW, hostname: 'host-1' });
      },
    },
    { name: 'config', seeds: [json(config)], json: true, parse: (b) => decodeConfig(b) },
    { name: 'config (sealed)', seeds: [json(config)], json: true, parse: (b) => openConfig(keys, sealedObject(ObjectType.config, CONFIG_ID, b)) },
    { name: 'index (sealed)', seeds: [indexPlain, encodeIndex({ entries: [], supersedes: [] })], json: false, parse: (b) => openIndex(keys, id, sealedObject(ObjectType.index, id, b)) },
    {
      name: 'pack header (sealed)',
      seeds: [headerPlain],
      json: false,
      parse: (b) => openPackHeader(keys, joinSealed(sealBlob(keys, ObjectType.packHeader, PACK_HEADER_ID, b)), packSize, 'pack'),
    },
    {
      name: 'pack trailer',
      // The pack's size, as a listing reports it, rides in front of the trailer: a 6-byte prefix fuzzed with it.
      seeds: [Buffer.concat([sizePrefix(packSize), trailer])],
      json: false,
      parse: (b) => readPackTrailer(b.subarray(6), b.length >= 6 ? b.readUIntLE(0, 6) : 0, 'pack'),
    },
    {
      name: 'key slot',
      seeds: [slot.bytes],
      json: false,
      // Half the inputs get their checksum recomputed, so mutations reach the fields behind it.
      parse: (b) => decodeKeySlot(slot.id, b.length === 156 && b[155]! % 2 === 0 ? b : fixChecksum(b)),
    },
    { name: 'envelope', seeds: [sealedObject(ObjectType.snapshot, id, encodeSnapshot(SNAPSHOT))], json: false, parse: (b) => openObject(keys, ObjectType.snapshot, id, b) },
    {
      name: 'credentials file',
      seeds: [json(credentials), json(localCredentials)],
      json: true,
      parse: (b) => verifyCredentialsQuietly(decodeCredentialsFile(b, 'file.VaultCredentials'), identity, state),
    },
    { name: 'agent settings', seeds: [json(agentFile), json({ format: 'vaultpath-agent', version: 1, settings: {} })], json: true, parse: (b) => publicView(decodeAgentFile(b, 'agent.json')) },
    { name: 'vault identity', seeds: [json(identity)], json: true, parse: (b) => decodeIdentity(b, 'registry/vault') },
    { name: 'credentials state', seeds: [json(state)], json: true, parse: (b) => decodeCredentialsState(b, 'registry/credentials') },
    {
      name: 'machine record',
      seeds: [json({ machineId: 'cd'.repeat(16), name: 'host-1', registeredAt: '2026-11-22T10:00:00.000Z', generation: 3 })],
      json: true,
      parse: (b) => decodeMachineRecord(b, 'registry/machines/host-1'),
    },
  ];
}

function sizePrefix(n: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntLE(n, 0, 6);
  return b;
}

function fixChecksum(b: Buffer): Buffer {
  if (b.length !== 156) return b;
  const out = Buffer.from(b);
  createHash('sha256').update(out.subarray(0, 124)).digest().copy(out, 124);
  return out;
}

/** Verifies as registration does; its refusals are VaultpathErrors too, so they count as refusals. */
function verifyCredentialsQuietly(file: ReturnType<typeof decodeCredentialsFile>, identity: Parameters<typeof verifyCredentials>[1], state: Parameters<typeof verifyCredentials>[2]): void {
  verifyCredentials(file, identity, state, NOW, 'file.VaultCredentials');
}
