/**
 * The HTTP endpoint Prometheus scrapes: `GET /metrics` in the text exposition format, 404 for any other path.
 * It listens on loopback only (see listen-address.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { parseLoopbackAddress } from './listen-address.ts';

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The address listened on, `127.0.0.1:9464` or `[::1]:9464`, with the real port when 0 was asked. */
  readonly address: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Bound on reading a scrape request: a scraper sends a few hundred bytes at once. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Serves `registry` on `listen` (`127.0.0.1:9464`, `[::1]:9464`; port 0 for any free port).
 * @throws MetricsAddressError for a malformed or non-loopback address, before anything is bound
 */
export async function startMetricsServer(registry: Registry, listen: string): Promise<MetricsServer> {
  const { host, port } = parseLoopbackAddress(listen);
  const server = createServer((request, response) => void answer(registry, request, response));
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(registry: Registry, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (path !== '/metrics') return send(response, 404, 'text/plain; charset=utf-8', 'Not Found\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return send(response, 405, 'text/plain; charset=utf-8', 'Method Not Allowed\n');
  }
  try {
    send(response, 200, registry.contentType, await registry.metrics());
  } catch {
    send(response, 500, 'text/plain; charset=utf-8', 'metrics collection failed\n');
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
