/**
 * The DNS resolver of muse-milter: queries by numeric type over UDP with EDNS0 and DO, TCP after truncation,
 * servers in order, bounded in time, cached by TTL. This file is the public API of `src/dns/`.
 */
import { getServers } from 'node:dns';
import { CachingResolver, type CacheOptions } from './cache.ts';
import { parseServerAddress } from './server-address.ts';
import { DnsTransport, type TransportOptions } from './transport.ts';

export { DnsError, type DnsAttempt, type DnsErrorCode } from './errors.ts';
export type { DnsRecord } from './message.ts';
export { parseServerAddress, isLoopbackAddress, DNS_PORT, type ServerAddress } from './server-address.ts';
export {
  DnsTransport,
  judgeDnssec,
  type CacheInfo,
  type DnssecVerdict,
  type DnsQuerier,
  type DnsResponse,
  type TransportOptions,
} from './transport.ts';
export { answerBytes, CachingResolver, DNS_CACHE_BYTES, type CacheOptions } from './cache.ts';

/** RR type numbers the site-key lookup asks for. */
export const RR_TYPE = { TXT: 16, KEY: 25, OPENPGPKEY: 61 } as const;

/** Options of {@link createResolver}: the transport's bounds and the cache's, plus where the servers come from. */
export interface ResolverOptions extends Omit<TransportOptions, 'servers'>, CacheOptions {
  /** Resolvers as `host:port` texts (IPv6 `[addr]:port`); default: the system's (`/etc/resolv.conf`). */
  readonly servers?: readonly string[];
}

/**
 * Builds the resolver the milter and the CLI use: a {@link DnsTransport} behind a {@link CachingResolver}.
 * @throws DnsError `DNS_BAD_SERVER` for an unparsable or empty server list
 */
export function createResolver(options: ResolverOptions = {}): CachingResolver {
  const texts = options.servers && options.servers.length > 0 ? options.servers : getServers();
  const servers = texts.map((text) => parseServerAddress(text));
  return new CachingResolver(new DnsTransport({ ...options, servers }), options);
}
