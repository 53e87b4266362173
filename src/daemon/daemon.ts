/**
 * The muse-milter process: configuration, keys, logging, metrics, the milter server, privilege drop,
 * and the signals an administrator uses — SIGHUP reloads configuration and keys without dropping
 * connections (messages in progress finish under the rules they started with), SIGTERM and SIGINT
 * drain in-flight messages and exit.
 */
import { stat } from 'node:fs/promises';
import { loadConfig, type Config } from '../config/index.ts';
import { createLogger, type MuseLogger } from '../log/index.ts';
import { createMetrics, shareWithPrimary, startMetricsServer, type MetricsServer, type MuseMetrics } from '../metrics/index.ts';
import { MilterServer, parseMilterAddress, sweepSpoolDirectory } from '../../milter/src/index.ts';
import { buildRuntime } from './build-runtime.ts';
import { withLogFields, workerNumber } from './cluster.ts';
import { museMilter } from './filter.ts';
import { resolveRunAccount, type RunAccount } from './account-access.ts';
import { handOverToAccount, preexistingDirectories } from './hand-over.ts';
import { removePidFile, writePidFile } from './pid-file.ts';
import { dropPrivileges } from './privileges.ts';
import { chooseSocketGroup, socketPathProblems } from './socket-group.ts';
import type { Runtime } from './runtime.ts';

/** How the daemon gets its configuration: a file (reloadable) or an embedded default. */
export interface DaemonOptions {
  /** The configuration file; SIGHUP re-reads it. */
  configPath: string | undefined;
  /** The configuration when there is no file (the embedded default). */
  initialConfig: Config;
  /** Install signal handlers (off in tests that drive reload and stop directly). */
  handleSignals?: boolean;
  /** Where the `stdout` and `stderr` log targets write instead of the process's own (tests read the lines). */
  logStream?: NodeJS.WritableStream;
}

/** A running daemon. */
export interface Daemon {
  readonly milterAddress: string;
  readonly metricsAddress: string | undefined;
  readonly logger: MuseLogger;
  /** The runtime in force. */
  runtime(): Runtime;
  /** Re-reads the configuration file and keys; keeps the old runtime if anything is wrong. */
  reload(): Promise<boolean>;
  /** Stops accepting, drains in-flight messages (bounded by milter.shutdownTimeout), closes everything. */
  stop(): Promise<void>;
  /** Resolves when the daemon has stopped. */
  readonly stopped: Promise<void>;
}

function reloadableDifferences(before: Config, after: Config): string[] {
  const fixed: Array<[string, unknown, unknown]> = [
    ['milter.listen', before.milter.listen, after.milter.listen],
    ['milter.socketMode', before.milter.socketMode, after.milter.socketMode],
    ['milter.socketGroup', before.milter.socketGroup, after.milter.socketGroup],
    ['milter.workers', before.milter.workers, after.milter.workers],
    ['metrics.listen', before.metrics.listen, after.metrics.listen],
    ['logging', JSON.stringify(before.logging), JSON.stringify(after.logging)],
    ['user', before.user, after.user],
  ];
  return fixed.filter(([, a, b]) => a !== b).map(([name]) => name);
}

/** Starts the daemon. Throws (with a message naming the problem) if it cannot start. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const config = options.initialConfig;
  const worker = workerNumber();
  const baseLogger = createLogger(config.logging, options.logStream === undefined ? {} : { stream: options.logStream });
  // A worker of a multi-process daemon names itself in every line, so a message can be traced to a process.
  const logger = worker === undefined ? baseLogger : withLogFields(baseLogger, { worker, pid: process.pid });
  const metrics: MuseMetrics | undefined = config.metrics.enabled ? createMetrics() : undefined;
  // Started as root with an account to switch to: what the daemon creates now must belong to that account.
  const account: RunAccount | undefined = process.geteuid?.() === 0 ? await resolveRunAccount(config) : undefined;
  const before = account === undefined ? undefined : await preexistingDirectories(config);
  let runtime = await buildRuntime(config, { metrics, log: logger });
  // A reload keeps the same lanes (build-runtime.ts), so the gauges follow the one object for the daemon's life.
  metrics?.watchDecryptions(runtime.openingLanes);
  const address = parseMilterAddress(config.milter.listen);
  const socketGroup = address.kind === 'unix' ? await chooseSocketGroup(config.milter.socketGroup, { user: config.user, group: config.group }) : undefined;
  // Message bodies and encrypted output spilled by a process that crashed are clear text nobody will read again:
  // remove them before serving (those of live workers sharing the directory stay).
  const leftovers = await sweepSpoolDirectory(config.milter.spoolDirectory as string);
  if (leftovers.length > 0) logger.notice('removed spool files left by a process that ended without cleaning up', { directory: config.milter.spoolDirectory, count: leftovers.length });
  const server = await MilterServer.start(
    museMilter(() => runtime),
    {
      listen: config.milter.listen,
      socketMode: config.milter.socketMode,
      ...(socketGroup?.gid === undefined ? {} : { socketGroup: socketGroup.gid }),
      idleTimeout: config.milter.idleTimeout,
      progressInterval: config.milter.progressInterval,
      maxFrameSize: config.milter.maxFrameSize,
      maxBufferedBody: config.milter.maxBufferedBody,
      maxConnections: config.milter.maxConnections,
      spoolDirectory: config.milter.spoolDirectory as string,
      // The same object for the daemon's life: a reload changes its rate (build-runtime.ts).
      bodyPacer: runtime.bodyRate,
      logger,
    },
  );
  // Large bodies wait only while smaller messages are in flight beside them (byte-rate.ts).
  runtime.bodyRate.contended = () => server.transactionsInFlight > server.largeBodiesInFlight;
  server.on('connection', () => metrics?.milterConnections.inc());
  server.on('connectionClosed', () => metrics?.milterConnections.dec());
  let metricsServer: MetricsServer | undefined;
  try {
    // A worker's metrics are served by the primary, summed with the other workers' (cluster.ts).
    if (metrics !== undefined && worker !== undefined) shareWithPrimary(metrics.registry);
    else if (metrics !== undefined) metricsServer = await startMetricsServer(metrics.registry, config.metrics.listen);
    if (address.kind === 'unix') {
      const gid = (await stat(address.path)).gid;
      // A set-group-id directory may have given the socket the group this process could not.
      if (socketGroup?.warning !== undefined && gid !== socketGroup.wanted) logger.warn(socketGroup.warning);
      // Root's group: only root (Sendmail) connects, and root passes every directory.
      const problems = gid === 0 ? [] : await socketPathProblems(address.path, gid);
      for (const problem of problems) logger.warn(`milter socket ${address.path}: ${problem}`);
    } else {
      logger.warn(`milter.listen is ${config.milter.listen}: every local user can connect to a TCP socket and have mail decrypted or text signed with the site key; prefer a unix socket`);
    }
    if (account !== undefined && before !== undefined) await handOverToAccount(config, options.configPath, account, before, logger);
    // Written while still root: a pid file usually lives in a directory only root may write (/run).
    if (config.pidFile !== undefined && worker === undefined) await writePidFile(config.pidFile);
    // Keys and secrets were read above, sockets are bound: root is no longer needed.
    await dropPrivileges({ user: config.user, group: config.group }, logger);
  } catch (error) {
    await server.close(0);
    await metricsServer?.close();
    throw error;
  }
  logger.info('muse-milter started', {
    milter: server.address,
    metrics: metricsServer?.address,
    site: config.site.domain,
    fingerprint: runtime.signingFingerprint,
    testing: config.policy.testing,
  });

  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;

  const reload = async (): Promise<boolean> => {
    if (options.configPath === undefined) {
      logger.warn('reload requested, but the embedded configuration has no file to re-read; keys are re-read');
    }
    try {
      const next = options.configPath === undefined ? runtime.config : await loadConfig(options.configPath);
      const ignored = reloadableDifferences(runtime.config, next);
      const built = await buildRuntime(next, { metrics, log: logger }, runtime);
      runtime = built;
      metrics?.configReloads.inc({ result: 'success' });
      logger.info('configuration reloaded', { fingerprint: built.signingFingerprint, ...(ignored.length > 0 ? { needsRestart: ignored } : {}) });
      return true;
    } catch (error) {
      metrics?.configReloads.inc({ result: 'failure' });
      logger.error('reload failed; the previous configuration stays in force', { error: (error as Error).message });
      return false;
    }
  };

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping: draining in-flight messages', { inFlight: server.transactionsInFlight });
      await server.close(config.milter.shutdownTimeout);
      await metricsServer?.close();
      if (config.pidFile !== undefined && worker === undefined) await removePidFile(config.pidFile);
      logger.info('muse-milter stopped');
      await logger.close();
      resolveStopped();
    })();
    return stopping;
  };

  if (options.handleSignals !== false) {
    process.on('SIGHUP', () => void reload());
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  }

  return {
    milterAddress: server.address,
    metricsAddress: metricsServer?.address,
    logger,
    runtime: () => runtime,
    reload,
    stop,
    stopped,
  };
}
