/**
 * Resolver addresses: parsing `host:port` (IPv6 as `[addr]:port`) and deciding whether an address is on loopback,
 * which is what makes a resolver's AD flag trustworthy (the path to it cannot be tampered with off the host).
 */
import { isIP } from 'node:net';
import { DnsError } from './errors.ts';

/** The standard DNS port. */
export const DNS_PORT = 53;

/** A resolver to ask. */
export interface ServerAddress {
  /** IP address literal, without brackets. */
  readonly host: string;
  /** UDP and TCP port. */
  readonly port: number;
  /** Address family, which decides the UDP socket type. */
  readonly family: 4 | 6;
  /** Whether the address is on the loopback interface (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
  readonly loopback: boolean;
  /** Canonical text form, `127.0.0.1:53` or `[::1]:53`, used in messages. */
  readonly text: string;
}

/**
 * Parses a resolver address. Accepted forms: `1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]`, `[::1]:5353`.
 * Only IP literals are accepted: resolving the resolver's own name through DNS would be circular.
 * @throws DnsError `DNS_BAD_SERVER` for anything else
 */
export function parseServerAddress(text: string, defaultPort = DNS_PORT): ServerAddress {
  const input = text.trim();
  let host = input;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(input);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
  } else if (isIP(input) === 0) {
    // Only an IPv4 literal may carry a bare ":port"; a bare IPv6 literal is recognised by isIP above.
    const colon = input.lastIndexOf(':');
    if (colon > 0) {
      host = input.slice(0, colon);
      portText = input.slice(colon + 1);
    }
  }
  const family = isIP(host);
  if (family === 0 || (family === 6 && !bracketed && portText !== undefined)) {
    throw new DnsError('DNS_BAD_SERVER', `not a resolver address (IP literal, optional :port): "${text}"`);
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!/^\d{1,5}$/.test(portText ?? String(port)) || port < 1 || port > 65535) {
    throw new DnsError('DNS_BAD_SERVER', `bad port in resolver address "${text}"`);
  }
  const fam = family === 6 ? 6 : 4;
  return {
    host,
    port,
    family: fam,
    loopback: isLoopbackAddress(host),
    text: fam === 6 ? `[${host}]:${port}` : `${host}:${port}`,
  };
}

/** Whether an IP literal is a loopback address: 127.0.0.0/8, ::1, or an IPv4-mapped 127.0.0.0/8. */
export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return address.split('.')[0] === '127';
  if (family !== 6) return false;
  const lower = address.toLowerCase();
  const mapped = /^(?:0*:)+:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return isLoopbackAddress(mapped[1] ?? '');
  return expandIpv6(lower) === '0000:0000:0000:0000:0000:0000:0000:0001';
}

/** Expands an IPv6 literal without embedded IPv4 to eight 4-digit groups, for exact comparison. */
function expandIpv6(address: string): string {
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].map((g) => g.padStart(4, '0')).join(':');
}
