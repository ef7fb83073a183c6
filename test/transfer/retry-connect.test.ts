/**
 * A remote vault whose connections are refused or reset is retried as the policy says, against real loopback
 * sockets: a port with nothing listening (then a server started after two attempts), and a server that resets or
 * closes the connection in the middle of an answer. Time is a fake clock: no real waiting between attempts.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VaultpathError } from '../../src/errors.js';
import { AzureStore } from '../../src/transfer/azure-store.js';
import { openStore } from '../../src/transfer/open.js';
import type { RetryEvent } from '../../src/transfer/retry.js';
import type { Store } from '../../src/transfer/store.js';
import { FakeClock } from '../support/fake-clock.js';
import { tempDir } from '../support/trees.js';

const credential = { accountName: 'devstoreaccount1', accountKey: Buffer.alloc(32, 1).toString('base64') };
const BLOB = Buffer.alloc(256 * 1024, 0x5a);
const LISTING = '<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs><Blob><Name>data/x</Name><Properties><Content-Length>262144</Content-Length></Properties></Blob></Blobs><NextMarker/></EnumerationResults>';

type Misbehaviour = 'reset-mid-answer' | 'close-mid-answer' | 'close-before-answer' | 'answer';

/** A loopback blob service: the container listing, and the blob `data/x`, answered or broken as `decide` says. */
async function blobServer(port: number, decide: (req: IncomingMessage, n: number) => Misbehaviour): Promise<{ server: Server; requests: number }> {
  const state = { server: undefined as unknown as Server, requests: 0 };
  state.server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const how = decide(req, state.requests++);
    const body = req.url!.includes('comp=list') ? Buffer.from(LISTING) : BLOB;
    if (how === 'close-before-answer') {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
    if (how === 'answer') {
      res.end(body);
      return;
    }
    // Part of the answer, then the connection goes: a TCP reset (RST), or an orderly close (FIN) too early.
    res.write(body.subarray(0, 1000), () => {
      if (how === 'reset-mid-answer') req.socket.resetAndDestroy();
      else req.socket.destroy();
    });
  });
  await new Promise<void>((resolve) => state.server.listen(port, '127.0.0.1', resolve));
  return state;
}

/** A loopback port with nothing listening on it. */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Advances the fake clock until `p` settles; `onTurn` runs before each step. */
async function drive<T>(clock: FakeClock, p: Promise<T>, onTurn: () => Promise<void> | void = () => undefined): Promise<T> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  while (!settled) {
    await onTurn();
    await clock.advance(250);
  }
  return p;
}

const retryFor = (clock: FakeClock, events: RetryEvent[]) => ({
  clock,
  random: () => 0.5,
  onRetry: (e: RetryEvent) => events.push(e),
  // Only the backoff is simulated: attempts are real socket work, so their own timeout is kept out of the way.
  policy: { attemptTimeoutMs: 1e12, deadlineMs: 1e12 },
});

function codes(events: RetryEvent[]): string[] {
  return events.map((e) => {
    for (let c: unknown = e.error; c; c = (c as { cause?: unknown }).cause) {
      const code = (c as { code?: unknown }).code;
      if (typeof code === 'string' && !code.startsWith('VP_')) return code;
    }
    return (e.error as { code?: string }).code ?? '?';
  });
}

describe('a refused or reset connection to a remote vault', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  const closeLater = (server: Server): void => {
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
  };

  it('is a retryable VaultpathError from the store itself (ECONNREFUSED)', async () => {
    const port = await freePort();
    const e = await AzureStore.open(`http://127.0.0.1:${port}/devstoreaccount1/vault`, { credential }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VaultpathError);
    expect(e).toMatchObject({ code: 'VP_STORE_IO', retryable: true, message: /ECONNREFUSED/ });
  });

  it('opens the vault once a server listens, after two refused attempts, with no real wait', async () => {
    const port = await freePort();
    const clock = new FakeClock();
    const events: RetryEvent[] = [];
    let server: Awaited<ReturnType<typeof blobServer>> | undefined;
    const opening = openStore(`http://127.0.0.1:${port}/devstoreaccount1/vault`, { azure: { credential }, retry: retryFor(clock, events) });
    const store = await drive(clock, opening, async () => {
      if (events.length === 2 && !server) {
        server = await blobServer(port, () => 'answer');
        closeLater(server.server);
      }
    });
    cleanups.push(() => (store as unknown as { close?: () => Promise<void> }).close?.() ?? Promise.resolve());
    expect(events.map((e) => e.operation)).toEqual(['open', 'open']);
    expect(codes(events)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(server!.requests).toBe(1); // the third attempt, the first to reach it
    const names: string[] = [];
    for await (const o of store.list('')) names.push(o.name);
    expect(names).toEqual(['data/x']);
  });

  it('gives up after the policy\'s attempts when nothing ever listens, with the cause in the message', async () => {
    const port = await freePort();
    const clock = new FakeClock();
    const events: RetryEvent[] = [];
    const opening = openStore(`http://127.0.0.1:${port}/devstoreaccount1/vault`, { azure: { credential }, retry: retryFor(clock, events) });
    const e = await drive(clock, opening).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VP_STORE_IO', message: /ECONNREFUSED/ });
    expect(events).toHaveLength(3); // 4 attempts in all (DEFAULT_RETRY_POLICY.maxAttempts)
  });

  for (const how of ['reset-mid-answer', 'close-mid-answer', 'close-before-answer'] as const) {
    it(`reads a blob whole after two answers broken by ${how}`, async () => {
      const port = await freePort();
      let broken = 0;
      const server = await blobServer(port, (req) => (req.url!.includes('comp=list') || broken >= 2 ? 'answer' : (broken++, how)));
      closeLater(server.server);
      const clock = new FakeClock();
      const events: RetryEvent[] = [];
      const store: Store = await drive(clock, openStore(`http://127.0.0.1:${port}/devstoreaccount1/vault`, { azure: { credential }, retry: retryFor(clock, events) }));
      cleanups.push(() => (store as unknown as { close?: () => Promise<void> }).close?.() ?? Promise.resolve());
      const got = await drive(clock, store.get('data/x'));
      expect(Buffer.compare(got, BLOB)).toBe(0);
      expect(events.map((e) => e.operation)).toEqual(['get', 'get']);
      for (const e of events) expect(e.error).toMatchObject({ code: 'VP_STORE_IO', retryable: true });
      // The same through download, to a file.
      broken = 0;
      const dir = await tempDir('vaultpath-retry-connect-');
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const size = await drive(clock, store.download!('data/x', join(dir, 'x')));
      expect(size).toBe(BLOB.length);
      expect(Buffer.compare(await readFile(join(dir, 'x')), BLOB)).toBe(0);
      expect(events.map((e) => e.operation)).toEqual(['get', 'get', 'download', 'download']);
    });
  }
});
