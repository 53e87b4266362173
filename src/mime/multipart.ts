/**
 * Byte-exact multipart splitting (RFC 2046 §5.1.1). Parts are returned as offsets into the body,
 * so nothing is copied, and the bytes of a part are exactly what a signature over it covers: from
 * the byte after the delimiter line's line break up to, not including, the line break that
 * precedes the next delimiter (that line break belongs to the delimiter).
 */

/** A half-open byte range `[start, end)` into the multipart body. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** The parts of a multipart body, as ranges into it. */
export interface MultipartLayout {
  readonly preamble: ByteRange;
  readonly parts: ByteRange[];
  /** Bytes after the close delimiter line; `null` when the close delimiter is missing. */
  readonly epilogue: ByteRange | null;
}

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

/** A delimiter found in the body: where its preceding line break starts and where its line ends. */
interface Delimiter {
  readonly breakStart: number;
  readonly lineEnd: number;
  readonly close: boolean;
}

/**
 * Splits `body` on `boundary`. Returns `null` when no delimiter line is present at all.
 * A line counts as a delimiter only when it is `--boundary` (or `--boundary--`) optionally
 * followed by blanks (RFC 2046 transport padding): a longer line that merely starts with the
 * boundary is content.
 */
export function splitMultipart(body: Uint8Array, boundary: string): MultipartLayout | null {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const marker = Buffer.from('--' + boundary, 'latin1');
  const delimiters: Delimiter[] = [];
  let from = 0;
  for (;;) {
    const found = nextDelimiter(buf, marker, from);
    if (found === null) break;
    delimiters.push(found);
    if (found.close) break;
    from = found.lineEnd;
  }
  const first = delimiters[0];
  if (first === undefined) return null;
  const parts: ByteRange[] = [];
  for (let i = 0; i + 1 < delimiters.length; i++) {
    const current = delimiters[i] as Delimiter;
    const next = delimiters[i + 1] as Delimiter;
    parts.push({ start: current.lineEnd, end: next.breakStart });
  }
  const last = delimiters[delimiters.length - 1] as Delimiter;
  if (!last.close) parts.push({ start: last.lineEnd, end: buf.length });
  return {
    preamble: { start: 0, end: first.breakStart },
    parts,
    epilogue: last.close ? { start: last.lineEnd, end: buf.length } : null,
  };
}

/** Whether any line of `data` starts with `--boundary` (used to reject colliding boundaries). */
export function boundaryOccursIn(data: Uint8Array, boundary: string): boolean {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const marker = Buffer.from('--' + boundary, 'latin1');
  let at = buf.indexOf(marker);
  while (at !== -1) {
    if (at === 0 || buf[at - 1] === LF || buf[at - 1] === CR) return true;
    at = buf.indexOf(marker, at + 1);
  }
  return false;
}

function nextDelimiter(buf: Buffer, marker: Buffer, from: number): Delimiter | null {
  let at = buf.indexOf(marker, from);
  while (at !== -1) {
    const atLineStart = at === 0 || buf[at - 1] === LF;
    if (atLineStart) {
      let p = at + marker.length;
      const close = buf[p] === DASH && buf[p + 1] === DASH;
      if (close) p += 2;
      while (buf[p] === 0x20 || buf[p] === 0x09) p++;
      const endOfLine = p === buf.length || buf[p] === LF || (buf[p] === CR && buf[p + 1] === LF);
      if (endOfLine) {
        const lineEnd = p === buf.length ? p : buf[p] === LF ? p + 1 : p + 2;
        let breakStart = at;
        if (at > 0) breakStart = at >= 2 && buf[at - 2] === CR ? at - 2 : at - 1;
        // A line break already consumed by the previous delimiter line cannot also precede this
        // one: the part between them is then empty.
        return { breakStart: Math.max(breakStart, from), lineEnd, close };
      }
    }
    at = buf.indexOf(marker, at + 1);
  }
  return null;
}
