/**
 * The DNS transport: asks the configured resolvers, one after another, over UDP with EDNS0 and the DO bit, falls
 * back to TCP on truncation, and returns the answer with an honest DNSSEC verdict. Every path is bounded: a per-try
 * UDP timeout, a separate TCP timeout, a fixed number of rounds over the servers, and one overall deadline.
 */
import { randomInt } from 'node:crypto';
import type { Packet } from 'dns2';
import { DnsError, type DnsAttempt, type DnsErrorCode } from './errors.ts';
import { buildQuery, judgeResponse, normaliseQueryName, type DnsRecord, type Question } from './message.ts';
import type { ServerAddress } from './server-address.ts';
import { exchangeTcp } from './tcp.ts';
import { exchangeUdp, ExchangeError } from './udp.ts';

/** Time bounds and retry policy of a {@link DnsTransport}. */
export interface TransportOptions {
  /** Resolvers, asked in this order. At least one. */
  readonly servers: readonly ServerAddress[];
  /** Wait for one UDP answer, per server and try. Default 1500 ms. */
  readonly udpTimeoutMs?: number;
  /** Wait for a whole TCP exchange after truncation. Default 3000 ms. */
  readonly tcpTimeoutMs?: number;
  /** Rounds over the server list; servers that answered SERVFAIL or refused are not asked again. Default 2. */
  readonly tries?: number;
  /** Bound on the whole query, whatever the other settings say. Default 8000 ms. */
  readonly deadlineMs?: number;
}

/** DNSSEC status of an answer, as far as this host can know it. */
export interface DnssecVerdict {
  /** True only when the AD flag was set by a resolver on loopback. */
  readonly authenticated: boolean;
  /** Why, in a sentence for operators. */
  readonly reason: string;
}

/** Information a caching layer adds to a response. */
export interface CacheInfo {
  /** `miss`: asked the network; `hit`: from the cache; `coalesced`: joined a lookup already under way. */
  readonly state: 'miss' | 'hit' | 'coalesced';
  /** Milliseconds the cached outcome is still valid. */
  readonly remainingMs: number;
}

/** The answer to one question. NXDOMAIN and NODATA are answers, not errors. */
export interface DnsResponse {
  /** The name asked, normalised. */
  readonly name: string;
  /** The numeric type asked. */
  readonly type: number;
  /** `answer` when records of the type were returned (or some could not be decoded). */
  readonly outcome: 'answer' | 'nxdomain' | 'nodata';
  /** Records of the asked type at the name or at its CNAME targets. */
  readonly records: readonly DnsRecord[];
  /** Records of the asked type the codec could not decode. */
  readonly malformed: readonly string[];
  /** Seconds the outcome may be cached (positive: least record TTL; negative: RFC 2308). */
  readonly ttl: number;
  /** The AD flag as received. */
  readonly authenticData: boolean;
  /** Whether that flag can be believed. */
  readonly dnssec: DnssecVerdict;
  /** Which server answered, `host:port`. */
  readonly server: string;
  /** Which transport carried the answer. */
  readonly transport: 'udp' | 'tcp';
  /** Present when the answer went through a cache. */
  readonly cache?: CacheInfo;
}

/** Anything that answers DNS questions: the transport itself, or a cache in front of it. */
export interface DnsQuerier {
  /**
   * Asks for records of `type` at `name`.
   * @throws DnsError on temporary failure (timeout, SERVFAIL, …) and for names that cannot be asked
   */
  query(name: string, type: number): Promise<DnsResponse>;
}

const DEFAULTS = { udpTimeoutMs: 1500, tcpTimeoutMs: 3000, tries: 2, deadlineMs: 8000 };

/** Asks real servers. Stateless apart from its configuration; safe to share. */
export class DnsTransport implements DnsQuerier {
  readonly #servers: readonly ServerAddress[];
  readonly #udpTimeoutMs: number;
  readonly #tcpTimeoutMs: number;
  readonly #tries: number;
  readonly #deadlineMs: number;

  /** @throws DnsError `DNS_BAD_SERVER` when no server is given */
  constructor(options: TransportOptions) {
    if (options.servers.length === 0) throw new DnsError('DNS_BAD_SERVER', 'no DNS resolver configured');
    this.#servers = [...options.servers];
    this.#udpTimeoutMs = positive(options.udpTimeoutMs, DEFAULTS.udpTimeoutMs);
    this.#tcpTimeoutMs = positive(options.tcpTimeoutMs, DEFAULTS.tcpTimeoutMs);
    this.#tries = Math.max(1, Math.floor(positive(options.tries, DEFAULTS.tries)));
    this.#deadlineMs = positive(options.deadlineMs, DEFAULTS.deadlineMs);
  }

  /** {@inheritDoc DnsQuerier.query} */
  async query(name: string, type: number): Promise<DnsResponse> {
    const question: Question = { name: normaliseQueryName(name), type };
    const deadline = AbortSignal.timeout(this.#deadlineMs);
    const attempts: DnsAttempt[] = [];
    // Servers that gave a definite failure (SERVFAIL, REFUSED, broken answer) are not asked again in later rounds;
    // only silence or a network error is worth a retry.
    const settled = new Set<ServerAddress>();
    for (let round = 0; round < this.#tries; round++) {
      for (const server of this.#servers) {
        if (settled.has(server)) continue;
        if (deadline.aborted) throw failure(attempts, true, this.#deadlineMs);
        const result = await this.#ask(server, question, deadline, attempts);
        if (result) return result;
        const last = attempts[attempts.length - 1];
        if (last && last.outcome !== 'timeout' && last.outcome !== 'network') settled.add(server);
      }
    }
    throw failure(attempts, deadline.aborted, this.#deadlineMs);
  }

  /** One try at one server: UDP, then TCP if truncated. Records a failed try in `attempts`. */
  async #ask(
    server: ServerAddress,
    question: Question,
    deadline: AbortSignal,
    attempts: DnsAttempt[],
  ): Promise<DnsResponse | undefined> {
    const id = randomInt(0x10000);
    const query = buildQuery(question, id);
    let transport: 'udp' | 'tcp' = 'udp';
    try {
      let message: Packet = await exchangeUdp(server, query, id, question, this.#udpTimeoutMs, deadline);
      let verdict = judgeResponse(message, question);
      if (verdict.kind === 'truncated') {
        transport = 'tcp';
        message = await exchangeTcp(server, query, id, question, this.#tcpTimeoutMs, deadline);
        verdict = judgeResponse(message, question);
      }
      if (verdict.kind === 'answer') {
        return {
          name: question.name,
          type: question.type,
          outcome: verdict.outcome,
          records: verdict.records,
          malformed: verdict.malformed,
          ttl: verdict.ttl,
          authenticData: verdict.authenticData,
          dnssec: judgeDnssec(verdict.authenticData, server),
          server: server.text,
          transport,
        };
      }
      // A TC bit over TCP means the server could not send the answer at all.
      const failed = verdict.kind === 'failure' ? verdict : { outcome: 'bad-response' as const, detail: 'truncated over TCP' };
      attempts.push({ server: server.text, transport, outcome: failed.outcome, detail: failed.detail });
    } catch (error) {
      if (!(error instanceof ExchangeError)) throw error;
      attempts.push({ server: server.text, transport, outcome: error.outcome, detail: error.message });
    }
    return undefined;
  }
}

/**
 * Whether the AD flag can be believed. A resolver elsewhere on the network is reached over a path anyone on it can
 * tamper with (the flag is not signed), so only a validating resolver on this host's loopback is trusted.
 */
export function judgeDnssec(authenticData: boolean, server: ServerAddress): DnssecVerdict {
  if (!authenticData) {
    return { authenticated: false, reason: `resolver ${server.text} did not set AD: the answer is not DNSSEC-validated` };
  }
  if (!server.loopback) {
    return {
      authenticated: false,
      reason: `AD set by ${server.text} but ignored: only a validating resolver on loopback is trusted`,
    };
  }
  return { authenticated: true, reason: `AD set by the loopback resolver ${server.text}` };
}

/** The error for a query that got no answer, summarising every try. */
function failure(attempts: readonly DnsAttempt[], deadlineReached: boolean, deadlineMs: number): DnsError {
  const summary = attempts.map((a) => `${a.server}/${a.transport}: ${a.outcome} (${a.detail})`).join('; ');
  const outcomes = new Set(attempts.map((a) => a.outcome));
  let code: DnsErrorCode;
  if (deadlineReached) code = 'DNS_DEADLINE';
  // A SERVFAIL is a statement (for a validating resolver it may mean a bogus chain); report it before silence.
  else if (outcomes.has('servfail')) code = 'DNS_SERVFAIL';
  else if (outcomes.has('timeout')) code = 'DNS_TIMEOUT';
  else if (outcomes.has('network')) code = 'DNS_NETWORK';
  else if (outcomes.has('bad-response')) code = 'DNS_BAD_RESPONSE';
  else code = 'DNS_REFUSED';
  const lead = deadlineReached ? `no DNS answer within the ${deadlineMs} ms deadline` : 'no usable DNS answer';
  return new DnsError(code, `${lead}: ${summary || 'no server tried'}`, attempts);
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}
