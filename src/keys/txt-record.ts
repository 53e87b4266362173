/**
 * The primary site-key record: TXT at `_muse.<domain>` holding a DKIM-style tag list (docs/dns-records.md §2):
 * `v=MUSE1; p=<policy>; ma=<seconds>; k=<base64 OpenPGP key>`.
 */

/** The version tag value this implementation reads and writes. */
export const MUSE_VERSION = 'MUSE1';

/** Policies in order of strength, weakest first; when records disagree the strongest wins. */
export const SITE_POLICIES = ['testing', 'opportunistic', 'enforce'] as const;

/** What a site asks of senders (docs/dns-records.md §2). */
export type SitePolicy = (typeof SITE_POLICIES)[number];

/** Largest pinning lifetime a record may ask for: one year, as MTA-STS's max_age (RFC 8461 §3.2). */
export const MAX_AGE_LIMIT = 31_557_600;

/** Largest binary key accepted in any record: far above a real site key, far below what could hurt. */
export const MAX_KEY_BYTES = 16_384;

/** Longest DNS character-string (RFC 1035 §3.3). */
export const CHARACTER_STRING_MAX = 255;

/** The content of a valid MUSE TXT record. */
export interface SiteTxtRecord {
  readonly policy: SitePolicy;
  /** Pinning lifetime, seconds, already clamped to {@link MAX_AGE_LIMIT}. */
  readonly maxAge: number;
  /** The binary OpenPGP public key (not yet parsed or checked). */
  readonly key: Uint8Array;
}

/** What one TXT record at `_muse.<domain>` turned out to be. */
export type TxtParseResult =
  /** Not ours (does not start with a `v=` tag naming MUSE); ignored. */
  | { readonly kind: 'foreign' }
  /** A MUSE record of another version; ignored, reported. */
  | { readonly kind: 'unsupported-version'; readonly version: string }
  /** A MUSE1 record that breaks the grammar; ignored, reported. */
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'ok'; readonly record: SiteTxtRecord };

/** Builds the record text (before splitting into character-strings). */
export function buildSiteTxt(record: SiteTxtRecord): string {
  return `v=${MUSE_VERSION}; p=${record.policy}; ma=${record.maxAge}; k=${Buffer.from(record.key).toString('base64')}`;
}

/** Splits ASCII record text into character-strings of at most 255 octets, as zone files and DNS carry them. */
export function splitCharacterStrings(text: string): string[] {
  const strings: string[] = [];
  for (let at = 0; at < text.length; at += CHARACTER_STRING_MAX) {
    strings.push(text.slice(at, at + CHARACTER_STRING_MAX));
  }
  return strings.length > 0 ? strings : [''];
}

/**
 * Parses one TXT record given as its character-strings, which are joined with nothing between them (as DKIM
 * does, RFC 6376 §3.6.2.2): a string boundary may fall anywhere, even inside a tag.
 */
export function parseSiteTxt(strings: readonly string[]): TxtParseResult {
  const text = strings.join('');
  const version = /^[ \t]*v[ \t]*=[ \t]*([^;]*?)[ \t]*(?:;|$)/.exec(text);
  if (!version) return { kind: 'foreign' };
  const versionValue = version[1] ?? '';
  if (versionValue !== MUSE_VERSION) {
    return /^muse/i.test(versionValue) ? { kind: 'unsupported-version', version: versionValue } : { kind: 'foreign' };
  }
  if (!/^[\t\x20-\x7e]*$/.test(text)) return malformed('characters outside printable ASCII');
  const tags = parseTagList(text);
  if (typeof tags === 'string') return malformed(tags);
  const policy = tags.get('p');
  if (policy === undefined) return malformed('missing p= (policy)');
  if (!isSitePolicy(policy)) return malformed(`unknown policy p=${policy}`);
  const maxAgeText = tags.get('ma');
  if (maxAgeText === undefined) return malformed('missing ma= (pinning lifetime)');
  if (!/^\d{1,10}$/.test(maxAgeText)) return malformed(`ma= is not a number of seconds: "${maxAgeText}"`);
  const keyText = tags.get('k');
  if (keyText === undefined) return malformed('missing k= (key)');
  const base64 = keyText.replace(/[ \t]/g, '');
  if (base64 === '' || base64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
    return malformed('k= is not base64');
  }
  const key = Buffer.from(base64, 'base64');
  if (key.length > MAX_KEY_BYTES) return malformed(`k= holds ${key.length} octets, more than ${MAX_KEY_BYTES}`);
  return {
    kind: 'ok',
    record: { policy, maxAge: Math.min(Number(maxAgeText), MAX_AGE_LIMIT), key: new Uint8Array(key) },
  };
}

/** Whether a string names a policy. */
export function isSitePolicy(value: string): value is SitePolicy {
  return (SITE_POLICIES as readonly string[]).includes(value);
}

/** The stronger of two policies. */
export function strongerPolicy(a: SitePolicy, b: SitePolicy): SitePolicy {
  return SITE_POLICIES.indexOf(a) >= SITE_POLICIES.indexOf(b) ? a : b;
}

/**
 * Splits `tag=value; tag=value;` into a map. Whitespace around names and values is dropped; one trailing `;` is
 * allowed; an empty tag-spec elsewhere, a tag without `=`, a bad tag name or a repeated tag make the list invalid.
 * @returns the tags, or the reason the list is invalid
 */
function parseTagList(text: string): Map<string, string> | string {
  const specs = text.split(';');
  if (specs.length > 1 && (specs[specs.length - 1] ?? '').trim() === '') specs.pop();
  const tags = new Map<string, string>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq < 0) return spec.trim() === '' ? 'empty tag' : `tag without "=": "${spec.trim().slice(0, 20)}"`;
    const name = spec.slice(0, eq).trim();
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) return `bad tag name "${name.slice(0, 20)}"`;
    if (tags.has(name)) return `tag ${name}= appears twice`;
    tags.set(name, spec.slice(eq + 1).trim());
  }
  return tags;
}

function malformed(reason: string): TxtParseResult {
  return { kind: 'malformed', reason };
}
