/**
 * The logging seam: the library never writes to the console or a global logger. Pass any object with
 * these four methods (a winston logger fits as is); the default drops everything.
 */

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A minimal structured logger. */
export interface MilterLogger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** A logger that discards every line. */
export const silentLogger: MilterLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Returns a logger that adds `context` to every line, e.g. the connection id. */
export function withContext(logger: MilterLogger, context: LogFields): MilterLogger {
  const merge = (fields?: LogFields): LogFields => ({ ...context, ...fields });
  return {
    debug: (message, fields) => logger.debug(message, merge(fields)),
    info: (message, fields) => logger.info(message, merge(fields)),
    warn: (message, fields) => logger.warn(message, merge(fields)),
    error: (message, fields) => logger.error(message, merge(fields)),
  };
}
