/**
 * Byte-level SMTP line handling shared by the test sink and client: splitting a TCP stream into lines that
 * keep their exact terminators, and the dot-stuffing of the DATA section (RFC 5321 §4.5.2).
 */

const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const END_OF_DATA = Buffer.from('.\r\n');

/**
 * Splits a byte stream into lines, each ending with its own LF (and the CR before it, if any), so the
 * caller can keep bytes exact. A partial line is held back until its LF arrives; held chunks are joined
 * once, so a long line costs linear time.
 */
export class LineSplitter {
  private held: Buffer[] = [];

  /** Feeds a chunk; returns the lines completed by it, in order. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, start)) {
      const piece = chunk.subarray(start, lf + 1);
      if (this.held.length > 0) {
        this.held.push(piece);
        lines.push(Buffer.concat(this.held));
        this.held = [];
      } else {
        lines.push(piece);
      }
      start = lf + 1;
    }
    if (start < chunk.length) this.held.push(chunk.subarray(start));
    return lines;
  }
}

/** A line without its terminator (CRLF, or a bare LF), as text. */
export function lineText(line: Buffer): string {
  let end = line.length;
  if (end > 0 && line[end - 1] === LF) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  return line.subarray(0, end).toString('utf8');
}

/**
 * Encodes message bytes for the wire after a 354 reply: a '.' is doubled at the start of the content and
 * after every LF (Postfix also treats a bare LF as a line end, so stuffing after CRLF only would let a bare
 * `LF.` through unstuffed), a CRLF is added only if the content does not already end with a line end (SMTP
 * cannot carry content without one), then the `.CRLF` terminator.
 */
export function encodeDataSection(content: Uint8Array): Buffer {
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const parts: Buffer[] = [];
  let start = 0;
  let lineStart = 0;
  while (lineStart < bytes.length) {
    if (bytes[lineStart] === DOT) {
      parts.push(bytes.subarray(start, lineStart), Buffer.from('.'));
      start = lineStart;
    }
    const lf = bytes.indexOf(LF, lineStart);
    if (lf === -1) break;
    lineStart = lf + 1;
  }
  parts.push(bytes.subarray(start));
  if (bytes.length > 0 && bytes[bytes.length - 1] !== LF) parts.push(CRLF);
  parts.push(END_OF_DATA);
  return Buffer.concat(parts);
}
