/**
 * The daemon's logger: winston with syslog severities, one line per call, JSON or text, written to stdout,
 * stderr or syslog. Every line passes the redaction guard first. It satisfies the milter library's
 * `MilterLogger`, so the same object serves the protocol layer and the daemon.
 */
import { hostname } from 'node:os';
import { getSystemErrorName } from 'node:util';
import winston from 'winston';
import { Syslog } from 'winston-syslog';
import type { LogFields, MilterLogger } from '../../milter/src/index.ts';
import type { LoggingConfig, LogLevel } from '../config/index.ts';
import { jsonLine, textLine } from './line-format.ts';
import { redactFields, redactText } from './redact.ts';

/** Test seams of {@link createLogger}. */
export interface LoggerOptions {
  /** Where the `stdout` and `stderr` targets write (default: the process's own). */
  readonly stream?: NodeJS.WritableStream;
  /** The clock stamped on stream lines (default: the system clock). */
  readonly now?: () => Date;
  /** Where failures of the log output itself are reported (default: the process's stderr). */
  readonly errors?: NodeJS.WritableStream;
}

/** The daemon's logger. `warn` writes the syslog severity `warning`. */
export interface MuseLogger extends MilterLogger {
  /** A normal but significant event (start, stop, configuration reloaded). */
  notice(message: string, fields?: LogFields): void;
  /** Changes the most verbose severity written, e.g. after a configuration reload. */
  setLevel(level: LogLevel): void;
  /** Writes what is pending and releases the output (the syslog socket); the logger is unusable afterwards. */
  close(): Promise<void>;
}

/** The key under which a call's fields travel through winston, apart from winston's own keys. */
const FIELDS = Symbol('fields');

/** winston's key for the finished line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');

/** Builds the logger described by the `logging` section. */
export function createLogger(config: LoggingConfig, options: LoggerOptions = {}): MuseLogger {
  const toSyslog = config.target === 'syslog';
  const now = options.now ?? (() => new Date());
  const render = config.format === 'json' ? jsonLine : textLine;
  const lineFormat = winston.format((info) => {
    info[MESSAGE] = render({
      // Syslog stamps the time itself, and carries the severity in the priority; text lines there skip both.
      time: toSyslog ? undefined : now(),
      level: toSyslog && config.format === 'text' ? undefined : info.level,
      message: String(info.message),
      fields: (info[FIELDS] as LogFields | undefined) ?? {},
    });
    return info;
  });
  const syslog = toSyslog ? syslogTransport(config.syslog) : undefined;
  const transport = syslog ?? new winston.transports.Stream({ stream: options.stream ?? (config.target === 'stderr' ? process.stderr : process.stdout), eol: '\n' });
  const logger = winston.createLogger({ levels: winston.config.syslog.levels, level: config.level, format: lineFormat(), transports: [transport] });
  const reported = new Set<string>();
  logger.on('error', (error: Error & { code?: unknown }) => {
    // winston-syslog keeps a line whose send failed in a queue it never retries for unix datagram and UDP
    // sockets; left there, such lines would only grow memory and hold up close() for seconds.
    if (syslog !== undefined) syslog.queue.length = 0;
    // The log itself is what failed: say so on stderr, once per kind of failure rather than once per line.
    // unix-dgram reports a negative errno number as the code.
    const kind = typeof error.code === 'number' && error.code < 0 ? getSystemErrorName(error.code) : String(error.code ?? error.message);
    if (!reported.has(kind)) {
      reported.add(kind);
      (options.errors ?? process.stderr).write(`muse-milter: cannot write the log (${kind}); lines are being lost\n`);
    }
  });

  const write = (level: string, message: string, fields?: LogFields): void => {
    // Skip the redaction work for lines the level drops (debug lines in production).
    if (!logger.isLevelEnabled(level)) return;
    logger.log({ level, message: redactText(message), [FIELDS]: redactFields(fields ?? {}) });
  };
  return {
    debug: (message, fields) => write('debug', message, fields),
    info: (message, fields) => write('info', message, fields),
    notice: (message, fields) => write('notice', message, fields),
    warn: (message, fields) => write('warning', message, fields),
    error: (message, fields) => write('error', message, fields),
    isDebugEnabled: () => logger.isLevelEnabled('debug'),
    setLevel: (level) => {
      logger.level = level;
    },
    close: async () => {
      // winston's own end() ends the transport before the lines still buffered inside the logger reach it,
      // so they would be lost: wait until the pipe has handed every line over, then end the transport.
      while (logger.readableLength > 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const closed = syslog === undefined ? Promise.resolve() : new Promise<void>((resolve) => syslog.once('closed', () => resolve()));
      await new Promise<void>((resolve) => transport.end(() => resolve()));
      // Ending the transport unpipes it from the logger, and winston-transport then calls its close(), which
      // closes the socket once the last datagram is sent. Calling close() here as well would close the native
      // socket twice, which aborts the process (unix-dgram asserts). Over UDP the package miscounts the lines
      // sent before its socket was ready, so its close() gives up waiting only after about 4 s.
      await closed;
    },
  };
}

/**
 * The syslog transport: the local socket (a unix datagram socket) or a UDP server. Messages are RFC 3164 lines,
 * which every syslog daemon reads; the package's RFC 5424 timestamps are wrong outside UTC, so that form is not
 * offered.
 */
function syslogTransport(config: LoggingConfig['syslog']): Syslog {
  const common = { facility: config.facility, appName: config.appName, type: 'BSD' };
  if (config.path !== undefined) {
    // Unconnected sends: every datagram is addressed to the path, so a restarted syslog daemon is picked up at
    // once (the package's connected mode loses lines when the socket queue is full). The local daemon adds the
    // host name itself; RFC 3164 lines on /dev/log go without one, as logger(1) sends them.
    return new Syslog({ ...common, protocol: 'unix', path: config.path, localhost: '' });
  }
  const family = config.host?.includes(':') === true ? 'udp6' : 'udp4';
  return new Syslog({ ...common, protocol: family, host: config.host, port: config.port, localhost: hostname() });
}
