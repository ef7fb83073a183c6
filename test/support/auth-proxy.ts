/** A real forward proxy (the `proxy` package) on 127.0.0.1 that demands Basic authentication and records requests. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxy } from 'proxy';

export interface AuthProxy {
  readonly url: string;
  /** Every request the proxy saw: method, target and whether its credentials were accepted. */
  readonly seen: { method: string; url: string; accepted: boolean }[];
  close(): Promise<void>;
}

export async function startAuthProxy(username: string, password: string): Promise<AuthProxy> {
  const expected = `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  const seen: AuthProxy['seen'] = [];
  const server = createProxy(createServer());
  server.authenticate = (req) => {
    const accepted = req.headers['proxy-authorization'] === expected;
    seen.push({ method: req.method ?? '', url: req.url ?? '', accepted });
    return accepted;
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
