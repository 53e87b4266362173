/**
 * The tools' view of the daemon: `--config FILE` (default /etc/muse-milter/muse.yaml when it exists) gives them
 * the daemon's resolvers, pin directory, key files and policy, so that what `lookup` or `testkey` says is what the
 * running milter does. Options given on the command line (`--dns`, `--pin-dir`, `--key-dir`) still win.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_CONFIG_FILE, loadConfig, parseConfig, type Config } from '../config/index.ts';
import { createResolver, DnsError, type CachingResolver } from '../dns/index.ts';
import { resolverOptions } from '../daemon/build-runtime.ts';
import { KeyService } from '../daemon/key-service.ts';
import type { RecipientPolicySettings } from '../daemon/recipient-policy.ts';
import { policySettings } from '../daemon/runtime.ts';
import { createSiteKeyFinder } from '../keys/index.ts';
import { PinStore, type PinKeeper } from '../pins/index.ts';
import { stringOption } from './options.ts';
import { UsageError, type OptionSpec, type VerbArgs } from './verb.ts';

/** `--config FILE`, shared by the verbs that act for the daemon. */
export const CONFIG_OPTION = {
  type: 'string',
  valueName: 'FILE',
  description: `the daemon's configuration, whose resolvers, pins, keys and policy are used (default ${DEFAULT_CONFIG_FILE} when it exists)`,
} as const satisfies OptionSpec;

/** The daemon's configuration as the tool sees it, and where it came from. */
export interface DaemonConfig {
  readonly path: string;
  readonly config: Config;
}

/**
 * The configuration named by `--config`, else the default file when it exists, else undefined (the tool then uses
 * its own defaults). A file that is named or exists but does not load is an error, never silently skipped.
 * @throws ConfigError as loadConfig
 */
export async function daemonConfigOption(args: VerbArgs, defaultFile: string = DEFAULT_CONFIG_FILE): Promise<DaemonConfig | undefined> {
  const given = stringOption(args, 'config');
  const path = given ?? (existsSync(defaultFile) ? defaultFile : undefined);
  if (path === undefined) return undefined;
  return { path, config: await loadConfig(path) };
}

/** The resolver: `--dns` when given, else the configuration's settings, else the system's resolvers. */
export function resolverFor(args: VerbArgs, daemon: DaemonConfig | undefined): CachingResolver {
  const values = args.values.dns;
  const servers = Array.isArray(values) ? values.filter((v): v is string => typeof v === 'string') : [];
  try {
    if (servers.length > 0) return createResolver(daemon === undefined ? { servers } : { ...resolverOptions(daemon.config), servers });
    return createResolver(daemon === undefined ? {} : resolverOptions(daemon.config));
  } catch (error) {
    if (error instanceof DnsError && error.code === 'DNS_BAD_SERVER') throw new UsageError(`--dns: ${error.message}`);
    throw error;
  }
}

/** The pin directory: `--pin-dir`, else the configuration's (undefined when it turns pinning off), else the default. */
export function pinDirectoryFor(args: VerbArgs, daemon: DaemonConfig | undefined, fallback: string): string | undefined {
  const given = stringOption(args, 'pin-dir');
  if (given !== undefined) return given;
  if (daemon === undefined) return fallback;
  return daemon.config.pins.enabled ? (daemon.config.pins.directory as string) : undefined;
}

/** Pins read from the store and never written: a tool must not change what the daemon remembers. */
export function readOnlyPins(store: PinStore): PinKeeper {
  return { get: (domain) => store.get(domain), learn: async () => {} };
}

/** The daemon's key service over a resolver and a read-only pin store. */
export function toolKeyService(resolver: CachingResolver, store: PinStore | undefined): KeyService {
  return new KeyService(createSiteKeyFinder(resolver), store === undefined ? undefined : readOnlyPins(store));
}

/**
 * The recipient policy the daemon applies: the configuration's, or, without one, the schema's defaults for a site
 * with no local domains (policy `dns`, failures tempfail).
 */
export function policyFor(daemon: DaemonConfig | undefined): RecipientPolicySettings {
  if (daemon !== undefined) return policySettings(daemon.config);
  // Every default of the schema; the placeholder site is taken out again, so no domain counts as local.
  const defaults = parseConfig('site:\n  domain: example.invalid\n', 'defaults');
  return policySettings({ ...defaults, site: { ...defaults.site, localDomains: [] } });
}
