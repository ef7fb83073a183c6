/**
 * A fault-injecting HTTP server in front of a real upstream (Azurite): each request is passed through, or answered
 * with a fault chosen by the test's `decide` function:
 * - `{ status }`: answered with that status at once, the request body read and dropped, nothing forwarded;
 * - `'drop-after-commit'`: forwarded, and once the upstream has answered (the write is committed), the client's
 *   connection is destroyed without an answer: the success is lost;
 * - `'stall'`: held without an answer until the client gives up;
 * - `'reset'`: the connection is destroyed at once, before anything is forwarded;
 * - `'corrupt'`: forwarded with one byte of the body flipped (Content-MD5 then fails upstream).
 * It counts requests and faults, so a test can assert how many attempts were made.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault = { status: number } | 'drop-after-commit' | 'stall' | 'reset' | 'corrupt' | 'pass';

export interface FaultServer {
  readonly endpoint: string;
  readonly requests: { method: string; url: string; fault: Fault }[];
  /** Faults injected, by kind. */
  readonly injected: Record<string, number>;
  /** Request body bytes received. */
  readonly bytesIn: () => number;
  /** When request body bytes arrived: [ms since the server started (performance.now), bytes so far]. */
  readonly arrivals: [number, number][];
  close(): Promise<void>;
}

export async function startFaultServer(upstream: string, decide: (req: IncomingMessage, n: number) => Fault): Promise<FaultServer> {
  const up = new URL(upstream);
  const requests: FaultServer['requests'] = [];
  const injected: Record<string, number> = {};
  const sockets = new Set<Socket>();
  let bytesIn = 0;
  const arrivals: [number, number][] = [];
  const t0 = performance.now();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const fault = decide(req, requests.length);
    requests.push({ method: req.method ?? '', url: req.url ?? '', fault });
    if (fault !== 'pass') {
      const kind = typeof fault === 'object' ? String(fault.status) : fault;
      injected[kind] = (injected[kind] ?? 0) + 1;
    }
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    req.on('data', (c: Buffer) => {
      bytesIn += c.length;
      arrivals.push([performance.now() - t0, bytesIn]);
    });
    if (fault === 'stall') {
      req.resume();
      return; // never answered; the client's timeout ends it, or close() does
    }
    if (typeof fault === 'object') {
      req.resume();
      req.on('end', () => {
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'x-ms-error-code': 'ServerBusy', 'retry-after': '0' });
        res.end('<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>Injected fault.</Message></Error>');
      });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (fault === 'corrupt' && body.length > 0) body[body.length >> 1]! ^= 0xff;
      const forward = httpRequest(
        { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            if (fault === 'drop-after-commit') {
              req.socket.destroy();
              return;
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      forward.on('error', () => req.socket.destroy());
      forward.end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    injected,
    bytesIn: () => bytesIn,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
