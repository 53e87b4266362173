/**
 * The runtime: everything a message needs, built once from a configuration and swapped as a whole on
 * reload (SIGHUP). A message takes one snapshot at MAIL and keeps it to the end, so a reload never
 * changes the rules half-way through a message.
 */
import type { PrivateKey } from 'openpgp';
import type { Config } from '../config/index.ts';
import type { Limits } from '../engine/index.ts';
import type { OpeningLanes } from '../lanes/opening-lanes.ts';
import type { ByteRate } from '../stream/byte-rate.ts';
import type { MuseLogger } from '../log/index.ts';
import { normaliseDomain } from '../mail/address.ts';
import type { MuseMetrics } from '../metrics/index.ts';
import { submitMessage, type Submission, type SubmissionResult } from '../smtp/client.ts';
import { DirectionClassifier } from './direction.ts';
import type { KeyService } from './key-service.ts';
import type { ReinjectionLedger } from './reinjection-ledger.ts';
import type { AdminPolicy, RecipientPolicySettings } from './recipient-policy.ts';

/** What every message handler reads. */
export interface Runtime {
  readonly config: Config;
  /** The site key that signs outgoing mail. */
  readonly signingKey: PrivateKey;
  readonly signingFingerprint: string;
  /** Every key incoming mail may be encrypted to: the site key and the previous ones during a rotation. */
  readonly decryptionKeys: readonly PrivateKey[];
  readonly keys: KeyService;
  readonly direction: DirectionClassifier;
  readonly policy: RecipientPolicySettings;
  /** HMAC secret of the re-injection marker. */
  readonly markerSecret: Buffer;
  /** The copies already queued, so a retried message does not re-inject its copy again. */
  readonly ledger: ReinjectionLedger;
  /** The daemon's logger, for lines above `info` that the milter library's per-connection logger cannot write. */
  readonly log: MuseLogger;
  readonly metrics: MuseMetrics | undefined;
  readonly now: () => Date;
  /** Hands a copy to the MTA (the re-injection endpoint). */
  readonly submit: (submission: Submission) => Promise<SubmissionResult>;
  /** The threads inbound messages are opened on, and each sender's account (src/lanes); kept across reloads. */
  readonly openingLanes: OpeningLanes;
  /** The pace of large bodies, read and written (`milter.largeBodyRate`); one for the process, kept across reloads. */
  readonly bodyRate: ByteRate;
}

/** The engine's limits as the configuration sets them. */
export function engineLimits(config: Config): Partial<Limits> {
  const limits = config.limits;
  return {
    maxMessageBytes: limits.maxMessageSize,
    maxHeaderBytes: limits.maxHeaderBytes,
    maxHeaderFields: limits.maxHeaderFields,
    maxDecompressionRatio: limits.maxDecompressionRatio,
    maxSessionKeyPackets: limits.maxSessionKeyPackets,
    maxSessionKeyAttempts: limits.maxSessionKeyAttempts,
  };
}

/** A domain as every comparison sees it (src/mail/address.ts); one that cannot be normalised is kept lower-cased. */
function comparable(domain: string): string {
  return normaliseDomain(domain) ?? domain.trim().toLowerCase();
}

/**
 * The administrator's policy for a domain: an exact entry wins, then the longest `.suffix` entry that
 * matches a subdomain, then the default.
 */
export function policyLookup(domains: Readonly<Record<string, AdminPolicy>>, fallback: AdminPolicy): (domain: string) => AdminPolicy {
  const exact = new Map<string, AdminPolicy>();
  const suffixes: Array<[string, AdminPolicy]> = [];
  for (const [key, mode] of Object.entries(domains)) {
    // The schema normalised every entry already: `.example.org` or `example.org` in A-labels.
    if (key.startsWith('.')) suffixes.push([key, mode]);
    else exact.set(key, mode);
  }
  suffixes.sort((a, b) => b[0].length - a[0].length);
  return (domain) => {
    const name = comparable(domain);
    return exact.get(name) ?? suffixes.find(([suffix]) => name.endsWith(suffix))?.[1] ?? fallback;
  };
}

/** Builds the recipient-policy settings from the configuration. */
export function policySettings(config: Config): RecipientPolicySettings {
  const local = new Set(config.site.localDomains);
  return {
    policyFor: policyLookup(config.policy.domains as Record<string, AdminPolicy>, config.policy.default as AdminPolicy),
    isLocal: (domain) => local.has(comparable(domain)),
    requireDnssec: config.dns.requireDnssec,
    signCleartext: config.policy.signCleartext,
    actions: { dnsError: config.actions.dnsError, noKeyRequired: config.actions.noKeyRequired as 'tempfail' | 'reject' },
  };
}

/** The parts of a runtime that do not need I/O to build. */
export function directionFor(config: Config): DirectionClassifier {
  return new DirectionClassifier(config.direction);
}

/** The real submission function (SMTP to the configured re-injection endpoint). */
export const smtpSubmit: Runtime['submit'] = submitMessage;
