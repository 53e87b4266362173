/**
 * CIDR network lists for IPv4 and IPv6, as used by the direction rule (internal networks), and the network a
 * sender's address stands for. Addresses are parsed by ipaddr.js; only the forms node's `isIP` accepts get that far,
 * so the legacy IPv4 spellings a lenient parser takes (`127.1`, `0x7f.0.0.1`, octal parts) are refused, as an
 * MTA never reports them. IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) count as IPv4, because that is how a
 * dual-stack socket reports an IPv4 client.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** One parsed network: its first address and prefix length. */
export type Network = readonly [ipaddr.IPv4 | ipaddr.IPv6, number];

/** The address in `text` (IPv4, IPv6, or IPv4-mapped IPv6 as IPv4); undefined when it is not one. */
function addressOf(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  return isIP(text) === 0 ? undefined : ipaddr.process(text);
}

/** Parses `192.0.2.0/24`, `2001:db8::/32` or a single address. Throws on anything else. */
export function parseNetwork(text: string): Network {
  const [address = '', prefixText, ...more] = text.trim().split('/');
  const family = isIP(address);
  if ((family !== 4 && family !== 6) || more.length > 0) throw new Error(`'${text}' is not an IP network`);
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  // Digits only, as written (no sign, blank, exponent or leading zero), and within the family's length.
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && String(prefix) !== prefixText)) {
    throw new Error(`'${text}' has an invalid prefix length`);
  }
  return [ipaddr.parse(address), prefix];
}

/** A list of networks with a membership test. */
export class NetworkList {
  private readonly networks: Network[];

  constructor(networks: readonly string[]) {
    this.networks = networks.map(parseNetwork);
  }

  /** True when `address` (IPv4, IPv6 or IPv4-mapped IPv6) lies in one of the networks. */
  contains(address: string): boolean {
    const parsed = addressOf(address);
    if (parsed === undefined) return false;
    return this.networks.some(([first, prefix]) => first.kind() === parsed.kind() && parsed.match(first, prefix));
  }
}

/**
 * The network an address stands for when one sender is told from another: an IPv4 address (an IPv4-mapped IPv6 one
 * too) alone, an IPv6 address by its /64, the smallest block a site is given, so that the addresses of one network
 * count as one. Undefined for anything that is not an IP address.
 */
export function senderNetwork(address: string): string | undefined {
  const parsed = addressOf(address);
  if (parsed === undefined) return undefined;
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const hextets = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${hextets.join(':')}::/64`;
}
