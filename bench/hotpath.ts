/**
 * Hot-path benchmarks (tinybench): chunker, chunk id, seal, open, and the combined chunk → id → seal path, on one
 * core (the main thread), in two sections: small inputs (64 KiB) and large inputs (1 MiB to 64 MiB).
 *
 * Run with `npm run bench`. Figures are MB/s = 10^6 bytes per second of input, the mean over the run.
 * `--json` prints the rows as JSON instead of a table.
 */
import { randomBytes } from 'node:crypto';
import { Bench } from 'tinybench';
import {
  ChunkIdentifier,
  DEFAULT_CHUNKER_PARAMS,
  DEFAULT_KDF_PARAMS,
  deriveKey,
  ObjectType,
  VaultKeys,
  chunkStream,
  generateMasterKey,
  joinSealed,
  openBlob,
  sealBlob,
} from '../src/format.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const keys = VaultKeys.fromMasterKey(generateMasterKey());
const ids = new ChunkIdentifier(keys);
const id = randomBytes(32);

interface Row {
  section: string;
  name: string;
  bytes: number;
  mbPerSecond: number;
  msPerOp: number;
}

/** Splits `buf` into reads of `size` bytes, as a file reader would deliver them. */
function reads(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < buf.length; o += size) out.push(buf.subarray(o, Math.min(buf.length, o + size)));
  return out;
}

async function chunkAll(input: Buffer[]): Promise<number> {
  let n = 0;
  for await (const c of chunkStream(input, keys.gearTable, DEFAULT_CHUNKER_PARAMS)) n += c.length;
  return n;
}

async function chunkIdSeal(input: Buffer[]): Promise<number> {
  let n = 0;
  for await (const c of chunkStream(input, keys.gearTable, DEFAULT_CHUNKER_PARAMS)) {
    const chunkId = ids.id(c.parts);
    n += sealBlob(keys, ObjectType.data, chunkId, c.parts).length;
  }
  return n;
}

async function section(
  name: string,
  cases: { name: string; bytes: number; fn: () => unknown }[],
  options: { time: number; warmupTime: number; iterations?: number } = { time: 1500, warmupTime: 200 },
): Promise<Row[]> {
  const bench = new Bench(options);
  for (const c of cases) bench.add(c.name, c.fn);
  await bench.run();
  return bench.tasks.map((task, i) => {
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`${task.name}: ${r.state === 'errored' ? r.error.message : r.state}`);
    const bytes = cases[i]!.bytes;
    return { section: name, name: task.name, bytes, mbPerSecond: bytes / 1e6 / (r.period / 1000), msPerOp: r.period };
  });
}

async function main(): Promise<void> {
  const small = randomBytes(64 * KiB);
  const smallSealed = joinSealed(sealBlob(keys, ObjectType.data, id, small));
  const oneMiB = randomBytes(MiB);
  const oneMiBSealed = joinSealed(sealBlob(keys, ObjectType.data, id, oneMiB));
  const eight = randomBytes(8 * MiB);
  const eightSealed = joinSealed(sealBlob(keys, ObjectType.data, id, eight));
  const big = randomBytes(64 * MiB);
  const bigReads = reads(big, MiB);
  // Written zeros: an untouched Buffer.alloc maps every page to the kernel's one zero page, which flatters memcmp.
  const zeroed = Buffer.allocUnsafe(64 * MiB).fill(0);
  const zeros = reads(zeroed, MiB);

  const rows = [
    ...(await section('small inputs (64 KiB)', [
      { name: 'chunker (a whole file below min size)', bytes: small.length, fn: () => chunkAll([small]) },
      { name: 'chunk id (HMAC-SHA256)', bytes: small.length, fn: () => ids.id(small) },
      { name: 'seal (AES-256-GCM)', bytes: small.length, fn: () => sealBlob(keys, ObjectType.data, id, small) },
      { name: 'open (AES-256-GCM)', bytes: small.length, fn: () => openBlob(keys, ObjectType.data, id, smallSealed) },
      { name: 'chunk → id → seal', bytes: small.length, fn: () => chunkIdSeal([small]) },
    ])),
    ...(await section('large inputs (1 MiB to 64 MiB)', [
      { name: 'chunker, 64 MiB random in 1 MiB reads', bytes: big.length, fn: () => chunkAll(bigReads) },
      { name: 'chunker, 64 MiB of zeros (sparse)', bytes: 64 * MiB, fn: () => chunkAll(zeros) },
      { name: 'chunk id, 1 MiB', bytes: MiB, fn: () => ids.id(oneMiB) },
      { name: 'chunk id, 8 MiB', bytes: 8 * MiB, fn: () => ids.id(eight) },
      { name: 'seal, 1 MiB', bytes: MiB, fn: () => sealBlob(keys, ObjectType.data, id, oneMiB) },
      { name: 'seal, 8 MiB', bytes: 8 * MiB, fn: () => sealBlob(keys, ObjectType.data, id, eight) },
      { name: 'open, 1 MiB', bytes: MiB, fn: () => openBlob(keys, ObjectType.data, id, oneMiBSealed) },
      { name: 'open, 8 MiB', bytes: 8 * MiB, fn: () => openBlob(keys, ObjectType.data, id, eightSealed) },
      { name: 'chunk → id → seal, 64 MiB random', bytes: big.length, fn: () => chunkIdSeal(bigReads) },
    ])),
    // Every CLI run pays this once to open a vault; reported as time, not throughput.
    ...(await section(
      'key derivation',
      [
        {
          name: `Argon2id, ${DEFAULT_KDF_PARAMS.memoryKiB / 1024} MiB, t=${DEFAULT_KDF_PARAMS.iterations}`,
          bytes: 0,
          fn: () => deriveKey(Buffer.from('correct horse battery staple'), randomBytes(32), DEFAULT_KDF_PARAMS),
        },
      ],
      { time: 0, warmupTime: 0, iterations: 5 },
    )),
  ];

  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ node: process.version, arch: process.arch, rows }, null, 2));
    return;
  }
  console.log(`vaultpath hot path, one core, node ${process.version} (${process.arch}); MB/s = 10^6 bytes/s`);
  let current = '';
  for (const r of rows) {
    if (r.section !== current) {
      current = r.section;
      console.log(`\n${current}`);
      console.log(`${'benchmark'.padEnd(40)} ${'MB/s'.padStart(8)} ${'ms/op'.padStart(10)}`);
    }
    const rate = r.bytes > 0 ? r.mbPerSecond.toFixed(0) : '-';
    console.log(`${r.name.padEnd(40)} ${rate.padStart(8)} ${r.msPerOp.toFixed(3).padStart(10)}`);
  }
}

await main();
