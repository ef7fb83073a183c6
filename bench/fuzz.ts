/**
 * Fuzzes every parser of vault objects and local files with seeded mutations of valid inputs (see
 * test/support/fuzz-parsers.ts): `npm run fuzz -- [--seed N] [--inputs N]`.
 *
 * Prints, per parser, the inputs tried, how many were accepted, the refusals by error code, and the seconds taken.
 * Fails (exit 1, printing the seed, the parser and the input in base64) on any outcome but a value or a
 * VaultpathError with a known code, and on any single input that takes longer than the time bound. The same seed
 * gives the same inputs, so a failure is replayed with its seed.
 */
import { VaultKeys } from '../src/crypto/keys.js';
import { FIXED_MASTER_KEY } from '../test/support/seeded.js';
import { type FuzzTarget, Rng, fuzzTargets, mutate, runOne } from '../test/support/fuzz-parsers.js';

/** A single input taking longer than this fails the run: parsing is linear in the input, of at most a few MB. */
const TIME_BOUND_MS = 1000;

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function fail(seed: number, target: FuzzTarget, n: number, input: Buffer, what: string): never {
  console.error(`\nFAIL  ${target.name}: input ${n} of seed ${seed}: ${what}`);
  console.error(`input (${input.length} bytes, base64): ${input.length <= 65536 ? input.toString('base64') : `${input.subarray(0, 65536).toString('base64')}…`}`);
  console.error(`replay: npm run fuzz -- --seed ${seed}`);
  process.exit(1);
}

async function main(): Promise<void> {
  const seed = Number(argument('seed') ?? Math.floor(Math.random() * 2 ** 31));
  const inputs = Number(argument('inputs') ?? 10_000);
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(inputs) || inputs < 1) throw new Error('usage: npm run fuzz -- [--seed N] [--inputs N]');
  console.log(`fuzz: seed ${seed}, ${inputs} inputs per parser, ${TIME_BOUND_MS} ms bound per input`);
  const targets = await fuzzTargets(VaultKeys.fromMasterKey(FIXED_MASTER_KEY));
  let total = 0;
  const started = performance.now();
  for (const [t, target] of targets.entries()) {
    // Each parser has its own stream, so one parser's inputs do not depend on another's.
    const rng = new Rng((seed + Math.imul(t + 1, 0x9e3779b1)) >>> 0);
    const refused = new Map<string, number>();
    let accepted = 0;
    let slowest = 0;
    const t0 = performance.now();
    for (let n = 0; n < inputs; n++) {
      const input = mutate(rng, target);
      const a = performance.now();
      const outcome = runOne(target, input);
      const ms = performance.now() - a;
      slowest = Math.max(slowest, ms);
      if (outcome.kind === 'failed') {
        const e = outcome.error;
        fail(seed, target, n, input, e instanceof Error ? `${e.constructor.name}: ${e.message}\n${e.stack ?? ''}` : String(e));
      }
      if (ms > TIME_BOUND_MS) fail(seed, target, n, input, `took ${ms.toFixed(0)} ms, over the ${TIME_BOUND_MS} ms bound`);
      if (outcome.kind === 'accepted') accepted++;
      else refused.set(outcome.code, (refused.get(outcome.code) ?? 0) + 1);
    }
    total += inputs;
    const codes = [...refused.entries()].sort((x, y) => y[1] - x[1]).map(([c, k]) => `${c} ${k}`).join(', ');
    console.log(
      `${target.name.padEnd(22)} ${String(inputs).padStart(7)} inputs  ${String(accepted).padStart(6)} accepted  ` +
        `${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s  slowest ${slowest.toFixed(1)} ms  refused: ${codes}`,
    );
  }
  console.log(`fuzz: ${total} inputs, ${targets.length} parsers, no failure, ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${seed})`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
