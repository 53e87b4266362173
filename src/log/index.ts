/** Logging for the daemon: the logger, the per-message summary line, the redaction guard. This file is the public API of `src/log/`. */
export { createLogger, type LoggerOptions, type MuseLogger } from './logger.ts';
export { MESSAGE_LINE_TEXT, messageLine, type MessageSummary } from './message-line.ts';
export { REDACTED, redactFields, redactText } from './redact.ts';
