/**
 * Makes an entity safe for 7-bit transport before it is signed (RFC 3156 §3, §5): a relay that
 * down-converts 8-bit data, wraps long lines, strips trailing blanks or rewrites `From ` lines
 * would otherwise break the signature. Only leaves that need it are re-encoded (text as
 * quoted-printable, anything else as base64); every other byte, including multipart framing,
 * preambles and part headers, is kept as it was. The input body must be CRLF-canonical.
 */
import { contentTypeOf, multipartBoundary, transferEncodingOf } from './content-fields.ts';
import { parseEntity } from './entity.ts';
import { sameHeaderName, serializeFields, type HeaderField } from './header-fields.ts';
import { MimeError } from './errors.ts';
import { splitMultipart } from './multipart.ts';
import { decodeBase64, decodeQuotedPrintable, encodeBase64Lines, encodeQuotedPrintable } from './transfer-encoding.ts';

/** The entity after the transformation; `changed` is false when the input was already safe. */
export interface SevenBitEntity {
  readonly fields: HeaderField[];
  readonly body: Buffer;
  readonly changed: boolean;
}

/** RFC 5322 §2.1.1: lines must not exceed 998 characters before the CRLF. */
const MAX_LINE = 998;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Returns the entity with every unsafe leaf re-encoded. Throws {@link MimeError} `MIME_DEPTH`
 * when the nesting to descend exceeds `maxDepth`.
 */
export function makeSevenBitSafe(fields: readonly HeaderField[], body: Buffer, maxDepth: number): SevenBitEntity {
  if (isSevenBitSafe(body)) return { fields: [...fields], body, changed: false };
  return transformEntity(fields, body, 0, maxDepth);
}

/**
 * Whether `data` survives a 7-bit relay untouched: ASCII without NUL, every line break a CRLF,
 * lines of at most 998 characters, no trailing blank on a line and no line starting `From `.
 */
export function isSevenBitSafe(data: Buffer): boolean {
  let lineStart = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i] as number;
    if (c === 0 || c > 127) return false;
    if (c === CR) {
      if (data[i + 1] !== LF) return false;
      if (!lineIsSafe(data, lineStart, i)) return false;
      i++;
      lineStart = i + 1;
    } else if (c === LF) {
      return false;
    }
  }
  return lineIsSafe(data, lineStart, data.length);
}

function lineIsSafe(data: Buffer, start: number, end: number): boolean {
  if (end - start > MAX_LINE) return false;
  const last = data[end - 1];
  if (end > start && (last === 0x20 || last === 0x09)) return false;
  return !(end - start >= 5 && data.toString('latin1', start, start + 5) === 'From ');
}

function transformEntity(fields: readonly HeaderField[], body: Buffer, depth: number, maxDepth: number): SevenBitEntity {
  const type = contentTypeOf(fields);
  const encoding = transferEncodingOf(fields);
  const identity = encoding === '7bit' || encoding === '8bit' || encoding === 'binary';
  const boundary = multipartBoundary(type);
  if (boundary !== undefined && identity) return transformMultipart(fields, body, boundary, depth, maxDepth);
  if (type.mediaType === 'message/rfc822' && identity) return transformEncapsulated(fields, body, depth, maxDepth);
  return transformLeaf(fields, body, type.mediaType, encoding);
}

function transformLeaf(fields: readonly HeaderField[], body: Buffer, mediaType: string, encoding: string): SevenBitEntity {
  if (isSevenBitSafe(body)) return { fields: [...fields], body, changed: false };
  let raw: Buffer;
  if (encoding === '7bit' || encoding === '8bit' || encoding === 'binary') raw = body;
  else if (encoding === 'quoted-printable') raw = decodeQuotedPrintable(body);
  else if (encoding === 'base64') raw = decodeBase64(body);
  // An unknown encoding (x-uuencode, …) cannot be re-encoded without changing its meaning.
  else return { fields: [...fields], body, changed: false };
  const asText = mediaType.startsWith('text/');
  const encoded = asText ? encodeQuotedPrintable(raw) : encodeBase64Lines(raw);
  return { fields: withTransferEncoding(fields, asText ? 'quoted-printable' : 'base64'), body: encoded, changed: true };
}

function transformMultipart(
  fields: readonly HeaderField[],
  body: Buffer,
  boundary: string,
  depth: number,
  maxDepth: number,
): SevenBitEntity {
  const layout = splitMultipart(body, boundary);
  // Without delimiters the body cannot be taken apart, and a multipart may not be re-encoded.
  if (layout === null) return { fields: [...fields], body, changed: false };
  const pieces: Buffer[] = [];
  let cursor = 0;
  let changed = false;
  for (const range of layout.parts) {
    const part = transformPart(body.subarray(range.start, range.end), depth + 1, maxDepth);
    pieces.push(body.subarray(cursor, range.start), part.bytes);
    cursor = range.end;
    changed ||= part.changed;
  }
  pieces.push(body.subarray(cursor));
  return finishContainer(fields, body, pieces, changed);
}

function transformEncapsulated(fields: readonly HeaderField[], body: Buffer, depth: number, maxDepth: number): SevenBitEntity {
  const inner = transformPart(body, depth + 1, maxDepth);
  return finishContainer(fields, body, [inner.bytes], inner.changed);
}

/** Transforms one body part (or encapsulated message) given as raw bytes. */
function transformPart(bytes: Buffer, depth: number, maxDepth: number): { bytes: Buffer; changed: boolean } {
  if (depth > maxDepth) throw new MimeError('MIME_DEPTH', `MIME nesting deeper than ${maxDepth}`);
  // Part headers are internal bytes: latin1 keeps every byte as it was.
  const parsed = parseEntity(bytes, 'latin1');
  const result = transformEntity(parsed.fields, bytes.subarray(parsed.bodyOffset), depth, maxDepth);
  if (!result.changed) return { bytes, changed: false };
  const separator = bytes.subarray(parsed.headerEnd, parsed.bodyOffset);
  return { bytes: Buffer.concat([serializeFields(result.fields, 'latin1'), separator, result.body]), changed: true };
}

/** Reassembles a container and relabels an 8bit/binary one as 7bit once its content is 7-bit. */
function finishContainer(fields: readonly HeaderField[], body: Buffer, pieces: Buffer[], changed: boolean): SevenBitEntity {
  if (!changed) return { fields: [...fields], body, changed: false };
  const rebuilt = Buffer.concat(pieces);
  const relabel = transferEncodingOf(fields) !== '7bit' && isSevenBitSafe(rebuilt);
  return { fields: relabel ? withTransferEncoding(fields, '7bit') : [...fields], body: rebuilt, changed: true };
}

/** Sets Content-Transfer-Encoding, replacing the first such field or appending one. */
function withTransferEncoding(fields: readonly HeaderField[], encoding: string): HeaderField[] {
  const index = fields.findIndex((f) => sameHeaderName(f.name, 'Content-Transfer-Encoding'));
  const field = { name: index === -1 ? 'Content-Transfer-Encoding' : (fields[index] as HeaderField).name, value: ' ' + encoding };
  if (index === -1) return [...fields, field];
  return fields.map((f, i) => (i === index ? field : f)).filter((f, i) => i <= index || !sameHeaderName(f.name, 'Content-Transfer-Encoding'));
}
