/** `muse-milter genkey`: a new site key, its files, and the DNS records to publish (cf. opendkim-genkey). */
import { provisionSiteKey } from '../../keys/index.ts';
import { COMMON_OPTIONS, OWNER_OPTION, RECORD_OPTIONS, domainOption, keyDirOption, ownerOption, recordOptions, stringOption } from '../options.ts';
import { EXIT, type Verb } from '../verb.ts';

/** The genkey verb. */
export const genkeyVerb: Verb = {
  name: 'genkey',
  summary: 'generate a site key and print the DNS records for it',
  positionals: { usage: '', min: 0, max: 0 },
  options: {
    domain: COMMON_OPTIONS.domain,
    dir: { type: 'string', valueName: 'DIR', description: 'where to write the key files (same as --key-dir)' },
    'key-dir': COMMON_OPTIONS['key-dir'],
    ...RECORD_OPTIONS,
    force: { type: 'boolean', description: 'overwrite existing key files of the domain' },
    owner: OWNER_OPTION,
  },
  details:
    'Writes DOMAIN.private.asc (mode 0600), DOMAIN.public.asc and DOMAIN.zone into the key directory and prints ' +
    'the zone lines (TXT, KEY, OPENPGPKEY at _muse.DOMAIN) on standard output. The key is OpenPGP v4, Ed25519 ' +
    'with a Curve25519 encryption subkey, without passphrase or expiry; GnuPG 2.2 reads it. Run as root, give ' +
    '--owner muse-milter (the daemon\'s user) so that the daemon can re-read the key on SIGHUP.\n' +
    'Exit status: 0 written, 1 failure (files exist without --force, I/O error), 2 usage error.',
  async run(args, io) {
    const domain = domainOption(args);
    const record = recordOptions(args);
    const dir = keyDirOption(args);
    const owner = await ownerOption(args);
    const { paths, zone } = await provisionSiteKey(dir, { domain, ...record }, args.values.force === true, owner);
    const owned = owner === undefined ? '' : ` owned by ${stringOption(args, 'owner') ?? ''}`;
    io.stderr(`genkey: wrote ${paths.privateKey} (mode 0600), ${paths.publicKey}, ${paths.zone}${owned}\n`);
    io.stdout(zone);
    return EXIT.OK;
  },
};
