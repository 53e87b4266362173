/**
 * `muse-milter run`: the daemon. With `--config FILE` it runs that configuration (SIGHUP re-reads it);
 * without, it runs the embedded default and, on the first run, creates the site key in the data folder
 * and prints the DNS records to publish and the Postfix lines to paste.
 */
import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative } from 'node:path';
import { DATA_DIR_ENV, defaultConfig, DNS_ENV, DOMAIN_ENV, loadConfig, METRICS_ENV, type Config } from '../../config/index.ts';
import { formatMilterAddress, parseMilterAddress } from '../../../milter/src/index.ts';
import { isWorker, runAsWorker, startPrimary, workerCount } from '../../daemon/cluster.ts';
import { startDaemon } from '../../daemon/daemon.ts';
import { chooseSocketGroup } from '../../daemon/socket-group.ts';
import { mallocArenaWarning } from '../../daemon/malloc-arenas.ts';
import { youngGenerationWarning } from '../../daemon/young-generation.ts';
import { provisionSiteKey } from '../../keys/index.ts';
import { probeResolvers } from '../resolver-probe.ts';
import { EXIT, type CliIo, type Verb } from '../verb.ts';

/**
 * Postfix's queue directory on Debian, and the jail of its chrooted services: smtpd and cleanup (which runs
 * non_smtpd_milters) have chroot `y` in Debian's master.cf.
 */
export const POSTFIX_QUEUE_DIRECTORY = '/var/spool/postfix';

/**
 * How Postfix names the milter socket `listen` (muse-milter's syntax). A unix socket inside Postfix's queue
 * directory is named relative to it (`unix:muse-milter/milter.sock`): Postfix's daemons work in the queue
 * directory, chrooted there or not, so that one name reaches the socket either way. Any other socket keeps its
 * absolute name, which a chrooted smtpd or cleanup would look up inside the jail.
 */
export function postfixMilterName(listen: string, queueDirectory: string = POSTFIX_QUEUE_DIRECTORY): string {
  const address = parseMilterAddress(listen);
  if (address.kind === 'unix') {
    const inside = relative(queueDirectory, address.path);
    if (inside !== '' && inside !== '..' && !inside.startsWith('../') && !isAbsolute(inside)) return `unix:${inside}`;
  }
  return formatMilterAddress(address);
}

/** The main.cf lines that attach Postfix to a milter at `address` (Postfix syntax). */
export function postfixLines(address: string): string {
  return [
    `smtpd_milters = ${address}`,
    `non_smtpd_milters = ${address}`,
    'milter_protocol = 6',
    'milter_default_action = tempfail',
    'milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}',
    '',
  ].join('\n');
}

/**
 * Why the socket is a unix socket, and whether Postfix can reach it where it is: printed after the main.cf lines.
 * @param listen the milter socket (muse-milter's syntax)
 * @param group the socket's group, in words
 */
export function postfixSocketNotes(listen: string, group: string, queueDirectory: string = POSTFIX_QUEUE_DIRECTORY): string {
  const address = parseMilterAddress(listen);
  const risk = 'whoever can connect to a milter can have mail decrypted and text signed with the site key, and a TCP socket lets every local user connect';
  if (address.kind !== 'unix') return `This is a TCP socket: ${risk}. Prefer a unix socket (milter.listen: unix:PATH).\n`;
  const name = postfixMilterName(listen, queueDirectory);
  const where = name.startsWith('unix:/')
    ? `Postfix reaches ${address.path} only if smtpd and cleanup are not chrooted (chroot column "n" in master.cf). ` +
      `Debian chroots them in ${queueDirectory}: there, put the socket inside it (MUSE_DATA_DIR=${queueDirectory}/muse-milter, ` +
      `or milter.listen: unix:${queueDirectory}/muse-milter/milter.sock) and write unix:muse-milter/milter.sock instead.`
    : `The name is relative to Postfix's queue directory ${queueDirectory}, so it works whether smtpd and cleanup are chrooted there (Debian's default) or not.`;
  return `This is a unix socket (mode 0660, group ${group}) because ${risk}. Every directory above it must let that group through (g+x or o+x). ${where}\n`;
}

/**
 * The data directory of the embedded configuration, created when missing: mode 0710 and the socket's group, so
 * the MTA can reach the socket in it and nothing else (the files in it are private to the daemon).
 */
async function createDataDirectory(config: Config, gid: number | undefined): Promise<void> {
  const exists = await stat(config.dataDirectory).then(
    () => true,
    () => false,
  );
  if (exists) return;
  await mkdir(config.dataDirectory, { recursive: true, mode: 0o710 });
  if (gid !== undefined) await chown(config.dataDirectory, -1, gid);
  // The umask may have narrowed the mode given to mkdir (systemd's UMask=0077 would lock the MTA out).
  await chmod(config.dataDirectory, 0o710);
}

/** First run of the embedded configuration: a site key and what to publish, unless the key exists. */
async function firstRun(config: Config, io: CliIo): Promise<void> {
  const group = await chooseSocketGroup(config.milter.socketGroup, { user: config.user, group: config.group });
  await createDataDirectory(config, group.gid);
  const keyFile = config.site.keyFile as string;
  const exists = await stat(keyFile).then(
    () => true,
    () => false,
  );
  if (exists) {
    io.stderr(`run: using the site key ${keyFile}\n`);
    return;
  }
  const provisioned = await provisionSiteKey(dirname(keyFile), { domain: config.site.domain, policy: 'testing', maxAge: 604_800, ttl: 3600 }, false);
  io.stdout(
    [
      `First run: created the site key of ${config.site.domain} (${provisioned.fingerprint})`,
      `  private key ${provisioned.paths.privateKey} (mode 0600)`,
      '',
      'Publish these records in the DNS zone of the site (also saved in ' + provisioned.paths.zone + '):',
      '',
      provisioned.zone.trimEnd(),
      '',
      'Attach Postfix with these lines in main.cf, then run "postfix reload":',
      '',
      postfixLines(postfixMilterName(config.milter.listen)).trimEnd(),
      '',
      postfixSocketNotes(config.milter.listen, group.description).trimEnd(),
      '',
      '',
    ].join('\n'),
  );
}

/** The run verb. */
export const runVerb: Verb = {
  name: 'run',
  summary: 'run the milter daemon',
  positionals: { usage: '', min: 0, max: 0 },
  options: {
    config: { type: 'string', valueName: 'FILE', description: 'the configuration file (default: the embedded configuration)' },
  },
  details:
    `Without --config the embedded configuration is used: site domain from ${DOMAIN_ENV} (default muse.localhost), ` +
    `data folder from ${DATA_DIR_ENV} (default ./data, created mode 0710), resolvers from ${DNS_ENV} (comma-separated ` +
    `host:port, default 127.0.0.1:53), milter on the unix socket milter.sock in it (mode 0660, group postfix when it ` +
    `exists), metrics from ${METRICS_ENV} (default 127.0.0.1:9464, off for none). ` +
    'On its first run it creates the site key and prints the DNS records and the Postfix lines.\n' +
    'Signals: SIGHUP reloads the configuration and keys; SIGTERM and SIGINT drain in-flight messages and exit. ' +
    'With milter.workers above 1, a primary process relays them to the worker processes.\n' +
    'Exit status: 0 after a clean stop, 1 if the daemon cannot start, 2 usage error.',
  async run(args, io) {
    const path = typeof args.values.config === 'string' ? args.values.config : undefined;
    const load = async (): Promise<Config> => (path === undefined ? defaultConfig() : await loadConfig(path));
    if (isWorker()) {
      // A worker process of a multi-process daemon: the primary prints the rest and relays the signals.
      await runAsWorker(async () => startDaemon({ configPath: path, initialConfig: await load() }));
      return EXIT.OK;
    }
    const config = await load();
    const listening = (milter: string, metrics: string | undefined, workers: string): void =>
      io.stderr(`run: milter listening on ${milter}${workers}${metrics === undefined ? '' : `, metrics on http://${metrics}/metrics`}\n`);
    if (path === undefined) await firstRun(config, io);
    const dnsProblem = await probeResolvers(config);
    if (dnsProblem !== undefined) io.stderr(`run: warning: ${dnsProblem}`);
    for (const memoryProblem of [youngGenerationWarning(), mallocArenaWarning()]) {
      if (memoryProblem !== undefined) io.stderr(`run: warning: ${memoryProblem}\n`);
    }
    const workers = workerCount(config.milter.workers);
    if (workers > 1) {
      const primary = await startPrimary(config, workers);
      listening(primary.milterAddress, primary.metricsAddress, ` (${workers} worker processes)`);
      return (await primary.stopped) ? EXIT.OK : EXIT.FAILURE;
    }
    const daemon = await startDaemon({ configPath: path, initialConfig: config });
    listening(daemon.milterAddress, daemon.metricsAddress, '');
    await daemon.stopped;
    return EXIT.OK;
  },
};
