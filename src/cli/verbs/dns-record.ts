/** `muse-milter dns-record`: the DNS records for an existing key. */
import { fingerprintOf, formatZoneRecords, readKeyFile, siteKeyPaths, siteKeyZoneRecords, validateSiteKey } from '../../keys/index.ts';
import type { PrivateKey, PublicKey } from 'openpgp';
import { CONFIG_OPTION, daemonConfigOption } from '../daemon-config.ts';
import { COMMON_OPTIONS, RECORD_OPTIONS, domainOption, keyDirOption, recordOptions, stringOption } from '../options.ts';
import { EXIT, type Verb } from '../verb.ts';

/** The dns-record verb. */
export const dnsRecordVerb: Verb = {
  name: 'dns-record',
  summary: 'print the DNS records publishing an existing site key',
  positionals: { usage: '', min: 0, max: 0 },
  options: {
    domain: COMMON_OPTIONS.domain,
    config: CONFIG_OPTION,
    key: { type: 'string', valueName: 'FILE', description: 'the key, public or private, armored or binary (default KEY-DIR/DOMAIN.public.asc)' },
    'key-dir': COMMON_OPTIONS['key-dir'],
    ...RECORD_OPTIONS,
  },
  details:
    'Prints the TXT, KEY and OPENPGPKEY zone lines for _muse.DOMAIN. Only the public part of a private key is used. ' +
    'With the daemon\'s configuration (--config, or the default file when it exists), the domain and key default to ' +
    'site.domain and site.keyFile.\n' +
    'Exit status: 0 printed, 1 the key cannot be read or is not usable as a site key, 2 usage error.',
  async run(args, io) {
    const daemon = await daemonConfigOption(args);
    const domain = daemon !== undefined && stringOption(args, 'domain') === undefined ? daemon.config.site.domain : domainOption(args);
    const record = recordOptions(args);
    const own = daemon !== undefined && domain === daemon.config.site.domain && stringOption(args, 'key-dir') === undefined;
    const path = stringOption(args, 'key') ?? (own ? (daemon.config.site.keyFile as string) : siteKeyPaths(keyDirOption(args), domain).publicKey);
    const { key } = await readKeyFile(path);
    const publicKey: PublicKey = key.isPrivate() ? (key as PrivateKey).toPublic() : (key as PublicKey);
    const verdict = await validateSiteKey(publicKey, publicKey.write(), new Date());
    if (!verdict.ok) {
      io.stderr(`dns-record: key ${fingerprintOf(publicKey)} in ${path} is not usable as a site key: ${verdict.reason} (${verdict.detail})\n`);
      return EXIT.FAILURE;
    }
    io.stdout(formatZoneRecords(siteKeyZoneRecords(publicKey, { domain, ...record })));
    return EXIT.OK;
  },
};
