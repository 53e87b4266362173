/**
 * A multipart/encrypted body (RFC 3156 §4) read as it streams: the small parts (preamble, the
 * application/pgp-encrypted part, the header of the second part) are gathered, and the second part's body is
 * handed on line by line, so a 50 MiB message never sits in memory. Delimiters and part boundaries are found
 * exactly as {@link splitMultipart} finds them in a buffer, and part headers are read with {@link parseEntity}.
 *
 * Only the plain shape is handled: two parts, the second one without a transfer encoding. Anything else (a third
 * part, base64 or quoted-printable, over-long lines, a missing first part) raises {@link Unstreamable}, and the
 * caller reads the message whole, where every shape gets its verdict.
 */
import { Unstreamable } from '../stream/unstreamable.ts';
import { contentTypeOf, transferEncodingOf } from './content-fields.ts';
import { parseEntity } from './entity.ts';

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

/** The longest line held while looking for its end; armor lines are 64 to 76 characters. */
const MAX_LINE = 64 * 1024;
/** The most bytes gathered for the first part, or for the header of the second. */
const MAX_SMALL_PART = 64 * 1024;

/**
 * Receives each line of the second part's body, without its line break: octets `start` to `end` of `buffer`,
 * valid only during the call (offsets rather than a view each: a 50 MiB part has close to a million lines).
 */
export type PartLineSink = (buffer: Buffer, start: number, end: number) => void;

/**
 * Splits a multipart/encrypted body on `boundary`, fed in chunks of any size, and passes each line of the
 * encrypted part's body to `sink`. Throws {@link Unstreamable}.
 */
export class EncryptedPartReader {
  readonly #marker: Buffer;
  readonly #sink: PartLineSink;
  #state: 'preamble' | 'first' | 'second-header' | 'second-body' | 'epilogue' = 'preamble';
  /** The start of a line whose end is in a later chunk. */
  #carry: Buffer[] = [];
  #carried = 0;
  /** Lines of the part being gathered, each with its line break. */
  #gathered: Buffer[] = [];
  #gatheredBytes = 0;

  constructor(boundary: string, sink: PartLineSink) {
    this.#marker = Buffer.from('--' + boundary, 'latin1');
    this.#sink = sink;
  }

  /** Reads the next bytes. */
  push(chunk: Buffer): void {
    if (this.#state === 'epilogue') return;
    let start = 0;
    for (;;) {
      const lf = chunk.indexOf(LF, start);
      if (lf === -1) break;
      if (this.#carried > 0) {
        const line = Buffer.concat([...this.#carry, chunk.subarray(start, lf + 1)]);
        this.#carry = [];
        this.#carried = 0;
        this.#line(line, 0, line.length, false);
      } else {
        this.#line(chunk, start, lf + 1, false);
      }
      start = lf + 1;
      if (this.#done()) return;
    }
    if (start < chunk.length) {
      // Copied: the producer may reuse its buffer.
      this.#carry.push(Buffer.from(chunk.subarray(start)));
      this.#carried += chunk.length - start;
      if (this.#carried > MAX_LINE) throw new Unstreamable('line too long');
    }
  }

  /** Whether the close delimiter was read (what follows it is not looked at). */
  #done(): boolean {
    return this.#state === 'epilogue';
  }

  /** The body is complete. */
  end(): void {
    if (this.#state === 'epilogue') return;
    // The text after the last line break is a line too, even an empty one (splitMultipart runs the last part to the
    // end of the body).
    const last = Buffer.concat(this.#carry);
    this.#line(last, 0, last.length, true);
    this.#carry = [];
    if (this.#state === 'preamble' || this.#state === 'first') throw new Unstreamable('fewer than two body parts');
    if (this.#state === 'second-header') this.#endSecondHeader(true);
  }

  /** One line, octets `start` to `end` of `buf`, with its line break (none for the last line of the body). */
  #line(buf: Buffer, start: number, end: number, last: boolean): void {
    const delimiter = delimiterOf(this.#marker, buf, start, end, last);
    if (delimiter === null) {
      this.#content(buf, start, end, last);
      return;
    }
    switch (this.#state) {
      case 'preamble':
        if (delimiter === 'close') throw new Unstreamable('no body part');
        this.#state = 'first';
        return;
      case 'first':
        if (delimiter === 'close') throw new Unstreamable('fewer than two body parts');
        this.#endFirst();
        this.#state = 'second-header';
        return;
      case 'second-header':
        this.#endSecondHeader(true, true);
        this.#endSecond(delimiter);
        return;
      case 'second-body':
        this.#endSecond(delimiter);
        return;
    }
  }

  /** A line inside a part (or the preamble). */
  #content(buf: Buffer, start: number, end: number, last: boolean): void {
    switch (this.#state) {
      case 'preamble':
        return;
      case 'first':
        this.#gather(buf.subarray(start, end));
        return;
      case 'second-header':
        this.#gather(buf.subarray(start, end));
        // The header of the second part ends at its first empty line at the latest.
        if (!last && end - lineBreakLength(buf, start, end) === start) this.#endSecondHeader(false);
        return;
      case 'second-body':
        this.#sink(buf, start, end - lineBreakLength(buf, start, end));
        return;
    }
  }

  #gather(line: Buffer): void {
    this.#gatheredBytes += line.length;
    if (this.#gatheredBytes > MAX_SMALL_PART) throw new Unstreamable('large first part or part header');
    this.#gathered.push(Buffer.from(line));
  }

  /** The lines gathered so far, as one buffer. */
  #takeGathered(): Buffer {
    const part = Buffer.concat(this.#gathered);
    this.#gathered = [];
    this.#gatheredBytes = 0;
    return part;
  }

  #endFirst(): void {
    const part = this.#takeGathered();
    // The line break before the delimiter belongs to the delimiter.
    const bytes = part.subarray(0, part.length - lineBreakLength(part, 0, part.length));
    if (contentTypeOf(parseEntity(bytes, 'latin1').fields).mediaType !== 'application/pgp-encrypted') {
      throw new Unstreamable('first part is not application/pgp-encrypted');
    }
  }

  /**
   * The second part's header is complete: at its first empty line (`partEnded` false: more of the part follows),
   * or the part ended first (at a delimiter, whose line break is taken off, or at the end of the body). What
   * parseEntity leaves of it to the body goes on to the sink as lines.
   */
  #endSecondHeader(partEnded: boolean, delimiter = false): void {
    const gathered = this.#takeGathered();
    const part = delimiter ? gathered.subarray(0, gathered.length - lineBreakLength(gathered, 0, gathered.length)) : gathered;
    const parsed = parseEntity(part, 'latin1');
    if (!IDENTITY_ENCODINGS.has(transferEncodingOf(parsed.fields))) throw new Unstreamable('encrypted part has a transfer encoding');
    this.#state = 'second-body';
    const body = part.subarray(parsed.bodyOffset);
    let start = 0;
    for (;;) {
      const lf = body.indexOf(LF, start);
      if (lf === -1) break;
      this.#sink(body, start, lf + 1 - lineBreakLength(body, start, lf + 1));
      start = lf + 1;
    }
    // The text after the last line break is a line of the part only where the part ends.
    if (partEnded) this.#sink(body, start, body.length);
  }

  #endSecond(delimiter: 'open' | 'close'): void {
    if (delimiter === 'open') throw new Unstreamable('more than two body parts');
    this.#state = 'epilogue';
  }
}

/** Transfer encodings under which a part's body is its content. */
const IDENTITY_ENCODINGS: ReadonlySet<string> = new Set(['7bit', '8bit', 'binary']);

/** `open` or `close` when `line` is a delimiter line of RFC 2046 §5.1.1 (as splitMultipart reads them), else null. */
function delimiterOf(marker: Buffer, buf: Buffer, start: number, end: number, last: boolean): 'open' | 'close' | null {
  if (buf[start] !== DASH || end - start < marker.length || buf.compare(marker, 0, marker.length, start, start + marker.length) !== 0) return null;
  let p = start + marker.length;
  const close = p + 1 < end && buf[p] === DASH && buf[p + 1] === DASH;
  if (close) p += 2;
  while (p < end && (buf[p] === 0x20 || buf[p] === 0x09)) p++;
  const rest = end - p;
  // The line must end here: in a line break, or (the last line of the body) with nothing after.
  const ends = last ? rest === 0 : (rest === 1 && buf[p] === LF) || (rest === 2 && buf[p] === CR && buf[p + 1] === LF);
  if (!ends) return null;
  return close ? 'close' : 'open';
}

/** 2 when octets `start` to `end` of `data` end in CRLF, 1 in LF, 0 without a line break. */
function lineBreakLength(data: Buffer, start: number, end: number): number {
  if (end === start || data[end - 1] !== LF) return 0;
  return end - start >= 2 && data[end - 2] === CR ? 2 : 1;
}
