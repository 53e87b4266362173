/**
 * Options shared by the verbs, so `--dns`, `--key-dir`, `--pin-dir` and `--domain` mean the same everywhere, and
 * the helpers that turn them into a resolver, directories and a domain.
 */
import { KeyError, isSitePolicy, MAX_AGE_LIMIT, normaliseDomain, type SitePolicy } from '../keys/index.ts';
import { DEFAULT_DATA_DIRECTORY, DEFAULT_KEY_DIRECTORY } from '../config/index.ts';
import { lookupGroup, lookupUser } from '../daemon/privileges.ts';
import { UsageError, type OptionSpec, type VerbArgs } from './verb.ts';

/** Where site keys live unless `--key-dir` says otherwise: the daemon's default key directory. */
export const DEFAULT_KEY_DIR = DEFAULT_KEY_DIRECTORY;
/** Where the pin store lives unless `--pin-dir` says otherwise: the daemon's default data directory. */
export const DEFAULT_PIN_DIR = DEFAULT_DATA_DIRECTORY;

/** The shared options; a verb lists the ones it takes. */
export const COMMON_OPTIONS = {
  dns: {
    type: 'string',
    multiple: true,
    valueName: 'HOST:PORT',
    description: 'resolver to ask, IP literal with optional port ([::1]:5300 for IPv6); repeat for more, asked in order; default: /etc/resolv.conf',
  },
  'key-dir': { type: 'string', valueName: 'DIR', description: `directory of site key files (default ${DEFAULT_KEY_DIR})` },
  'pin-dir': { type: 'string', valueName: 'DIR', description: `directory of the pin store pins.json (default ${DEFAULT_PIN_DIR})` },
  domain: { type: 'string', valueName: 'DOMAIN', description: 'the site (mail domain)' },
} as const satisfies Record<string, OptionSpec>;

/** `--owner`: who is to own the files a verb writes (the account the daemon runs as). */
export const OWNER_OPTION = {
  type: 'string',
  valueName: 'USER[:GROUP]',
  description: 'give the written files to this account (the daemon\'s user; needs root); the private key stays mode 0600',
} as const satisfies OptionSpec;

/** The account named by `--owner USER[:GROUP]` as ids (group: the user's primary group unless given). */
export async function ownerOption(args: VerbArgs): Promise<{ uid: number; gid: number } | undefined> {
  const text = stringOption(args, 'owner');
  if (text === undefined) return undefined;
  const [user = '', group] = text.split(':', 2);
  const ids = user === '' ? undefined : await lookupUser(user);
  if (ids === undefined) throw new UsageError(`--owner: no user "${user}" in /etc/passwd`);
  if (group === undefined || group === '') return ids;
  const gid = await lookupGroup(group);
  if (gid === undefined) throw new UsageError(`--owner: no group "${group}" in /etc/group`);
  return { uid: ids.uid, gid };
}

/** Options describing the records to publish (genkey, dns-record). */
export const RECORD_OPTIONS = {
  policy: { type: 'string', valueName: 'POLICY', description: 'p= of the TXT record: testing, opportunistic or enforce (default testing)' },
  'max-age': { type: 'string', valueName: 'SECONDS', description: 'ma= of the TXT record, the pinning lifetime (default 604800, one week)' },
  ttl: { type: 'string', valueName: 'SECONDS', description: 'TTL of the zone lines (default 3600)' },
} as const satisfies Record<string, OptionSpec>;

/** A string option's value, if given. */
export function stringOption(args: VerbArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** The domain from `--domain`, normalised; a usage error when missing or not a mail domain. */
export function domainOption(args: VerbArgs): string {
  const value = stringOption(args, 'domain');
  if (value === undefined) throw new UsageError('--domain is required');
  return siteOrUsage(value, normaliseDomain);
}

/**
 * Applies a domain normaliser to command-line text, turning its `KEY_BAD_DOMAIN` into a usage error: a bad domain
 * on the command line is the operator's typo, not a failure found.
 */
export function siteOrUsage(value: string, normalise: (text: string) => string): string {
  try {
    return normalise(value);
  } catch (error) {
    if (error instanceof KeyError) throw new UsageError(error.message);
    throw error;
  }
}

/** The key directory: `--key-dir` (or genkey's `--dir`), else the default. */
export function keyDirOption(args: VerbArgs): string {
  return stringOption(args, 'key-dir') ?? stringOption(args, 'dir') ?? DEFAULT_KEY_DIR;
}

/** The record settings from {@link RECORD_OPTIONS}, checked. */
export function recordOptions(args: VerbArgs): { policy: SitePolicy; maxAge: number; ttl: number } {
  const policy = stringOption(args, 'policy') ?? 'testing';
  if (!isSitePolicy(policy)) throw new UsageError(`--policy must be testing, opportunistic or enforce, not "${policy}"`);
  return {
    policy,
    maxAge: seconds(args, 'max-age', 604_800, MAX_AGE_LIMIT),
    ttl: seconds(args, 'ttl', 3600, 2_147_483_647),
  };
}

function seconds(args: VerbArgs, name: string, fallback: number, max: number): number {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  if (!/^\d{1,10}$/.test(text) || Number(text) > max) throw new UsageError(`--${name} must be a number of seconds up to ${max}, not "${text}"`);
  return Number(text);
}
