/**
 * The two line formats: JSON (one object per line, for collectors) and text (logfmt-style `key=value` after
 * the message, for people). Both always produce exactly one line: control characters are escaped.
 */
import type { LogFields } from '../../milter/src/index.ts';

/** What one log line is made of. `time` and `level` are left out where the transport adds its own (syslog). */
export interface LineParts {
  readonly time?: Date;
  readonly level?: string;
  readonly message: string;
  /** Already redacted fields. */
  readonly fields: LogFields;
}

/** Names of the line's own keys; a field with one of these names is renamed so it cannot replace them. */
const RESERVED = new Set(['time', 'level', 'message']);

/** `{"time":"…","level":"info","message":"…",…fields}`. */
export function jsonLine(parts: LineParts): string {
  if (Object.keys(parts.fields).some((name) => RESERVED.has(name))) return JSON.stringify(renamedLine(parts));
  // The fields (a plain object from the redaction guard) are serialised as they are and joined to the line's own
  // keys: one line per message comes through here, and copying them into a fresh object first made it several
  // times slower. The line's own keys always come first, even before field names that look like numbers.
  let head = '{';
  if (parts.time !== undefined) head += `"time":${JSON.stringify(parts.time.toISOString())},`;
  if (parts.level !== undefined) head += `"level":${JSON.stringify(parts.level)},`;
  head += `"message":${JSON.stringify(parts.message)}`;
  const fields = JSON.stringify(parts.fields);
  return fields === '{}' ? `${head}}` : `${head},${fields.slice(1)}`;
}

/** The line as an object, fields named like the line's own keys renamed (`field_time`). */
function renamedLine(parts: LineParts): Record<string, unknown> {
  const line: Record<string, unknown> = {};
  if (parts.time !== undefined) line.time = parts.time.toISOString();
  if (parts.level !== undefined) line.level = parts.level;
  line.message = parts.message;
  for (const [name, value] of Object.entries(parts.fields)) line[RESERVED.has(name) ? `field_${name}` : name] = value;
  return line;
}

/** `2026-11-23T10:00:00.000Z info message key=value other="two words" list=a,b`. */
export function textLine(parts: LineParts): string {
  const words: string[] = [];
  if (parts.time !== undefined) words.push(parts.time.toISOString());
  if (parts.level !== undefined) words.push(parts.level);
  words.push(escapeControls(parts.message));
  for (const [name, value] of Object.entries(parts.fields)) {
    if (value !== undefined) words.push(`${name}=${textValue(value)}`);
  }
  return words.join(' ');
}

function textValue(value: unknown): string {
  if (typeof value === 'string') return quoteIfNeeded(value);
  if (Array.isArray(value) && value.every((item) => typeof item !== 'object' || item === null)) {
    return quoteIfNeeded(value.map(String).join(','));
  }
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** Bare when the value is one printable word without `"`, `=` or `\`; JSON-quoted otherwise. */
function quoteIfNeeded(text: string): string {
  return /^[\x21\x23-\x3c\x3e-\x5b\x5d-\x7e]+$/.test(text) ? text : JSON.stringify(text);
}

function escapeControls(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (char) => JSON.stringify(char).slice(1, -1));
}
