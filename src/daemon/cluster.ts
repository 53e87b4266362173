/**
 * Several worker processes behind one milter socket (`milter.workers`), so signing and encryption use every
 * core. node:cluster does the sharing: the primary process binds the socket (TCP or unix) and hands each new
 * MTA connection to a worker in turn. Each worker is a whole daemon (`startDaemon`) with its own keys, DNS
 * cache and runtime, and a copy of the pins kept up to date by the primary; the primary handles no mail.
 *
 * The primary
 * - starts the workers one after another (each once the previous one listens), and stops everything with
 *   exit status 1 if one fails to start;
 * - relays SIGHUP (reload) and SIGTERM/SIGINT (drain and stop) to every worker over the IPC channel, and
 *   exits once all have stopped: 0 when every worker stopped cleanly;
 * - replaces a worker that crashes while serving, so the socket keeps its capacity (a worker that exits
 *   cleanly, because it alone was sent SIGTERM, is not replaced; the primary exits with the last one);
 * - serves `/metrics` with the sum of every worker's metrics (workers bind no metrics port);
 * - holds the one pin store: workers report the pins they learn over the IPC channel, the primary writes
 *   `pins.json` and tells every worker (pin-relay-primary.ts, pin-relay-worker.ts), and waits for the last write
 *   before it exits.
 *
 * Under systemd every process of the unit receives SIGTERM itself; a worker stops once either way.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { withContext, type LogFields, type MilterLogger } from '../../milter/src/index.ts';
import type { Config } from '../config/index.ts';
import { createLogger, type MuseLogger } from '../log/index.ts';
import { clusterRegistry, startMetricsServer, type MetricsServer } from '../metrics/index.ts';
import { openPinDirectory } from '../pins/index.ts';
import type { Daemon } from './daemon.ts';
import { removePidFile, writePidFile } from './pid-file.ts';
import { PinRelayPrimary, type PinRelayPeer } from './pin-relay-primary.ts';
import { PinRelayWorker } from './pin-relay-worker.ts';
import { warnWhenPinStoreFull } from './pin-store-full.ts';
import { workerMallocEnv } from './malloc-arenas.ts';
import { workerExecArgv } from './young-generation.ts';

/** What the primary tells a worker. */
type PrimaryMessage = { readonly muse: 'reload' } | { readonly muse: 'stop' };

/** What a worker tells the primary once it serves. */
interface ReadyMessage {
  readonly muse: 'ready';
  readonly address: string;
}

/** Environment variable carrying a worker's number (1…N), so its log lines can name it. */
const WORKER_ENV = 'MUSE_WORKER';

/** Bound on the primary's wait for the workers after a stop, beyond `milter.shutdownTimeout`. */
const STOP_SLACK_MS = 5000;

/** The number of worker processes `milter.workers` asks for: `auto` is one per core. */
export function workerCount(setting: Config['milter']['workers']): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** True in a worker process of a multi-process daemon. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/** This worker's number (1…N), undefined outside a worker. */
export function workerNumber(): number | undefined {
  const value = process.env[WORKER_ENV];
  return cluster.isWorker && value !== undefined ? Number(value) : undefined;
}

/**
 * A logger whose every line also carries `fields` (a worker's number and pid): the milter library's context
 * layer (which drops debug lines before merging anything when the logger does not write them), plus the daemon
 * logger's own methods.
 */
export function withLogFields(logger: MuseLogger, fields: LogFields): MuseLogger {
  const context = withContext(logger, fields);
  return {
    ...context,
    notice: (message, extra) => logger.notice(message, Object.assign({}, fields, extra)),
    isDebugEnabled: () => logger.isDebugEnabled?.() ?? true,
    setLevel: (level) => logger.setLevel(level),
    close: () => logger.close(),
  };
}

/**
 * In a worker: starts the daemon, reports it ready to the primary and follows the primary's reload and stop
 * requests; resolves once the daemon has stopped. Whether it stops or cannot start (the error is rethrown), the
 * IPC channel is closed at the end, so the process can exit and the primary sees it go.
 */
export async function runAsWorker(start: () => Promise<Daemon>): Promise<void> {
  let daemon: Daemon;
  try {
    daemon = await start();
  } catch (error) {
    cluster.worker?.disconnect();
    throw error;
  }
  const onMessage = (message: PrimaryMessage): void => {
    if (message.muse === 'reload') void daemon.reload();
    else if (message.muse === 'stop') void daemon.stop();
  };
  process.on('message', onMessage);
  process.send?.({ muse: 'ready', address: daemon.milterAddress } satisfies ReadyMessage);
  await daemon.stopped;
  process.off('message', onMessage);
  cluster.worker?.disconnect();
}

let relayToPrimary: PinRelayWorker | undefined;

/**
 * In a worker: the pin relay to the primary, over this process's IPC channel; created on first use (the first
 * runtime with pins enabled) and shared by every runtime a reload builds.
 * @param log where malformed messages from the primary are reported
 */
export function pinRelayToPrimary(log: MilterLogger): PinRelayWorker {
  relayToPrimary ??= new PinRelayWorker(
    {
      send: (message) => {
        if (!process.connected || process.send === undefined) return false;
        // With a callback a failed send is not thrown; the channel's 'disconnect' then fails what is waiting.
        process.send(message, undefined, {}, () => undefined);
        return true;
      },
      onMessage: (listener) => process.on('message', listener),
      onClose: (listener) => process.once('disconnect', listener),
    },
    log,
  );
  return relayToPrimary;
}

/** Sends a message to a worker unless its channel has closed (a worker that is exiting); a failed send is dropped. */
function sendTo(worker: Worker, message: object): void {
  if (worker.isConnected()) worker.send(message, undefined, () => undefined);
}

/** The running primary. */
export interface Primary {
  /** The milter socket, in Postfix's syntax (as the first worker reported it). */
  readonly milterAddress: string;
  readonly metricsAddress: string | undefined;
  /** Resolves when every worker has exited: true when all stopped cleanly after a stop request. */
  readonly stopped: Promise<boolean>;
}

/**
 * Starts `count` workers running the same command line and supervises them.
 * @throws Error when a worker cannot start (the others are stopped first)
 */
export async function startPrimary(config: Config, count: number): Promise<Primary> {
  const logger = withLogFields(createLogger(config.logging), { role: 'primary', pid: process.pid });
  const live = new Map<number, Worker>();
  let stopping = false;
  let clean = true;
  let resolveStopped: (clean: boolean) => void = () => {};
  const stopped = new Promise<boolean>((resolve) => {
    resolveStopped = resolve;
  });
  const peerOf = (number: number, worker: Worker): PinRelayPeer => ({ worker: number, send: (message) => sendTo(worker, message) });
  const pins = new PinRelayPrimary({
    directory: config.pins.directory as string,
    open: (directory) => openPinDirectory(directory, { onFull: warnWhenPinStoreFull(logger, directory) }),
    peers: () => [...live].map(([number, worker]) => peerOf(number, worker)),
    log: logger,
  });

  // Every worker runs with the young-generation cap and two allocator arenas, whether or not the primary was
  // started with them.
  cluster.setupPrimary({ execArgv: workerExecArgv() });
  const startWorker = (number: number): Promise<string> => {
    const worker = cluster.fork({ ...workerMallocEnv(), [WORKER_ENV]: String(number) });
    live.set(number, worker);
    const peer = peerOf(number, worker);
    worker.on('message', (message: unknown) => pins.receive(peer, message));
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: ReadyMessage) => {
        if (message?.muse !== 'ready' || ready) return;
        ready = true;
        resolve(message.address);
      });
      worker.once('exit', (code, signal) => {
        live.delete(number);
        if (!ready) {
          reject(new Error(`worker ${number} exited during start-up (${signal ?? `exit status ${code}`})`));
        } else if (stopping || code === 0) {
          // Exit status 0 outside a stop: the worker was stopped on purpose (a signal sent to it alone).
          if (code !== 0) clean = false;
          if (!stopping) logger.warn('worker stopped', { worker: number, workerPid: worker.process.pid, workersLeft: live.size });
        } else {
          logger.error('worker died; starting a replacement', { worker: number, workerPid: worker.process.pid, code, signal });
          startWorker(number).catch((error: Error) => {
            logger.error('replacement worker failed; stopping', { worker: number, error: error.message });
            clean = false;
            stop();
          });
        }
        if (live.size === 0 && (stopping || ready)) resolveStopped(clean);
      });
    });
  };

  const broadcast = (message: PrimaryMessage): void => {
    for (const worker of live.values()) sendTo(worker, message);
  };
  let metricsServer: MetricsServer | undefined;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping: draining the workers', { workers: live.size });
    broadcast({ muse: 'stop' });
    const deadline = setTimeout(() => {
      for (const worker of live.values()) worker.process.kill('SIGKILL');
    }, config.milter.shutdownTimeout + STOP_SLACK_MS);
    deadline.unref();
    if (live.size === 0) resolveStopped(clean);
  };

  let milterAddress = '';
  try {
    for (let number = 1; number <= count; number++) milterAddress = await startWorker(number);
    if (config.metrics.enabled) metricsServer = await startMetricsServer(clusterRegistry(), config.metrics.listen);
    // The primary is the process to signal: it relays SIGHUP and SIGTERM to every worker (workers write none).
    if (config.pidFile !== undefined) await writePidFile(config.pidFile);
  } catch (error) {
    stop();
    await stopped;
    await pins.settled();
    await metricsServer?.close();
    await logger.close();
    throw error;
  }

  process.on('SIGHUP', () => {
    logger.info('reload requested: relaying to the workers', { workers: live.size });
    broadcast({ muse: 'reload' });
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  logger.info('muse-milter workers started', { workers: count, milter: milterAddress, metrics: metricsServer?.address });

  const finished = stopped.then(async (wasClean) => {
    // A pin reported by a worker that has gone since is still written before the process ends.
    await pins.settled();
    await metricsServer?.close();
    if (config.pidFile !== undefined) await removePidFile(config.pidFile);
    logger.info('muse-milter stopped', { clean: wasClean });
    await logger.close();
    return wasClean;
  });
  return { milterAddress, metricsAddress: metricsServer?.address, stopped: finished };
}
