/**
 * Byte-exact parsing of one MIME entity (a message or a body part) into its header fields and the
 * offset where its body starts. Nothing is decoded or normalised: each field's value keeps its
 * folding and line breaks, and the body is addressed by offset so it is never copied.
 */
import type { HeaderEncoding, HeaderField } from './header-fields.ts';

/** A parsed entity: the fields, and where in the buffer the body starts. */
export interface ParsedEntity {
  readonly fields: HeaderField[];
  /** Offset of the first header byte after the last field (start of the separator line). */
  readonly headerEnd: number;
  /** Offset of the first body byte (after the blank separator line, if there is one). */
  readonly bodyOffset: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

/**
 * Splits `entity` into header fields and body.
 *
 * The header section ends at the first empty line (CRLF or bare LF). A line that is neither a
 * continuation nor `name:value` also ends it, with no separator: RFC 2046 §5.1.1 allows a body
 * part without headers, and such a line is then the first body line.
 */
export function parseEntity(entity: Uint8Array, encoding: HeaderEncoding): ParsedEntity {
  const buf = Buffer.from(entity.buffer, entity.byteOffset, entity.byteLength);
  const fields: { name: string; start: number; colon: number; end: number }[] = [];
  let pos = 0;
  let headerEnd = buf.length;
  let bodyOffset = buf.length;
  while (pos < buf.length) {
    const lf = buf.indexOf(LF, pos);
    const lineEnd = lf === -1 ? buf.length : lf + 1;
    const contentEnd = lf === -1 ? buf.length : lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
    if (contentEnd === pos && lf !== -1) {
      headerEnd = pos;
      bodyOffset = lineEnd;
      break;
    }
    const first = buf[pos];
    const last = fields[fields.length - 1];
    if ((first === SP || first === HT) && last !== undefined) {
      last.end = contentEnd;
    } else {
      const colon = buf.indexOf(COLON, pos);
      if (colon === -1 || colon >= contentEnd || !isFieldName(buf, pos, colon)) {
        headerEnd = pos;
        bodyOffset = pos;
        break;
      }
      fields.push({ name: buf.toString(encoding, pos, colon), start: pos, colon, end: contentEnd });
    }
    pos = lineEnd;
  }
  return {
    fields: fields.map((f) => ({ name: f.name, value: buf.toString(encoding, f.colon + 1, f.end) })),
    headerEnd,
    bodyOffset,
  };
}

/**
 * RFC 5322 §3.6.8 field names are printable ASCII without colon; trailing blanks before the colon
 * are tolerated (obsolete syntax, RFC 5322 §4.5) so such fields stay fields.
 */
function isFieldName(buf: Buffer, start: number, colon: number): boolean {
  if (colon === start) return false;
  let end = colon;
  while (end > start && (buf[end - 1] === SP || buf[end - 1] === HT)) end--;
  if (end === start) return false;
  for (let i = start; i < end; i++) {
    const c = buf[i] ?? 0;
    if (c < 33 || c > 126) return false;
  }
  return true;
}
