import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LOCK_ABANDONED_AFTER_MS, type Lock, decodeLock, encodeLock, isAbandoned } from '../../src/repo/lock.js';
import { isRunning } from '../../src/processes.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const lock = (over: Partial<Lock> = {}): Lock => ({ time: new Date(NOW - 60_000).toISOString(), hostname: 'here', pid: 4242, exclusive: false, ...over });
const bytes = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

describe('a lock document', () => {
  it("is written as the format's golden lock (test/vectors/format-v1.json), field for field", () => {
    const vectors = JSON.parse(readFileSync(new URL('../vectors/format-v1.json', import.meta.url), 'utf8')) as { envelopes: { type: number; plaintextUtf8: string }[] };
    const golden = vectors.envelopes.find((e) => e.type === 8)!.plaintextUtf8;
    expect(encodeLock({ time: '2026-01-01T00:00:00.000Z', hostname: 'host', pid: 4242, exclusive: false }).toString('utf8')).toBe(golden);
    expect(decodeLock(Buffer.from(golden), 'lock x')).toEqual({ time: '2026-01-01T00:00:00.000Z', hostname: 'host', pid: 4242, exclusive: false });
  });

  it('round-trips its four fields', () => {
    const l = lock({ exclusive: true });
    expect(decodeLock(encodeLock(l), 'lock x')).toEqual(l);
  });

  it.each([
    ['not JSON', Buffer.from('{')],
    ['an array', bytes([1])],
    ['no time', bytes({ hostname: 'h', pid: 1, exclusive: false })],
    ['a time that is no date', bytes({ time: 'soon', hostname: 'h', pid: 1, exclusive: false })],
    ['no hostname', bytes({ time: '2026-01-01T00:00:00Z', pid: 1, exclusive: false })],
    ['pid 0', bytes({ time: '2026-01-01T00:00:00Z', hostname: 'h', pid: 0, exclusive: false })],
    ['a fractional pid', bytes({ time: '2026-01-01T00:00:00Z', hostname: 'h', pid: 1.5, exclusive: false })],
    ['a pid as text', bytes({ time: '2026-01-01T00:00:00Z', hostname: 'h', pid: '7', exclusive: false })],
    ['no exclusive flag', bytes({ time: '2026-01-01T00:00:00Z', hostname: 'h', pid: 1 })],
  ])('with %s is refused as VP_MALFORMED_OBJECT naming it', (_, b) => {
    expect(() => decodeLock(b, 'lock abc')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT', message: expect.stringContaining('lock abc') }));
  });
});

describe('an abandoned lock', () => {
  const here = { now: NOW, hostname: 'here' };

  it('is one of this machine whose process is gone', () => {
    expect(isAbandoned(lock(), { ...here, isRunning: () => false })).toBe(true);
    expect(isAbandoned(lock(), { ...here, isRunning: () => true })).toBe(false);
  });

  it('is not one of another machine taken within the last 24 hours, whatever runs here', () => {
    expect(isAbandoned(lock({ hostname: 'elsewhere', time: new Date(NOW - LOCK_ABANDONED_AFTER_MS).toISOString() }), { ...here, isRunning: () => false })).toBe(false);
  });

  it('is any shared lock taken more than 24 hours ago', () => {
    const old = new Date(NOW - LOCK_ABANDONED_AFTER_MS - 1).toISOString();
    expect(isAbandoned(lock({ hostname: 'elsewhere', time: old }), here)).toBe(true);
    expect(isAbandoned(lock({ time: old }), { ...here, isRunning: () => true })).toBe(true);
  });

  it('is never an exclusive lock', () => {
    const old = new Date(NOW - 10 * LOCK_ABANDONED_AFTER_MS).toISOString();
    expect(isAbandoned(lock({ exclusive: true, time: old }), { ...here, isRunning: () => false })).toBe(false);
  });

  it('is told from a running one by a real process probe', () => {
    expect(isRunning(process.pid)).toBe(true);
    expect(isRunning(2 ** 30)).toBe(false); // above any pid_max
  });
});
