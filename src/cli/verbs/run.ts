/**
 * `muse-milter run`: the daemon. With `--config FILE` it runs that configuration (SIGHUP re-reads it);
 * without, it runs the embedded default and, on the first run, creates the site key in the data folder
 * and prints the DNS records to publish and the Postfix lines to paste.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DATA_DIR_ENV, defaultConfig, DNS_ENV, DOMAIN_ENV, loadConfig, type Config } from '../../config/index.ts';
import { formatMilterAddress, parseMilterAddress } from '../../../milter/src/index.ts';
import { isWorker, runAsWorker, startPrimary, workerCount } from '../../daemon/cluster.ts';
import { startDaemon } from '../../daemon/daemon.ts';
import { provisionSiteKey } from '../../keys/index.ts';
import { probeResolvers } from '../resolver-probe.ts';
import { EXIT, type CliIo, type Verb } from '../verb.ts';

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

/** First run of the embedded configuration: a site key and what to publish, unless the key exists. */
async function firstRun(config: Config, io: CliIo): Promise<void> {
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
      postfixLines(formatMilterAddress(parseMilterAddress(config.milter.listen))).trimEnd(),
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
    `data folder from ${DATA_DIR_ENV} (default ./data), resolvers from ${DNS_ENV} (comma-separated host:port, default ` +
    `127.0.0.1:53), milter on inet:127.0.0.1:8899. On its first run it creates the ` +
    'site key and prints the DNS records and the Postfix lines.\n' +
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
