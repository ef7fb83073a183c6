/**
 * Throttle overhead: the same uploads into a local store on tmpfs (the least noisy real store here), through
 * withThrottle with an unlimited bucket and with no throttle at all, timed in pairs. Target: under 3% slower.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { Bench } from 'tinybench';
import { LocalStore, TokenBucket, systemClock, withThrottle, type Body, type Store } from '../src/index.js';

const MiB = 2 ** 20;
const root = '/dev/shm/vaultpath-bench-throttle';
const body = Buffer.alloc(16 * MiB, 1);
const pieces = (): Body => ({ size: body.length, async *stream() { for (let o = 0; o < body.length; o += MiB) yield body.subarray(o, o + MiB); } });

async function upload(store: Store): Promise<void> {
  for (let i = 0; i < 16; i++) await store.put(`data/0${i % 10}/pack`, pieces());
}

/** One run's wall time, in milliseconds. */
async function timed(store: Store): Promise<number> {
  const t = performance.now();
  await upload(store);
  return performance.now() - t;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const local = await LocalStore.open(root, { durable: false });
  const throttled = withThrottle(local, { upload: new TokenBucket(systemClock, 'unlimited') });
  // Warm-up with tinybench's timer discipline, then pairs: the machine's speed drifts (it is shared), so each
  // round times both, in alternating order, and the overhead is the median of the per-round ratios.
  const bench = new Bench({ time: 500, warmupTime: 500 });
  bench.add('no throttle', () => upload(local));
  bench.add('unlimited throttle', () => upload(throttled));
  await bench.run();
  const plain: number[] = [];
  const limited: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < 21; round++) {
    let c: number;
    let d: number;
    if (round % 2 === 0) {
      c = await timed(local);
      d = await timed(throttled);
    } else {
      d = await timed(throttled);
      c = await timed(local);
    }
    plain.push(c);
    limited.push(d);
    ratios.push(d / c);
  }
  rmSync(root, { recursive: true, force: true });
  const mbps = (ms: number): number => (256 * MiB) / 1e6 / (ms / 1000);
  const overhead = (median(ratios) - 1) * 100;
  console.log('throttle overhead: 256 MiB of uploads per run into a local store on tmpfs, 21 paired rounds');
  console.log(`${'no throttle'.padEnd(24)} ${mbps(median(plain)).toFixed(0).padStart(7)} MB/s (median)`);
  console.log(`${'unlimited throttle'.padEnd(24)} ${mbps(median(limited)).toFixed(0).padStart(7)} MB/s (median)`);
  const sorted = [...ratios].sort((x, y) => x - y);
  console.log(`${'overhead'.padEnd(24)} ${overhead.toFixed(1).padStart(7)} %   median of per-round ratios (middle half ${((sorted[5]! - 1) * 100).toFixed(1)} to ${((sorted[15]! - 1) * 100).toFixed(1)} %; target < 3%)`);
}

await main();
