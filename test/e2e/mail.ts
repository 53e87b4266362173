/**
 * Messages for the e2e suite: composing test messages with exact bytes, taking delivered ones apart (header
 * fields, body, PGP/MIME parts) without re-encoding anything, and hashing bodies.
 */
import { createHash } from 'node:crypto';

const CRLF = '\r\n';
const HEADER_END = Buffer.from('\r\n\r\n');

/** The header fields the sites protect and restore (docs/pgp-mime.md), as a test message sets them. */
export interface TestHeaders {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly date: string;
  readonly messageId: string;
}

/** A composed message and the parts a test compares against. */
export interface TestMessage {
  readonly headers: TestHeaders;
  /** The body bytes exactly (CRLF line ends). */
  readonly body: Buffer;
  /** The whole message as sent. */
  readonly bytes: Buffer;
}

/** Options of {@link composeMessage}. */
export interface ComposeOptions {
  readonly headers: TestHeaders;
  /** Body lines, joined with CRLF and ended with one. */
  readonly bodyLines: readonly string[];
  /** Content-Type and Content-Transfer-Encoding values; default 8-bit UTF-8 text. */
  readonly contentType?: string;
  readonly transferEncoding?: string;
}

/** Builds a message with CRLF line ends throughout, so the bytes a test sends are the bytes it compares. */
export function composeMessage(options: ComposeOptions): TestMessage {
  const { headers } = options;
  const head = [
    `From: ${headers.from}`,
    `To: ${headers.to}`,
    `Subject: ${headers.subject}`,
    `Date: ${headers.date}`,
    `Message-ID: ${headers.messageId}`,
    'MIME-Version: 1.0',
    `Content-Type: ${options.contentType ?? 'text/plain; charset=utf-8'}`,
    `Content-Transfer-Encoding: ${options.transferEncoding ?? '8bit'}`,
  ].join(CRLF);
  const body = Buffer.from(options.bodyLines.map((line) => `${line}${CRLF}`).join(''), 'utf8');
  return { headers, body, bytes: Buffer.concat([Buffer.from(`${head}${CRLF}${CRLF}`, 'utf8'), body]) };
}

let serial = 0;

/**
 * A message from alice@site-a.test to `to` (a To field value), unique to this call (Message-ID, Subject and a
 * body line), with lines that test byte fidelity: 8-bit text, a leading dot, "From " at the start of a line,
 * trailing blanks. `ascii` leaves out what signing would re-encode for 7-bit relays (docs/pgp-mime.md), so a
 * signed clear-text copy can be compared byte for byte.
 */
export function messageFromSiteA(label: string, to: string, options: { readonly ascii?: boolean } = {}): TestMessage {
  serial++;
  const ascii = options.ascii === true;
  return composeMessage({
    headers: {
      from: 'Alice Example <alice@site-a.test>',
      to,
      subject: `Confidential ${label} figures, round ${serial}`,
      date: 'Mon, 23 Nov 2026 10:00:00 +0000',
      messageId: `<${label}.${serial}.${process.pid}@site-a.test>`,
    },
    bodyLines: [
      ascii ? 'Kind regards from the quarterly review.' : 'Grüße aus der Quartalsrunde, naïve café.',
      '',
      '.a line that starts with a dot, stuffed on the wire',
      ...(ascii ? [] : ['From the first column, as mbox would escape it', 'trailing blanks stay exactly as written \t ']),
      `secret token ${label}-${serial}-${process.pid}`,
    ],
    ...(ascii ? { contentType: 'text/plain; charset=us-ascii', transferEncoding: '7bit' } : {}),
  });
}

/** One header field: its name as written and its value with folding removed and outer blanks trimmed. */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/** A message taken apart at its first empty line. */
export interface ParsedMessage {
  readonly fields: readonly HeaderField[];
  /** Everything after the empty line, byte for byte. */
  readonly body: Buffer;
}

/** Splits a message into header fields and body bytes. Throws when it has no empty line. */
export function parseMessage(data: Buffer): ParsedMessage {
  const end = data.indexOf(HEADER_END);
  if (end < 0) throw new Error('message without an empty line after the header');
  const fields: HeaderField[] = [];
  for (const line of data.subarray(0, end).toString('utf8').split(CRLF)) {
    const last = fields.at(-1);
    if (/^[ \t]/.test(line) && last !== undefined) {
      fields[fields.length - 1] = { name: last.name, value: `${last.value} ${line.trim()}` };
      continue;
    }
    const colon = line.indexOf(':');
    fields.push({ name: line.slice(0, colon), value: line.slice(colon + 1).trim() });
  }
  return { fields, body: data.subarray(end + HEADER_END.length) };
}

/** The values of every field called `name` (case-insensitive), in order. */
export function fieldValues(message: ParsedMessage, name: string): string[] {
  return message.fields.filter((field) => field.name.toLowerCase() === name.toLowerCase()).map((field) => field.value);
}

/** The value of the one field called `name`; throws unless there is exactly one. */
export function fieldValue(message: ParsedMessage, name: string): string {
  const values = fieldValues(message, name);
  if (values.length !== 1) throw new Error(`expected one ${name} field, found ${values.length}`);
  return values[0] as string;
}

/** The protected fields of a parsed message, to compare with what was sent. */
export function protectedHeaders(message: ParsedMessage): TestHeaders {
  return {
    from: fieldValue(message, 'From'),
    to: fieldValue(message, 'To'),
    subject: fieldValue(message, 'Subject'),
    date: fieldValue(message, 'Date'),
    messageId: fieldValue(message, 'Message-ID'),
  };
}

/** SHA-256 of some bytes, hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The armored OpenPGP block of `kind` (`MESSAGE`, `SIGNATURE`) in `data`, BEGIN to END line inclusive. */
export function armoredBlock(data: Buffer, kind: 'MESSAGE' | 'SIGNATURE'): Buffer {
  const begin = data.indexOf(`-----BEGIN PGP ${kind}-----`);
  const endMarker = `-----END PGP ${kind}-----`;
  const end = data.indexOf(endMarker, begin);
  if (begin < 0 || end < 0) throw new Error(`no armored PGP ${kind} block`);
  return data.subarray(begin, end + endMarker.length);
}
