/**
 * The metrics endpoint's address. It has no authentication, and its numbers (message counts by direction and
 * outcome) describe the site's mail traffic, so it may only listen on a loopback address; a scraper elsewhere
 * reaches it through a local agent or a tunnel.
 */
import { isIP } from 'node:net';
import { isLoopbackAddress } from '../dns/index.ts';

/** A parsed loopback listen address. */
export interface LoopbackAddress {
  /** IP literal, without brackets. */
  readonly host: string;
  /** TCP port; 0 asks the system for a free one. */
  readonly port: number;
}

/** Stable codes of {@link MetricsAddressError}. */
export type MetricsAddressErrorCode = 'METRICS_BAD_ADDRESS' | 'METRICS_NOT_LOOPBACK';

/** A metrics listen address that is malformed or not on loopback. */
export class MetricsAddressError extends Error {
  override readonly name = 'MetricsAddressError';

  /**
   * @param code stable failure code
   * @param message human-readable explanation, naming the address
   */
  constructor(
    readonly code: MetricsAddressErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Parses `127.0.0.1:9464` or `[::1]:9464` and checks the host is a loopback address.
 * @throws MetricsAddressError `METRICS_BAD_ADDRESS` for anything but `IPv4:port` or `[IPv6]:port`,
 *   `METRICS_NOT_LOOPBACK` for an address off the loopback interface
 */
export function parseLoopbackAddress(text: string): LoopbackAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2] ?? '';
  const port = Number(match?.[3]);
  const bracketsFitFamily = match !== null && isIP(host) === (match[1] === undefined ? 4 : 6);
  if (!bracketsFitFamily || port > 65535) {
    throw new MetricsAddressError('METRICS_BAD_ADDRESS', `expected an address such as 127.0.0.1:9464 or [::1]:9464, got "${text}"`);
  }
  if (!isLoopbackAddress(host)) {
    throw new MetricsAddressError(
      'METRICS_NOT_LOOPBACK',
      `must be a loopback address (127.0.0.0/8 or [::1]), because the metrics endpoint has no authentication; got "${text}"`,
    );
  }
  return { host, port };
}
