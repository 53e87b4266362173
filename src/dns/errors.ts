/**
 * Typed DNS failures. Every failure the resolver can report carries a stable `code`, so callers can map it to a
 * milter verdict without parsing messages.
 */

/** Stable codes of {@link DnsError}. */
export type DnsErrorCode =
  /** No server answered within its per-try timeout (UDP or TCP), on every try. */
  | 'DNS_TIMEOUT'
  /** The overall deadline of the query ran out before any usable answer. */
  | 'DNS_DEADLINE'
  /** Every server that answered said SERVFAIL (for a validating resolver: also a bogus DNSSEC chain). */
  | 'DNS_SERVFAIL'
  /** Servers answered with REFUSED, NOTIMP, FORMERR or another rcode that gives no answer. */
  | 'DNS_REFUSED'
  /** A server could not be reached (connection refused, network unreachable, socket error). */
  | 'DNS_NETWORK'
  /** A server sent something that is not a valid answer to our question over TCP. */
  | 'DNS_BAD_RESPONSE'
  /** The name cannot be asked at all (label too long, empty label, name over 255 octets). */
  | 'DNS_BAD_NAME'
  /** A resolver address could not be parsed. */
  | 'DNS_BAD_SERVER';

/** One try of one server, kept for diagnostics. */
export interface DnsAttempt {
  /** The server, as `host:port` (IPv6 in brackets). */
  readonly server: string;
  /** Which transport the try used. */
  readonly transport: 'udp' | 'tcp';
  /** What went wrong. */
  readonly outcome: 'timeout' | 'servfail' | 'refused' | 'network' | 'bad-response';
  /** Human-readable detail (rcode name, socket error code). */
  readonly detail: string;
}

/** A DNS failure. `temporary` says whether asking again later may succeed (the milter answers 4xx for those). */
export class DnsError extends Error {
  override readonly name = 'DnsError';

  /**
   * @param code stable failure code
   * @param message human-readable explanation
   * @param attempts every try made before giving up, in order
   */
  constructor(
    readonly code: DnsErrorCode,
    message: string,
    readonly attempts: readonly DnsAttempt[] = [],
  ) {
    super(message);
  }

  /** Whether the failure may go away by itself; only bad names and bad configuration are permanent. */
  get temporary(): boolean {
    return this.code !== 'DNS_BAD_NAME' && this.code !== 'DNS_BAD_SERVER';
  }
}
