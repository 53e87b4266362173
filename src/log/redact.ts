/**
 * The redaction guard every log line passes through. The milter holds message bodies in clear and the site's
 * private key; neither may ever reach a log, whatever a caller passes by mistake. The guard works on names
 * (a field called `body`, `privateKey`, `subject`…) and on content (armored OpenPGP data, raw bytes), so a
 * secret is caught even under an innocent name.
 */
import type { LogFields } from '../../milter/src/index.ts';

/** What replaces a value the guard refuses to log. */
export const REDACTED = '[redacted]';

/**
 * Field names that carry message content or key material. Numbers and booleans under these names are kept
 * (a `bodyBytes` count says nothing about the body); anything else is replaced. The Subject is content too:
 * header protection hides it on the wire, a log line must not undo that.
 */
const SENSITIVE_NAME = /body|payload|plaintext|cleartext|ciphertext|private|secret|passphrase|password|armou?r|subject|^key$|keymaterial|keydata/i;

/** Names that say the value is a place or an identifier, not the thing itself (`privateKeyFile`, `secretPath`). */
const REFERENCE_NAME = /(?:file|path|dir|directory|fingerprints?)$/i;

/** The start of every armored OpenPGP block: private keys, messages, signatures. */
const ARMOR_MARKER = '-----BEGIN PGP';

/** Nesting followed before a value is replaced wholesale; log fields are flat in practice. */
const MAX_DEPTH = 4;

/** Replaces any text holding armored OpenPGP data. */
export function redactText(text: string): string {
  return text.includes(ARMOR_MARKER) ? REDACTED : text;
}

/**
 * Returns a copy of `fields` that is safe to log: sensitive names and armored text redacted, raw bytes replaced
 * by their length, errors reduced to their name, code and message, functions and symbols dropped.
 */
export function redactFields(fields: LogFields): LogFields {
  return redactObject(fields, 0);
}

function redactObject(fields: Readonly<Record<string, unknown>>, depth: number): LogFields {
  const safe: LogFields = {};
  for (const [name, value] of Object.entries(fields)) {
    const sensitive = sensitiveName(name) && !isHarmlessScalar(value);
    const redacted = sensitive ? REDACTED : redactValue(value, depth + 1);
    if (redacted !== undefined) safe[name] = redacted;
  }
  return safe;
}

/**
 * Verdicts on field names already seen. Names come from the code, so there are few of them, and every
 * line repeats them: two regular expressions per field and line add up. Bounded all the same.
 */
const nameVerdicts = new Map<string, boolean>();
const MAX_NAME_VERDICTS = 1024;

function sensitiveName(name: string): boolean {
  let verdict = nameVerdicts.get(name);
  if (verdict === undefined) {
    verdict = SENSITIVE_NAME.test(name) && !REFERENCE_NAME.test(name);
    if (nameVerdicts.size < MAX_NAME_VERDICTS) nameVerdicts.set(name, verdict);
  }
  return verdict;
}

function isHarmlessScalar(value: unknown): boolean {
  return typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `${REDACTED} ${value.byteLength} bytes`;
  if (value instanceof Error) return redactText(describeError(value));
  if (value instanceof Date) return value.toISOString();
  if (depth > MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1) ?? null);
  const prototype = Object.getPrototypeOf(value) as unknown;
  // Class instances (streams, keys, sockets) have no business in a log line, and may hold secrets.
  if (prototype !== Object.prototype && prototype !== null) return REDACTED;
  return redactObject(value as Record<string, unknown>, depth);
}

/** `KeyError KEY_FILE_INSECURE: message`: what an operator needs, without the stack. */
function describeError(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`;
}
