/**
 * Throttle overhead: the same uploads into a local store on tmpfs (the least noisy real store here), through
 * withThrottle with an unlimited bucket and with no throttle at all. Target: under 3% slower.
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

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const local = await LocalStore.open(root, { durable: false });
  const throttled = withThrottle(local, { upload: new TokenBucket(systemClock, 'unlimited') });
  const bench = new Bench({ time: 3000, warmupTime: 500 });
  bench.add('no throttle', () => upload(local));
  bench.add('unlimited throttle', () => upload(throttled));
  await bench.run();
  rmSync(root, { recursive: true, force: true });
  const [plain, limited] = bench.tasks.map((t) => {
    if (t.result.state !== 'completed') throw new Error(t.name);
    return t.result.period;
  });
  const mbps = (ms: number): number => (256 * MiB) / 1e6 / (ms / 1000);
  console.log('throttle overhead: 256 MiB of uploads per run into a local store on tmpfs');
  console.log(`${'no throttle'.padEnd(24)} ${mbps(plain!).toFixed(0).padStart(7)} MB/s`);
  console.log(`${'unlimited throttle'.padEnd(24)} ${mbps(limited!).toFixed(0).padStart(7)} MB/s`);
  console.log(`${'overhead'.padEnd(24)} ${(((limited! - plain!) / plain!) * 100).toFixed(1).padStart(7)} %   (target < 3%)`);
}

await main();
