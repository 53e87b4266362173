/**
 * The header list model shared by the outbound and inbound paths.
 *
 * A header field is kept exactly as it travelled: `value` is everything after the colon, leading
 * whitespace included, with folded lines joined by their original line breaks (CRLF on the wire).
 * Serialising a field is therefore `name + ':' + value + CRLF` and never re-folds or re-encodes.
 */

/** One header field as on the wire: `name` without the colon, `value` raw (leading space kept). */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/**
 * How header strings map to bytes. `latin1` is lossless for any byte (one char per byte);
 * `utf8` suits a caller that decodes header bytes as UTF-8. The same encoding must be used in
 * both directions so that raw 8-bit header values survive the round trip.
 */
export type HeaderEncoding = 'utf8' | 'latin1';

const CRLF = '\r\n';

/** Case-insensitive header name comparison (RFC 5322 §1.2.2); surrounding blanks are ignored. */
export function sameHeaderName(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/** All fields called `name`, in order. */
export function fieldsNamed(fields: readonly HeaderField[], name: string): HeaderField[] {
  return fields.filter((f) => sameHeaderName(f.name, name));
}

/** The raw value of the first field called `name`, or `undefined`. */
export function firstValue(fields: readonly HeaderField[], name: string): string | undefined {
  return fields.find((f) => sameHeaderName(f.name, name))?.value;
}

/** Whether the field name starts with `Content-` (the MIME entity headers of RFC 2045 §9). */
export function isContentField(name: string): boolean {
  return name.trim().toLowerCase().startsWith('content-');
}

/** Serialises fields byte-exactly as `name:value CRLF` each, without the blank separator line. */
export function serializeFields(fields: readonly HeaderField[], encoding: HeaderEncoding): Buffer {
  return Buffer.from(fields.map((f) => f.name + ':' + f.value + CRLF).join(''), encoding);
}

/** Bytes the fields occupy on the wire (what the header-size limit counts). */
export function headerByteLength(fields: readonly HeaderField[], encoding: HeaderEncoding): number {
  let total = 0;
  for (const f of fields) total += Buffer.byteLength(f.name, encoding) + Buffer.byteLength(f.value, encoding) + 3;
  return total;
}

/** Undoes RFC 5322 folding: a line break followed by a blank becomes that blank. */
export function unfold(value: string): string {
  return value.replace(/\r?\n(?=[ \t])/g, '');
}
