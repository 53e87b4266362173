/**
 * `muse-milter init`: a site set up in one step, the way `npm start` sets itself up with the embedded
 * configuration: the configuration file (examples/muse.yaml with the site's values), the data directory, the site
 * key, all owned by the account the daemon runs as, and the DNS records to publish.
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIRECTORY, DEFAULT_KEY_DIRECTORY, editConfigText, parseConfig, readConfigTemplate, type ConfigEdit } from '../../config/index.ts';
import { lookupGroup, lookupUser } from '../../daemon/privileges.ts';
import { provisionSiteKey, siteKeyPaths } from '../../keys/index.ts';
import { COMMON_OPTIONS, OWNER_OPTION, RECORD_OPTIONS, domainOption, recordOptions, stringOption } from '../options.ts';
import { EXIT, UsageError, type Verb, type VerbArgs } from '../verb.ts';

/** The account the template names (`user:` in examples/muse.yaml). */
const TEMPLATE_USER = 'muse-milter';

/** The init verb. */
export const initVerb: Verb = {
  name: 'init',
  summary: 'write a configuration, create the data directory and the site key, and print the DNS records',
  positionals: { usage: '', min: 0, max: 0 },
  options: {
    domain: COMMON_OPTIONS.domain,
    config: { type: 'string', valueName: 'FILE', description: `the configuration file to write (default ${DEFAULT_CONFIG_FILE})` },
    'key-dir': { type: 'string', valueName: 'DIR', description: `where to write the site key (default ${DEFAULT_KEY_DIRECTORY})` },
    'data-dir': { type: 'string', valueName: 'DIR', description: `the data directory (default ${DEFAULT_DATA_DIRECTORY})` },
    dns: { ...COMMON_OPTIONS.dns, description: 'resolver the daemon is to ask (repeatable; default 127.0.0.1:53, a validating resolver on this host)' },
    owner: { ...OWNER_OPTION, description: `the account the daemon runs as (user and group in the configuration; default ${TEMPLATE_USER} when run as root)` },
    ...RECORD_OPTIONS,
    force: { type: 'boolean', description: 'replace an existing configuration file (an existing key is never replaced)' },
  },
  details:
    'Writes the configuration from examples/muse.yaml with site.domain and the given paths set, creates the data ' +
    'directory (mode 0700) and the site key (as genkey does) unless it exists, gives both to the account the daemon ' +
    'runs as (run as root: the account must exist, see README.md), and prints the DNS records to publish on ' +
    'standard output, the next steps on standard error.\n' +
    'Exit status: 0 written, 1 failure (configuration exists without --force, I/O error), 2 usage error.',
  async run(args, io) {
    const domain = domainOption(args);
    const record = recordOptions(args);
    const configPath = resolve(stringOption(args, 'config') ?? DEFAULT_CONFIG_FILE);
    const keyDir = resolve(stringOption(args, 'key-dir') ?? DEFAULT_KEY_DIRECTORY);
    const dataDir = resolve(stringOption(args, 'data-dir') ?? DEFAULT_DATA_DIRECTORY);
    if (existsSync(configPath) && args.values.force !== true) {
      io.stderr(`init: ${configPath} exists; give --force to replace it (the site key is kept either way)\n`);
      return EXIT.FAILURE;
    }
    const owner = await initOwner(args);
    const keyFile = siteKeyPaths(keyDir, domain).privateKey;
    const servers = Array.isArray(args.values.dns) ? args.values.dns.filter((v): v is string => typeof v === 'string') : [];
    const edits: ConfigEdit[] = [
      { path: ['site', 'domain'], value: domain },
      ...(dataDir === DEFAULT_DATA_DIRECTORY ? [] : [{ path: ['dataDirectory'], value: dataDir }]),
      ...(keyDir === DEFAULT_KEY_DIRECTORY ? [] : [{ path: ['site', 'keyFile'], value: keyFile }]),
      ...(servers.length === 0 ? [] : [{ path: ['dns', 'servers'], value: servers }]),
      ...(owner === undefined ? [] : [{ path: ['user'], value: owner.user }, { path: ['group'], value: owner.group }]),
    ];
    const text = editConfigText(await readConfigTemplate(), edits);
    // The file written must be one the daemon loads: a bad --dns or domain is caught here, before anything is written.
    parseConfig(text, configPath);

    await mkdir(dirname(configPath), { recursive: true, mode: 0o755 });
    await writeFile(configPath, text, { mode: 0o644 });
    await ownedDirectory(dataDir, owner);
    await ownedDirectory(keyDir, owner);
    let zone: string;
    if (existsSync(keyFile)) {
      io.stderr(`init: keeping the existing site key ${keyFile}; "muse-milter dns-record --config ${configPath}" prints its records\n`);
      zone = '';
    } else {
      const provisioned = await provisionSiteKey(keyDir, { domain, ...record }, false, owner);
      zone = provisioned.zone;
      io.stderr(`init: created the site key of ${domain} (${provisioned.fingerprint}) in ${provisioned.paths.privateKey} (mode 0600)\n`);
    }
    io.stderr(
      `init: wrote ${configPath}${owner === undefined ? '' : `; ${dataDir} and ${keyDir} belong to ${owner.user}:${owner.group}`}\n` +
        'Next:\n' +
        (zone === '' ? '' : `  1. publish the records printed on standard output (also in ${siteKeyPaths(keyDir, domain).zone}) at _muse.${domain}\n`) +
        `  2. muse-milter check-config --config ${configPath}\n` +
        `  3. muse-milter run --config ${configPath}   (or the systemd unit in examples/systemd)\n`,
    );
    io.stdout(zone);
    return EXIT.OK;
  },
};

/** The account from `--owner`, else the template's when running as root; undefined when not root and none given. */
async function initOwner(args: VerbArgs): Promise<{ user: string; group: string; uid: number; gid: number } | undefined> {
  const text = stringOption(args, 'owner') ?? (process.geteuid?.() === 0 ? TEMPLATE_USER : undefined);
  if (text === undefined) return undefined;
  const [user = '', groupText] = text.split(':', 2);
  const ids = user === '' ? undefined : await lookupUser(user);
  if (ids === undefined) {
    throw new UsageError(
      `no user "${user}" in /etc/passwd: create the account first (useradd --system --home-dir ${DEFAULT_DATA_DIRECTORY} ` +
        `--shell /usr/sbin/nologin ${user || TEMPLATE_USER}) or name another with --owner`,
    );
  }
  const group = groupText === undefined || groupText === '' ? await groupName(ids.gid) : groupText;
  const gid = groupText === undefined || groupText === '' ? ids.gid : await lookupGroup(groupText);
  if (gid === undefined || group === undefined) throw new UsageError(`--owner: no group "${groupText ?? ids.gid}" in /etc/group`);
  return { user, group, uid: ids.uid, gid };
}

/** The name of a group id, from /etc/group. */
async function groupName(gid: number): Promise<string | undefined> {
  for (const line of (await readFile('/etc/group', 'utf8')).split('\n')) {
    const fields = line.split(':');
    if (fields[2] === String(gid) && fields[0] !== undefined && fields[0] !== '') return fields[0];
  }
  return undefined;
}

/**
 * Creates a directory (mode 0700) when missing and gives it to `owner`. An existing directory is left as it is (it
 * may be shared, /etc say): check-config names what the account cannot use there.
 */
async function ownedDirectory(dir: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  if (existsSync(dir)) return;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
}
