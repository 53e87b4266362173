/**
 * CIDR network lists for IPv4 and IPv6, as used by the direction rule (internal networks).
 * IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) match IPv4 networks, because that is how a dual-stack
 * socket reports an IPv4 client.
 */
import { isIP } from 'node:net';

/** One parsed network. */
export interface Network {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

function ipv4Bytes(address: string): Uint8Array {
  return Uint8Array.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Uint8Array {
  let text = address;
  // A trailing dotted quad (::ffff:192.0.2.1) becomes two hextets.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad !== null) {
    const b = ipv4Bytes(quad[1] as string);
    text = `${text.slice(0, quad.index)}${(((b[0] as number) << 8) | (b[1] as number)).toString(16)}:${(((b[2] as number) << 8) | (b[3] as number)).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headParts = head === '' || head === undefined ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - headParts.length - tailParts.length).fill('0');
  const hextets = [...headParts, ...fill, ...tailParts].map((h) => parseInt(h, 16));
  const out = new Uint8Array(16);
  hextets.forEach((h, i) => {
    out[i * 2] = h >> 8;
    out[i * 2 + 1] = h & 0xff;
  });
  return out;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), as 4 bytes; undefined for any other. */
function mappedIpv4(bytes: Uint8Array): Uint8Array | undefined {
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : undefined;
}

/** Parses `192.0.2.0/24`, `2001:db8::/32` or a single address. Throws on anything else. */
export function parseNetwork(text: string): Network {
  const [address = '', prefixText] = text.trim().split('/');
  const family = isIP(address);
  if (family !== 4 && family !== 6) throw new Error(`'${text}' is not an IP network`);
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) throw new Error(`'${text}' has an invalid prefix length`);
  return family === 4 ? { family: 4, bytes: ipv4Bytes(address), prefix } : { family: 6, bytes: ipv6Bytes(address), prefix };
}

function matches(network: Network, bytes: Uint8Array): boolean {
  const full = Math.floor(network.prefix / 8);
  for (let i = 0; i < full; i++) if (network.bytes[i] !== bytes[i]) return false;
  const rest = network.prefix % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((network.bytes[full] as number) & mask) === ((bytes[full] as number) & mask);
}

/** A list of networks with a membership test. */
export class NetworkList {
  private readonly networks: Network[];

  constructor(networks: readonly string[]) {
    this.networks = networks.map(parseNetwork);
  }

  /** True when `address` (IPv4, IPv6 or IPv4-mapped IPv6) lies in one of the networks. */
  contains(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    let bytes = family === 4 ? ipv4Bytes(address) : ipv6Bytes(address);
    let effective = family === 4 ? 4 : 6;
    const mapped = family === 6 ? mappedIpv4(bytes) : undefined;
    if (mapped !== undefined) {
      bytes = mapped;
      effective = 4;
    }
    return this.networks.some((n) => n.family === effective && matches(n, bytes));
  }
}

/**
 * The network an address stands for when one sender is told from another: an IPv4 address (an IPv4-mapped IPv6 one
 * too) alone, an IPv6 address by its /64, the smallest block a site is given, so that the addresses of one network
 * count as one. Undefined for anything that is not an IP address.
 */
export function senderNetwork(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6) return undefined;
  const bytes = ipv6Bytes(address);
  const mapped = mappedIpv4(bytes);
  if (mapped !== undefined) return Array.from(mapped).join('.');
  const hextets: string[] = [];
  for (let i = 0; i < 8; i += 2) hextets.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  return `${hextets.join(':')}::/64`;
}
