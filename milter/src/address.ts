/**
 * Milter socket specifications as Sendmail and Postfix write them:
 * `unix:/path` (or `local:/path`), `inet:PORT@HOST`, `inet:HOST:PORT`, `inet6:PORT@HOST`, `inet6:[HOST]:PORT`.
 */
import { isIP } from 'node:net';
import { MilterUsageError } from './errors.ts';

/** A parsed socket specification. */
export type MilterAddress = { kind: 'unix'; path: string } | { kind: 'inet'; family: 4 | 6; host: string; port: number };

function parsePort(text: string, spec: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new MilterUsageError('invalid-option', `invalid port in socket specification '${spec}'`);
  return port;
}

/**
 * Parses a socket specification. A missing host means loopback, not every interface: a milter sees
 * every message in clear, so exposing it to the network must be an explicit choice (`inet:PORT@0.0.0.0`).
 */
export function parseMilterAddress(spec: string): MilterAddress {
  const colon = spec.indexOf(':');
  const scheme = colon < 0 ? '' : spec.slice(0, colon).toLowerCase();
  const rest = spec.slice(colon + 1);
  if (scheme === 'unix' || scheme === 'local') {
    if (!rest.startsWith('/')) throw new MilterUsageError('invalid-option', `unix socket path must be absolute in '${spec}'`);
    return { kind: 'unix', path: rest };
  }
  if (scheme !== 'inet' && scheme !== 'inet6') {
    throw new MilterUsageError('invalid-option', `socket specification '${spec}' must start with unix:, local:, inet: or inet6:`);
  }
  const family = scheme === 'inet' ? 4 : 6;
  let host: string;
  let port: number;
  const at = rest.indexOf('@');
  if (at >= 0) {
    port = parsePort(rest.slice(0, at), spec);
    host = rest.slice(at + 1);
  } else if (rest.startsWith('[')) {
    const close = rest.indexOf(']:');
    if (close < 0) throw new MilterUsageError('invalid-option', `expected [HOST]:PORT in '${spec}'`);
    host = rest.slice(1, close);
    port = parsePort(rest.slice(close + 2), spec);
  } else if (/^\d+$/.test(rest)) {
    port = parsePort(rest, spec);
    host = '';
  } else {
    const last = rest.lastIndexOf(':');
    if (last < 0) throw new MilterUsageError('invalid-option', `no port in socket specification '${spec}'`);
    host = rest.slice(0, last);
    port = parsePort(rest.slice(last + 1), spec);
  }
  if (host === '' || host === 'localhost') host = family === 4 ? '127.0.0.1' : '::1';
  if (isIP(host) !== family) throw new MilterUsageError('invalid-option', `'${host}' is not an IPv${family} address in '${spec}'`);
  return { kind: 'inet', family, host, port };
}

/** Formats an address back into the form Postfix's `smtpd_milters` accepts. */
export function formatMilterAddress(address: MilterAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.family === 4 ? `inet:${address.host}:${address.port}` : `inet:[${address.host}]:${address.port}`;
}
