/**
 * The daemon's Prometheus metrics, in a registry of its own (never prom-client's global one, so tests and
 * several daemons in one process do not share counters).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Buckets for DNS lookups, seconds: a cache hit takes microseconds, a resolver timeout several seconds. */
const DNS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Buckets for crypto operations, seconds: a small message takes about a millisecond, 50 MiB about a second. */
const CRYPTO_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Every metric the daemon records, and the registry that exposes them. */
export interface MuseMetrics {
  readonly registry: Registry;
  /** `muse_messages_total{direction,action}`: messages handled, by direction and by what was done. */
  readonly messages: Counter<'direction' | 'action'>;
  /** `muse_dns_lookup_seconds`: time of each site-key lookup, cache hits included. */
  readonly dnsLookupSeconds: Histogram;
  /** `muse_dns_cache_requests_total{result="hit|miss"}`. */
  readonly dnsCacheRequests: Counter<'result'>;
  /** `muse_crypto_seconds{operation}`: time of each sign, encrypt, decrypt or verify. */
  readonly cryptoSeconds: Histogram<'operation'>;
  /** `muse_messages_in_flight`: messages between MAIL FROM and their verdict. */
  readonly messagesInFlight: Gauge;
  /** `muse_milter_connections`: open MTA connections. */
  readonly milterConnections: Gauge;
  /** `muse_config_reloads_total{result="success|failure"}`. */
  readonly configReloads: Counter<'result'>;
  /**
   * Makes `muse_decryptions_running` and `muse_decryptions_waiting` report `slots` (read when scraped). Under a
   * flood of costly messages these show the queue that `limits.maxConcurrentDecryptions` holds back.
   */
  watchDecryptions(slots: DecryptionSlotCounts): void;
}

/** What the decryption gauges read: the engine's `Slots` (src/engine/slots.ts), or anything counting the same way. */
export interface DecryptionSlotCounts {
  readonly active: number;
  readonly queued: number;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Also collect prom-client's process metrics (CPU, memory, event loop, file descriptors); default true. */
  readonly processMetrics?: boolean;
}

/** Creates the registry and every metric in it. */
export function createMetrics(options: MetricsOptions = {}): MuseMetrics {
  const registry = new Registry();
  const registers = [registry];
  let slots: DecryptionSlotCounts = { active: 0, queued: 0 };
  const metrics: MuseMetrics = {
    registry,
    messages: new Counter({ name: 'muse_messages_total', help: 'Messages handled, by direction and action taken.', labelNames: ['direction', 'action'], registers }),
    dnsLookupSeconds: new Histogram({ name: 'muse_dns_lookup_seconds', help: 'Duration of site-key DNS lookups, cache hits included.', buckets: DNS_BUCKETS, registers }),
    dnsCacheRequests: new Counter({ name: 'muse_dns_cache_requests_total', help: 'DNS cache requests, by result.', labelNames: ['result'], registers }),
    cryptoSeconds: new Histogram({ name: 'muse_crypto_seconds', help: 'Duration of OpenPGP operations, by operation.', labelNames: ['operation'], buckets: CRYPTO_BUCKETS, registers }),
    messagesInFlight: new Gauge({ name: 'muse_messages_in_flight', help: 'Messages being processed now.', registers }),
    milterConnections: new Gauge({ name: 'muse_milter_connections', help: 'Open milter connections from the MTA.', registers }),
    configReloads: new Counter({ name: 'muse_config_reloads_total', help: 'Configuration reloads, by result.', labelNames: ['result'], registers }),
    watchDecryptions(counts) {
      slots = counts;
    },
  };
  new Gauge({ name: 'muse_decryptions_running', help: 'Inbound decryptions running now (at most limits.maxConcurrentDecryptions per queue and lane).', registers, collect() { this.set(slots.active); } });
  new Gauge({ name: 'muse_decryptions_waiting', help: 'Inbound decryptions waiting for a free slot.', registers, collect() { this.set(slots.queued); } });
  // Series with a fixed label set start at zero, so rate() and alerts work before the first event.
  for (const result of ['hit', 'miss']) metrics.dnsCacheRequests.inc({ result }, 0);
  for (const result of ['success', 'failure']) metrics.configReloads.inc({ result }, 0);
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  return metrics;
}
