/**
 * `muse-milter testkey`: checks that what DNS publishes for the site matches the local private key (cf.
 * opendkim-testkey), and warns about a private key file others may read.
 */
import { loadSitePrivateKey, lookupSiteKeys, siteKeyPaths, validateSiteKey, type RecordSource } from '../../keys/index.ts';
import { CONFIG_OPTION, daemonConfigOption, resolverFor } from '../daemon-config.ts';
import { COMMON_OPTIONS, domainOption, keyDirOption, stringOption } from '../options.ts';
import { formatKey, formatRejected, formatSource, line } from '../report.ts';
import { EXIT, type Verb } from '../verb.ts';

/** The testkey verb. */
export const testkeyVerb: Verb = {
  name: 'testkey',
  summary: 'check that the DNS records of a site match its local private key',
  positionals: { usage: '', min: 0, max: 0 },
  options: {
    domain: COMMON_OPTIONS.domain,
    config: CONFIG_OPTION,
    key: { type: 'string', valueName: 'FILE', description: 'the private site key (default KEY-DIR/DOMAIN.private.asc)' },
    'key-dir': COMMON_OPTIONS['key-dir'],
    dns: COMMON_OPTIONS.dns,
  },
  details:
    'Passes when the TXT records at _muse.DOMAIN carry the local key as a usable key, and every KEY or OPENPGPKEY ' +
    'record set present carries it too. Missing KEY/OPENPGPKEY records, a lack of DNSSEC and a private key file ' +
    'group or others may read are warnings. With the daemon\'s configuration (--config, or the default file when it ' +
    'exists), the domain, key file and resolvers default to the daemon\'s.\n' +
    'Exit status: 0 match, 1 mismatch or failure (DNS, unreadable key), 2 usage error.',
  async run(args, io) {
    const daemon = await daemonConfigOption(args);
    const domain = daemon !== undefined && stringOption(args, 'domain') === undefined ? daemon.config.site.domain : domainOption(args);
    const ownKeyFile = daemon !== undefined && domain === daemon.config.site.domain && stringOption(args, 'key-dir') === undefined ? (daemon.config.site.keyFile as string) : undefined;
    const path = stringOption(args, 'key') ?? ownKeyFile ?? siteKeyPaths(keyDirOption(args), domain).privateKey;
    const resolver = resolverFor(args, daemon);
    const local = await loadSitePrivateKey(path, 'warn');
    const warnings = [...local.warnings];
    const problems: string[] = [];
    const own = await validateSiteKey(local.publicKey, local.publicKey.write(), new Date());
    if (!own.ok) problems.push(`the local key is not usable as a site key: ${own.reason} (${own.detail})`);
    const lookup = await lookupSiteKeys(domain, { resolver });
    io.stdout(line('domain', `${domain} (${lookup.owner})`));
    io.stdout(line('local key', `${local.fingerprint} (${path})`));
    for (const source of lookup.sources) io.stdout(formatSource(source));
    for (const key of lookup.keys) io.stdout(formatKey(key));
    for (const rejected of lookup.rejected) io.stdout(formatRejected(rejected));
    if (lookup.status === 'temporary-failure') {
      problems.push(`DNS lookup failed: ${lookup.error?.message ?? 'no answer'}`);
    } else {
      const published = lookup.keys.find((key) => key.fingerprint === local.fingerprint)?.sources ?? [];
      for (const source of lookup.sources) {
        const muse = source.outcome === 'records' && source.records > source.foreign;
        if (muse && !published.includes(source.type)) {
          problems.push(`the ${source.type} records do not carry the local key as a usable key`);
        } else if (!muse) {
          (source.type === 'TXT' ? problems : warnings).push(absence(source.type));
        }
      }
      if (!lookup.dnssec) warnings.push(`the records are not DNSSEC-validated: ${lookup.dnssecReason}`);
    }
    for (const warning of warnings) io.stderr(`testkey: warning: ${warning}\n`);
    for (const problem of problems) io.stdout(line('problem', problem));
    io.stdout(line('result', problems.length === 0 ? 'OK' : 'FAILED'));
    return problems.length === 0 ? EXIT.OK : EXIT.FAILURE;
  },
};

function absence(type: RecordSource): string {
  return type === 'TXT'
    ? 'no MUSE TXT record: it is the primary record and carries the policy'
    : `no ${type} record (optional, read for compatibility)`;
}
