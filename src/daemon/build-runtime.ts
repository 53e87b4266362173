/**
 * Builds a {@link Runtime} from a configuration: loads the site keys (refusing loose permissions), the
 * marker secret, the re-injection ledger, the resolver, the pin store (in a worker process, its copy of the primary's). Used at
 * start-up and on every reload; a reload that fails here leaves the old runtime in force.
 */
import { mkdir } from 'node:fs/promises';
import type { Config } from '../config/index.ts';
import { createResolver, type ResolverOptions } from '../dns/index.ts';
import { DEFAULT_STREAM_ABOVE_BYTES } from '../engine/index.ts';
import { createSiteKeyFinder } from '../keys/index.ts';
import type { MuseMetrics } from '../metrics/index.ts';
import { openPinDirectory, type PinKeeper } from '../pins/index.ts';
import type { MuseLogger } from '../log/index.ts';
import { isWorker, pinRelayToPrimary } from './cluster.ts';
import { OpeningLanes } from '../lanes/opening-lanes.ts';
import { ByteRate } from '../stream/byte-rate.ts';
import { loadSiteKeys, readOrCreateSecret } from './key-files.ts';
import { KeyService } from './key-service.ts';
import { warnWhenPinStoreFull } from './pin-store-full.ts';
import { ReinjectionLedger } from './reinjection-ledger.ts';
import { directionFor, policySettings, smtpSubmit, type Runtime } from './runtime.ts';

/** Everything outside the configuration that a runtime needs. */
export interface RuntimeDependencies {
  metrics: MuseMetrics | undefined;
  log: MuseLogger;
  now?: () => Date;
  submit?: Runtime['submit'];
}

/**
 * Loads and checks everything the configuration names. Throws with a clear message on any problem.
 * On a reload, pass the runtime in force as `previous`: when the DNS and pin settings did not change, its
 * key service (the DNS cache and the one pin store writer) is kept, so a reload neither empties the cache
 * nor lets two stores race on the same pin file.
 */
export async function buildRuntime(config: Config, deps: RuntimeDependencies, previous?: Runtime): Promise<Runtime> {
  const keys = await loadSiteKeys(config.site);
  for (const key of [keys.current, ...keys.previous]) for (const warning of key.warnings) deps.log.warn(warning, { path: key.path });
  const markerSecret = await readOrCreateSecret(config.mixedRecipients.reinject.markerSecretFile as string);
  const ledger = await ReinjectionLedger.open(config.mixedRecipients.reinject.ledgerDirectory as string);
  await mkdir(config.milter.spoolDirectory as string, { recursive: true, mode: 0o700 });
  const now = deps.now ?? (() => new Date());
  const metrics = deps.metrics;
  const sameKeySettings =
    previous !== undefined && JSON.stringify(previous.config.dns) === JSON.stringify(config.dns) && JSON.stringify(previous.config.pins) === JSON.stringify(config.pins);
  const keyService = sameKeySettings ? previous.keys : await createKeyService(config, deps, now);
  // One pair of lanes per process for good: a reload that made new ones would let the decryptions still running
  // in the old threads and those in the new ones add up, and would forget every sender's account.
  const openingLanes = previous?.openingLanes ?? new OpeningLanes(config.limits.backgroundAboveCpuShare, DEFAULT_STREAM_ABOVE_BYTES);
  openingLanes.costs.share = config.limits.backgroundAboveCpuShare;
  const bodyRate = previous?.bodyRate ?? new ByteRate(config.milter.largeBodyRate, config.milter.maxBufferedBody);
  bodyRate.bytesPerSecond = config.milter.largeBodyRate;
  bodyRate.aboveBytes = config.milter.maxBufferedBody;
  return {
    config,
    signingKey: keys.current.privateKey,
    signingFingerprint: keys.current.fingerprint,
    decryptionKeys: [keys.current.privateKey, ...keys.previous.map((k) => k.privateKey)],
    keys: keyService,
    direction: directionFor(config),
    policy: policySettings(config),
    markerSecret,
    ledger,
    log: deps.log,
    metrics,
    now,
    submit: deps.submit ?? smtpSubmit,
    openingLanes,
    bodyRate,
  };
}

/** The resolver settings of a configuration: the daemon's, and the tools' when they are given its configuration. */
export function resolverOptions(config: Config): ResolverOptions {
  return {
    servers: config.dns.servers,
    udpTimeoutMs: config.dns.timeout,
    tries: config.dns.attempts,
    deadlineMs: config.dns.overallTimeout,
    maxEntries: config.dns.cacheSize,
    minTtlSeconds: Math.floor(config.dns.minTtl / 1000),
    maxTtlSeconds: Math.floor(config.dns.maxTtl / 1000),
    maxNegativeTtlSeconds: Math.floor(config.dns.negativeTtl / 1000),
  };
}

/** The DNS resolver with its cache, the pins and the key service over them. */
async function createKeyService(config: Config, deps: RuntimeDependencies, now: () => Date): Promise<KeyService> {
  const metrics = deps.metrics;
  const resolver = createResolver(resolverOptions(config));
  let pins: PinKeeper | undefined;
  if (config.pins.enabled) {
    const directory = config.pins.directory as string;
    // Several worker processes: the primary is the one writer of the store, each worker keeps a copy.
    pins = isWorker() ? await pinRelayToPrimary(deps.log).open(directory) : await openPinDirectory(directory, { onFull: warnWhenPinStoreFull(deps.log, directory) });
  }
  return new KeyService(createSiteKeyFinder(resolver), pins, now, {
    lookupDone(_domain, seconds, cached) {
      metrics?.dnsLookupSeconds.observe(seconds);
      metrics?.dnsCacheRequests.inc({ result: cached ? 'hit' : 'miss' });
    },
    pinStoreFailed(domain, error) {
      deps.log.error('pin store write failed', { domain, error: error.message });
    },
  });
}
