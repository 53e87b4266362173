/**
 * `muse-milter rotate`: the successor of the site key, certified by the current key, so that senders holding a
 * pin of the current key follow the rotation without DNSSEC; prints the records for the overlap and the
 * configuration change.
 */
import { loadSitePrivateKey, rotateSiteKey, siteKeyPaths } from '../../keys/index.ts';
import { dirname } from 'node:path';
import { CONFIG_OPTION, daemonConfigOption } from '../daemon-config.ts';
import { COMMON_OPTIONS, RECORD_OPTIONS, domainOption, keyDirOption, recordOptions, stringOption } from '../options.ts';
import { EXIT, type Verb } from '../verb.ts';

/** The rotate verb. */
export const rotateVerb: Verb = {
  name: 'rotate',
  summary: 'make the next site key, certified by the current one, and print the records for the overlap',
  positionals: { usage: '', min: 0, max: 0 },
  options: {
    domain: COMMON_OPTIONS.domain,
    config: CONFIG_OPTION,
    'key-dir': COMMON_OPTIONS['key-dir'],
    'key-file': { type: 'string', valueName: 'FILE', description: 'the current private key (default KEY-DIR/DOMAIN.private.asc)' },
    ...RECORD_OPTIONS,
  },
  details:
    'Generates a new site key (as genkey does), has the current key certify it (an OpenPGP certification by ' +
    'the current primary key over the new key\'s user ID, published inside the new key), and writes ' +
    'DOMAIN.KEYID.private.asc (mode 0600), DOMAIN.KEYID.public.asc and DOMAIN.KEYID.zone next to the current ' +
    'files; nothing is overwritten. Standard output is a zone fragment: the records of both keys to publish ' +
    'side by side, and, as comments, the configuration change and how long to keep the overlap. Give the ' +
    '--policy and --max-age the site publishes now. With the daemon\'s configuration (--config, or the default file ' +
    'when it exists), the domain and current key default to site.domain and site.keyFile.\n' +
    'Exit status: 0 written, 1 failure (unreadable current key, files exist, I/O error), 2 usage error.',
  async run(args, io) {
    const daemon = await daemonConfigOption(args);
    const domain = daemon !== undefined && stringOption(args, 'domain') === undefined ? daemon.config.site.domain : domainOption(args);
    const record = recordOptions(args);
    const own = daemon !== undefined && domain === daemon.config.site.domain && stringOption(args, 'key-dir') === undefined;
    const dir = own ? dirname(daemon.config.site.keyFile as string) : keyDirOption(args);
    const keyFile = stringOption(args, 'key-file') ?? (own ? (daemon.config.site.keyFile as string) : siteKeyPaths(dir, domain).privateKey);
    const current = await loadSitePrivateKey(keyFile, 'warn');
    for (const warning of current.warnings) io.stderr(`rotate: warning: ${warning}\n`);
    const now = new Date();
    const rotated = await rotateSiteKey(dir, current.privateKey, { domain, ...record }, now);
    const overlap = record.maxAge + record.ttl;
    const until = new Date(now.getTime() + overlap * 1000).toISOString();
    io.stderr(`rotate: wrote ${rotated.paths.privateKey} (mode 0600), ${rotated.paths.publicKey}, ${rotated.paths.zone}\n`);
    io.stdout(
      [
        `; Rotation of the site key of ${domain}: ${rotated.previousFingerprint} -> ${rotated.fingerprint}`,
        `; The new key carries a certification by the current key: senders holding a pin of the current key`,
        `; follow the rotation without DNSSEC.`,
        ';',
        '; 1. Publish both keys side by side (the records below).',
        '; 2. Change the configuration, then send SIGHUP to muse-milter:',
        `;      site.keyFile: ${rotated.paths.privateKey}`,
        `;      site.previousKeyFiles: add ${keyFile}`,
        `; 3. Keep both published for at least max-age + TTL = ${overlap} s (until ${until}), then remove the`,
        `;    records of ${rotated.previousFingerprint}.`,
        `; 4. Keep ${keyFile} in site.previousKeyFiles a few days longer (mail still in queues), then remove it.`,
        '',
        rotated.zone.trimEnd(),
        '',
      ].join('\n'),
    );
    return EXIT.OK;
  },
};
