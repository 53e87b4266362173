/** Text and JSON renderings of site-key lookups, shared by `lookup` and `testkey`. */
import type { RejectedKey, SiteKey, SiteKeyLookup, SourceReport } from '../keys/index.ts';

/** Width of the label column in reports. */
const LABEL = 12;

/** `label:` padded to the label column, then the text. */
export function line(label: string, text: string): string {
  return `${`${label}:`.padEnd(LABEL)}${text}\n`;
}

/** One line about one record type's query. */
export function formatSource(source: SourceReport): string {
  if (source.outcome === 'temporary-failure') {
    return line(source.type, `temporary failure: ${source.error?.code ?? ''} ${source.error?.message ?? ''}`.trimEnd());
  }
  const what = source.outcome === 'records' ? `${source.records} record(s)${source.foreign > 0 ? `, ${source.foreign} not MUSE` : ''}` : source.outcome.toUpperCase();
  const dnssec = source.dnssec?.authenticated ? 'AD trusted' : 'no trusted AD';
  const cache = source.cache ? `, cache ${source.cache.state} (valid ${Math.ceil(source.cache.remainingMs / 1000)} s)` : '';
  return line(source.type, `${what}, ${dnssec}, from ${source.server ?? '?'} over ${source.transport ?? '?'}${cache}`);
}

/** One line about a usable key. */
export function formatKey(key: SiteKey): string {
  const expires = key.expires ? key.expires.toISOString() : 'never';
  return line(
    'key',
    `${key.fingerprint} from ${key.sources.join(', ')}; ${key.algorithm}; created ${key.created.toISOString()}, expires ${expires}`,
  );
}

/** One line about a record or key that was not used. */
export function formatRejected(rejected: RejectedKey): string {
  return line('rejected', `${rejected.source}${rejected.fingerprint ? ` ${rejected.fingerprint}` : ''}: ${rejected.reason} (${rejected.detail})`);
}

/** The lookup as plain JSON-ready data: keys without their parsed objects, dates as ISO strings. */
export function lookupToJson(lookup: SiteKeyLookup): Record<string, unknown> {
  return {
    ...lookup,
    keys: lookup.keys.map((key) => ({
      fingerprint: key.fingerprint,
      sources: key.sources,
      algorithm: key.algorithm,
      encryptionKeyId: key.encryptionKeyId,
      created: key.created.toISOString(),
      expires: key.expires ? key.expires.toISOString() : null,
      userIds: key.userIds,
    })),
  };
}
