/**
 * The ESMTP parameters of MAIL FROM and RCPT TO that a re-injected copy keeps: those that say how the message
 * must be handled wherever it goes (RFC 6531 SMTPUTF8, RFC 3461 DSN: ENVID, RET, NOTIFY, ORCPT), not those that
 * describe the original transfer (SIZE, BODY, AUTH: the copy is a different message, sent by us). Each parameter
 * comes from the sending client, through the MTA, as a binary string (one character per byte): it is read by the RFC 5321 §4.1.2 grammar (with RFC 6531's
 * UTF-8 in values) and anything that does not follow it is left out, so nothing can smuggle a line break or a
 * second parameter into the command we write.
 */

/** The parameters kept, by command, and the SMTP service extension each needs the server to announce. */
const KEPT = {
  mail: new Map([
    ['SMTPUTF8', 'SMTPUTF8'],
    ['ENVID', 'DSN'],
    ['RET', 'DSN'],
  ]),
  rcpt: new Map([
    ['NOTIFY', 'DSN'],
    ['ORCPT', 'DSN'],
  ]),
} as const;

/** One parameter as read. */
export interface EsmtpParameter {
  /** The keyword in upper case. */
  readonly keyword: string;
  /** The value, or undefined for a keyword alone (`SMTPUTF8`). */
  readonly value: string | undefined;
}

/** Which parameters of a list are kept, and which were left out (for the log). */
export interface KeptParameters {
  readonly kept: readonly EsmtpParameter[];
  /** Parameters that do not follow the grammar, as given. */
  readonly malformed: readonly string[];
}

const isAlnum = (code: number): boolean => (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);

/** esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
function isKeyword(text: string): boolean {
  if (text.length === 0 || !isAlnum(text.charCodeAt(0))) return false;
  for (let i = 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!isAlnum(code) && code !== 0x2d) return false;
  }
  return true;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii): no space, no control, no "=". The text is a binary
 * string (one character per byte, as the milter protocol delivers it), so non-ASCII bytes must form valid UTF-8.
 */
function isValue(text: string): boolean {
  if (text.length === 0) return false;
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff || code < 0x21 || code === 0x3d || code === 0x7f) return false;
    if (code >= 0x80) ascii = false;
  }
  if (ascii) return true;
  try {
    strictUtf8.decode(Buffer.from(text, 'latin1'));
    return true;
  } catch {
    return false;
  }
}

/** Reads one `keyword[=value]` parameter; undefined when it does not follow the grammar. */
export function readEsmtpParameter(text: string): EsmtpParameter | undefined {
  const equals = text.indexOf('=');
  const keyword = equals === -1 ? text : text.slice(0, equals);
  const value = equals === -1 ? undefined : text.slice(equals + 1);
  if (!isKeyword(keyword) || (value !== undefined && !isValue(value))) return undefined;
  return { keyword: keyword.toUpperCase(), value };
}

/** The parameters of `command` worth keeping on a copy, in their order. */
export function keptParameters(command: 'mail' | 'rcpt', parameters: readonly string[]): KeptParameters {
  const kept: EsmtpParameter[] = [];
  const malformed: string[] = [];
  for (const text of parameters) {
    const parameter = readEsmtpParameter(text);
    if (parameter === undefined) malformed.push(text);
    else if (KEPT[command].has(parameter.keyword) && !kept.some((p) => p.keyword === parameter.keyword)) kept.push(parameter);
  }
  return { kept, malformed };
}

/** The service extension a kept parameter needs the server to announce in its EHLO reply. */
export function extensionOf(command: 'mail' | 'rcpt', parameter: EsmtpParameter): string {
  return KEPT[command].get(parameter.keyword) ?? parameter.keyword;
}

/** The parameter as written on the command line. */
export function formatEsmtpParameter(parameter: EsmtpParameter): string {
  return parameter.value === undefined ? parameter.keyword : `${parameter.keyword}=${parameter.value}`;
}
