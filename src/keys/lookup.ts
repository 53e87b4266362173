/**
 * Finding a site's keys in DNS (docs/dns-records.md §6): TXT, KEY and OPENPGPKEY at `_muse.<domain>` are asked in
 * parallel, every record is parsed and every key checked, and the results are merged into one verdict: which keys a
 * message may be encrypted to, the site's policy and pinning lifetime, and whether DNSSEC vouches for it.
 */
import { DnsError, RR_TYPE, type CacheInfo, type DnsQuerier, type DnsResponse, type DnssecVerdict } from '../dns/index.ts';
import { domainOfAddressOrDomain, normaliseDomain, siteKeyOwner } from './domain.ts';
import { KeyError } from './errors.ts';
import { parseKeyRdata } from './key-rr.ts';
import { fingerprintOf, readPublicKeyBytes } from './openpgp-key.ts';
import { memoiseLookups } from './lookup-memo.ts';
import { ParsedKeyCache } from './parsed-key-cache.ts';
import { parseSiteTxt, strongerPolicy, type SitePolicy } from './txt-record.ts';
import { validateSiteKey, type KeyRejectReason, type ValidatedKey } from './validate.ts';

/** The three record types, in the order they are reported. */
export type RecordSource = 'TXT' | 'KEY' | 'OPENPGPKEY';

const SOURCES: readonly RecordSource[] = ['TXT', 'KEY', 'OPENPGPKEY'];

/** Records of one type a sender processes; more is a misconfiguration or an attack on its time. */
export const MAX_RECORDS_PER_TYPE = 8;

/** Why a record or key was not used, beyond the key checks of {@link KeyRejectReason}. */
export type RejectReason =
  | KeyRejectReason
  /** The record breaks its format. */
  | 'malformed-record'
  /** A record of another MUSE version, or a KEY record in a form we do not read. */
  | 'unsupported-record'
  /** The record's key bytes are not exactly one OpenPGP public key. */
  | 'malformed-key'
  /** A KEY record whose flags forbid encryption. */
  | 'not-for-encryption'
  /** A usable key from KEY or OPENPGPKEY that the site's TXT records do not list (TXT is authoritative). */
  | 'not-in-txt'
  /** Beyond {@link MAX_RECORDS_PER_TYPE}. */
  | 'too-many-records';

/** A record or key that was not used. */
export interface RejectedKey {
  readonly source: RecordSource;
  /** Present when the key could be parsed. */
  readonly fingerprint?: string;
  readonly reason: RejectReason;
  readonly detail: string;
}

/** A usable key and the record types that published it. */
export interface SiteKey extends ValidatedKey {
  readonly sources: readonly RecordSource[];
}

/** What one record type's query returned. */
export interface SourceReport {
  readonly type: RecordSource;
  /** `records` when the answer held records of the type (ours or not). */
  readonly outcome: 'records' | 'nxdomain' | 'nodata' | 'temporary-failure';
  /** Records of the type received. */
  readonly records: number;
  /** Records that are not MUSE records (another TXT use, a zone KEY) and were skipped silently. */
  readonly foreign: number;
  /** Null when the query failed. */
  readonly dnssec: DnssecVerdict | null;
  readonly cache: CacheInfo | null;
  readonly server: string | null;
  /** How the answer came (TCP after a truncated UDP answer); null when the query failed. */
  readonly transport: 'udp' | 'tcp' | null;
  /** Present when the query failed. */
  readonly error?: { readonly code: string; readonly message: string };
}

/** Everything a sender learns from DNS about a site. */
export interface SiteKeyLookup {
  /** Normalised domain. */
  readonly domain: string;
  /** `_muse.<domain>`. */
  readonly owner: string;
  /**
   * `found`: at least one usable key. `none`: DNS answered and there is no usable key (no records, or only
   * unusable ones: see `rejected`). `temporary-failure`: DNS did not answer well enough to know.
   */
  readonly status: 'found' | 'none' | 'temporary-failure';
  /** Usable keys, newest first. */
  readonly keys: readonly SiteKey[];
  readonly rejected: readonly RejectedKey[];
  /** The site's policy from its TXT records; null when it has none (then KEY/OPENPGPKEY keys are used as opportunistic). */
  readonly policy: SitePolicy | null;
  /** Pinning lifetime from the TXT records, seconds; 0 without TXT records. */
  readonly maxAge: number;
  /** True only when every answer the verdict rests on carries an AD flag we trust. */
  readonly dnssec: boolean;
  /** Why `dnssec` is what it is. */
  readonly dnssecReason: string;
  readonly sources: readonly SourceReport[];
  /** Present for `temporary-failure`. */
  readonly error?: { readonly code: string; readonly message: string };
}

/** What {@link lookupSiteKeys} needs. */
export interface LookupDependencies {
  /** Where to ask (normally a caching resolver). */
  readonly resolver: DnsQuerier;
  /** The time keys are judged at; default now. */
  readonly now?: Date;
  /** Keys parsed before, by record bytes; without it every key is parsed (and its signatures verified) anew. */
  readonly keyCache?: ParsedKeyCache;
}

/** A key found in a record, before parsing. */
interface Candidate {
  readonly source: RecordSource;
  readonly bytes: Uint8Array;
}

/** What one query produced once its records are parsed. */
interface SourceResult {
  readonly report: SourceReport;
  readonly candidates: readonly Candidate[];
  readonly rejected: readonly RejectedKey[];
  /** TXT only: the policy and lifetime of each valid MUSE record. */
  readonly txtRecords: readonly { policy: SitePolicy; maxAge: number }[];
}

/**
 * Looks up a site's keys. Never throws for DNS trouble: that is `status: 'temporary-failure'`.
 * @param domain a domain (IDN allowed); use {@link domainOfAddressOrDomain} for addresses
 * @throws KeyError `KEY_BAD_DOMAIN` for a name that cannot be a mail domain
 */
export async function lookupSiteKeys(domain: string, deps: LookupDependencies): Promise<SiteKeyLookup> {
  const normalised = normaliseDomain(domain);
  const owner = siteKeyOwner(normalised);
  const now = deps.now ?? new Date();
  const [txt, key, pgp] = await Promise.all([
    querySource(deps.resolver, owner, 'TXT'),
    querySource(deps.resolver, owner, 'KEY'),
    querySource(deps.resolver, owner, 'OPENPGPKEY'),
  ]);
  const base = { domain: normalised, owner, sources: [txt.report, key.report, pgp.report] };

  // With a valid MUSE TXT record, TXT alone decides (§6.2); otherwise the verdict rests on all three answers.
  const txtAuthoritative = txt.txtRecords.length > 0;
  const deciding = txtAuthoritative ? [txt] : [txt, key, pgp];
  const failed = deciding.find((s) => s.report.outcome === 'temporary-failure');
  if (failed) {
    const error = failed.report.error ?? { code: 'DNS_TIMEOUT', message: 'no answer' };
    return {
      ...base,
      status: 'temporary-failure',
      keys: [],
      rejected: [],
      policy: null,
      maxAge: 0,
      dnssec: false,
      dnssecReason: `the ${failed.report.type} query failed (${error.code})`,
      error,
    };
  }

  const { keys, rejected } = await judgeCandidates([txt, key, pgp], txtAuthoritative, now, deps.keyCache);
  const policy = txtAuthoritative ? txt.txtRecords.map((r) => r.policy).reduce(strongerPolicy) : null;
  const maxAge = txtAuthoritative ? Math.max(...txt.txtRecords.map((r) => r.maxAge)) : 0;
  const unauthenticated = deciding.find((s) => !s.report.dnssec?.authenticated);
  const witness = (unauthenticated ?? txt).report;
  return {
    ...base,
    status: keys.length > 0 ? 'found' : 'none',
    keys,
    rejected: [...txt.rejected, ...key.rejected, ...pgp.rejected, ...rejected],
    policy,
    maxAge,
    dnssec: unauthenticated === undefined,
    dnssecReason: `${witness.type}: ${witness.dnssec?.reason ?? 'no answer'}`,
  };
}

/** Asks for one record type and parses what comes back. */
async function querySource(resolver: DnsQuerier, owner: string, source: RecordSource): Promise<SourceResult> {
  let response: DnsResponse;
  try {
    response = await resolver.query(owner, RR_TYPE[source]);
  } catch (error) {
    if (!(error instanceof DnsError) || !error.temporary) throw error;
    return {
      report: {
        type: source,
        outcome: 'temporary-failure',
        records: 0,
        foreign: 0,
        dnssec: null,
        cache: null,
        server: null,
        transport: null,
        error: { code: error.code, message: error.message },
      },
      candidates: [],
      rejected: [],
      txtRecords: [],
    };
  }
  const { foreign, ...parsed } = parseRecords(source, response);
  return {
    ...parsed,
    report: {
      type: source,
      outcome: response.outcome === 'answer' ? 'records' : response.outcome,
      records: response.records.length + response.malformed.length,
      foreign,
      dnssec: response.dnssec,
      cache: response.cache ?? null,
      server: response.server,
      transport: response.transport,
    },
  };
}

/** Parses the records of one answer into key candidates, rejections and (TXT) policies. */
function parseRecords(
  source: RecordSource,
  response: DnsResponse,
): Omit<SourceResult, 'report'> & { foreign: number } {
  const candidates: Candidate[] = [];
  const rejected: RejectedKey[] = response.malformed.map((detail) => ({ source, reason: 'malformed-record' as const, detail }));
  const txtRecords: { policy: SitePolicy; maxAge: number }[] = [];
  let foreign = 0;
  let ours = 0;
  /** Counts a MUSE record; past the limit it is reported instead of processed. */
  const limited = (): boolean => {
    ours++;
    if (ours <= MAX_RECORDS_PER_TYPE) return false;
    rejected.push({ source, reason: 'too-many-records', detail: `more than ${MAX_RECORDS_PER_TYPE} ${source} records` });
    return true;
  };
  // DNS returns an RRset in any order: sort so the same records always give the same result.
  for (const record of [...response.records].sort(compareRecords)) {
    if (source === 'TXT' && record.kind === 'txt') {
      const result = parseSiteTxt(record.strings);
      if (result.kind === 'foreign') foreign++;
      else if (limited()) continue;
      else if (result.kind === 'unsupported-version') {
        rejected.push({ source, reason: 'unsupported-record', detail: `record version v=${result.version}` });
      } else if (result.kind === 'malformed') rejected.push({ source, reason: 'malformed-record', detail: result.reason });
      else {
        txtRecords.push({ policy: result.record.policy, maxAge: result.record.maxAge });
        candidates.push({ source, bytes: result.record.key });
      }
    } else if (source === 'KEY' && record.kind === 'raw') {
      const result = parseKeyRdata(record.rdata);
      if (result.kind === 'foreign') foreign++;
      else if (limited()) continue;
      else if (result.kind === 'ok') candidates.push({ source, bytes: result.key });
      else {
        const reason = result.kind === 'malformed' ? 'malformed-record' : result.kind === 'unsupported' ? 'unsupported-record' : 'not-for-encryption';
        rejected.push({ source, reason, detail: result.reason });
      }
    } else if (source === 'OPENPGPKEY' && record.kind === 'raw') {
      if (!limited()) candidates.push({ source, bytes: new Uint8Array(record.rdata) });
    } else {
      foreign++;
    }
  }
  return { candidates, rejected, txtRecords, foreign };
}

/**
 * Parses and checks every candidate key once per distinct key, merges the sources that published it, and applies
 * the precedence rule: with TXT records present, only their keys are used.
 */
async function judgeCandidates(
  results: readonly SourceResult[],
  txtAuthoritative: boolean,
  now: Date,
  keyCache: ParsedKeyCache | undefined,
): Promise<{ keys: SiteKey[]; rejected: RejectedKey[] }> {
  const usable = new Map<string, { key: ValidatedKey; sources: RecordSource[] }>();
  const rejected: RejectedKey[] = [];
  const unusable = new Map<string, RejectedKey>();
  for (const candidate of results.flatMap((r) => r.candidates)) {
    const parsed = await (keyCache === undefined ? readPublicKeyBytes(candidate.bytes) : keyCache.read(candidate.bytes)).catch((error: unknown) => {
      if (!(error instanceof KeyError)) throw error;
      rejected.push({ source: candidate.source, reason: 'malformed-key', detail: error.message });
      return undefined;
    });
    if (!parsed) continue;
    const fingerprint = fingerprintOf(parsed);
    const known = usable.get(fingerprint);
    if (known) {
      if (!known.sources.includes(candidate.source)) known.sources.push(candidate.source);
      continue;
    }
    const verdict = await validateSiteKey(parsed, candidate.bytes, now);
    if (verdict.ok) {
      usable.set(fingerprint, { key: verdict.key, sources: [candidate.source] });
    } else if (!unusable.has(`${candidate.source}/${fingerprint}`)) {
      const entry = { source: candidate.source, fingerprint, reason: verdict.reason, detail: verdict.detail };
      unusable.set(`${candidate.source}/${fingerprint}`, entry);
      rejected.push(entry);
    }
  }
  const keys: SiteKey[] = [];
  for (const { key, sources } of usable.values()) {
    if (!txtAuthoritative || sources.includes('TXT')) {
      keys.push({ ...key, sources: SOURCES.filter((s) => sources.includes(s)) });
    } else {
      for (const source of sources) {
        rejected.push({
          source,
          fingerprint: key.fingerprint,
          reason: 'not-in-txt',
          detail: 'the site publishes TXT records, and they do not list this key',
        });
      }
    }
  }
  keys.sort((a, b) => b.created.getTime() - a.created.getTime() || a.fingerprint.localeCompare(b.fingerprint));
  return { keys, rejected };
}

function compareRecords(a: DnsResponse['records'][number], b: DnsResponse['records'][number]): number {
  const key = (r: typeof a): string => (r.kind === 'txt' ? r.strings.join('') : r.kind === 'raw' ? r.rdata.toString('hex') : '');
  const ka = key(a);
  const kb = key(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The site-key lookup bound to a resolver: what the PGP/MIME engine and the daemon hold. */
export interface SiteKeyFinder {
  /**
   * Looks up a site's keys; see {@link lookupSiteKeys}.
   * @param domain a domain, or an address whose domain is meant
   */
  findSiteKeys(domain: string, now?: Date): Promise<SiteKeyLookup>;
}

/** Lookups a {@link createSiteKeyFinder} finder keeps (see lookup-memo.ts), as many as the default DNS cache. */
export const LOOKUP_MEMO_SIZE = 10_000;

/**
 * Binds {@link lookupSiteKeys} to a resolver (normally the caching one from `createResolver`). While the answers
 * of a domain stay in the resolver's cache, its lookup is reused whole (lookup-memo.ts); when they are fetched
 * again, keys seen before are not parsed again ({@link ParsedKeyCache}).
 */
export function createSiteKeyFinder(resolver: DnsQuerier): SiteKeyFinder {
  const keyCache = new ParsedKeyCache();
  const find = memoiseLookups((domain, now) => lookupSiteKeys(domain, { resolver, keyCache, now }), LOOKUP_MEMO_SIZE);
  return {
    findSiteKeys: (domain, now) => find(normaliseDomain(domainOfAddressOrDomain(domain)), now ?? new Date()),
  };
}
