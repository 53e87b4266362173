/**
 * OpenPGP ASCII armor (RFC 4880 §6.2) written with CRLF line ends, as MIME wants, and read
 * strictly: the decoder accepts only canonical base64 and checks the CRC-24 when present, so a
 * single changed character in the armor can never decode to the same bytes unnoticed.
 */
import { PgpError } from './errors.ts';

/** The armor block types this project reads and writes. */
export type ArmorType = 'MESSAGE' | 'SIGNATURE';

/** 48 input bytes make one 64-character line (RFC 4880 §6.3 allows at most 76). */
const BYTES_PER_LINE = 48;
const CHARS_PER_LINE = 64;
/** A full line in the output: 64 characters and CRLF. */
const LINE_BYTES = CHARS_PER_LINE + 2;
/**
 * Lines base64-encoded per native call. One call per line would cost more than the encoding; one
 * call per chunk would make strings of megabytes, which V8 builds several times slower.
 */
const LINES_PER_BATCH = 1024;
const CR = 0x0d;
const LF = 0x0a;
/** CR then LF, as one little-endian 16-bit store. */
const CRLF_LE16 = (LF << 8) | CR;
/** One batch of base64 before it is cut into lines; shared, as encoding never yields midway. */
const SCRATCH = Buffer.alloc(LINES_PER_BATCH * CHARS_PER_LINE);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer, SCRATCH.byteOffset, SCRATCH.length);
const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;
/**
 * Octets the CRC consumes per step (slicing-by-16): still one table lookup per octet, but the
 * register is carried from step to step only once per 16 octets, read as four 32-bit words.
 */
const CRC_SLICES = 16;

/**
 * CRC-24 lookup tables (RFC 4880 §6.1 polynomial), flattened: entry `k * 256 + v` is the CRC
 * register contribution of octet `v` followed by `k` zero octets, i.e. v·x^(24+8k) mod the
 * polynomial. Table 0 is the classic byte-at-a-time table.
 */
const CRC24_TABLES = (() => {
  const tables = new Uint32Array(CRC_SLICES * 256);
  for (let v = 0; v < 256; v++) {
    let c = v << 16;
    for (let bit = 0; bit < 8; bit++) {
      c <<= 1;
      if (c & 0x1000000) c ^= CRC24_POLY;
    }
    tables[v] = c & 0xffffff;
  }
  for (let k = 1; k < CRC_SLICES; k++) {
    for (let v = 0; v < 256; v++) {
      // Eight more zero bits: shift the previous entry one octet and reduce its top octet.
      const previous = tables[(k - 1) * 256 + v] as number;
      tables[k * 256 + v] = ((previous << 8) & 0xffffff) ^ (tables[previous >>> 16] as number);
    }
  }
  return tables;
})();

/**
 * Feeds `data` into the CRC-24 register `crc`, 16 octets per step: each octet indexes the table
 * for the number of octets after it in the step, and the register, 24 bits, is XORed into the
 * step's first three octets (the top of its first big-endian word).
 */
function crc24Update(crc: number, data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.length;
  let i = 0;
  for (; i + CRC_SLICES <= n; i += CRC_SLICES) {
    crc =
      wordTerms(view.getUint32(i) ^ (crc << 8), 15 * 256) ^
      wordTerms(view.getUint32(i + 4), 11 * 256) ^
      wordTerms(view.getUint32(i + 8), 7 * 256) ^
      wordTerms(view.getUint32(i + 12), 3 * 256);
  }
  for (; i < n; i++) crc = ((crc << 8) & 0xffffff) ^ (CRC24_TABLES[(crc >>> 16) ^ (data[i] as number)] as number);
  return crc;
}

/** The table terms of the four octets of `word`, the first looked up in the table at `first`, the others in the three below it. */
function wordTerms(word: number, first: number): number {
  const t = CRC24_TABLES;
  return (
    (t[first + (word >>> 24)] as number) ^
    (t[first - 256 + ((word >>> 16) & 0xff)] as number) ^
    (t[first - 512 + ((word >>> 8) & 0xff)] as number) ^
    (t[first - 768 + (word & 0xff)] as number)
  );
}

/** Incremental CRC-24 (RFC 4880 §6.1). */
class Crc24 {
  #crc = CRC24_INIT;

  update(data: Uint8Array): void {
    this.#crc = crc24Update(this.#crc, data);
  }

  /** The checksum as the four base64 characters of the armor's `=` line. */
  toBase64(): string {
    const c = this.#crc;
    return Buffer.from([(c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff]).toString('base64');
  }
}

/** Bytes that {@link writeLines} writes for `length` input bytes. */
function linesLength(length: number): number {
  const rest = length % BYTES_PER_LINE;
  return Math.floor(length / BYTES_PER_LINE) * LINE_BYTES + (rest === 0 ? 0 : Math.ceil(rest / 3) * 4 + 2);
}

/**
 * Writes `data` as base64 lines of 64 characters, each ending in CRLF (the last one shorter if
 * `data` is not a whole number of lines), into `out` at `at`; returns the offset after them.
 * Each batch is encoded natively into the scratch buffer, then copied line by line in 32-bit
 * words: a native copy per line would cost several times more than the copy itself.
 */
function writeLines(data: Buffer, out: Buffer, at: number): number {
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  for (let from = 0; from < data.length; from += LINES_PER_BATCH * BYTES_PER_LINE) {
    const to = Math.min(data.length, from + LINES_PER_BATCH * BYTES_PER_LINE);
    const chars = SCRATCH.write(data.toString('base64', from, to), 0, 'latin1');
    const fullLinesEnd = chars - (chars % CHARS_PER_LINE);
    let read = 0;
    for (; read < fullLinesEnd; read += CHARS_PER_LINE) {
      for (let word = 0; word < CHARS_PER_LINE; word += 4) view.setUint32(at + word, SCRATCH_VIEW.getUint32(read + word, true), true);
      view.setUint16(at + CHARS_PER_LINE, CRLF_LE16, true);
      at += LINE_BYTES;
    }
    if (read < chars) {
      at += SCRATCH.copy(out, at, read, chars);
      out[at++] = CR;
      out[at++] = LF;
    }
  }
  return at;
}

function beginLine(type: ArmorType): Buffer {
  return Buffer.from(`-----BEGIN PGP ${type}-----\r\n\r\n`, 'latin1');
}

function checksumAndEnd(type: ArmorType, crc: Crc24): Buffer {
  return Buffer.from(`=${crc.toBase64()}\r\n-----END PGP ${type}-----\r\n`, 'latin1');
}

const EMPTY = Buffer.alloc(0);

/**
 * Base64 lines and CRC of a stream. Whole lines are written as soon as their input is there; the
 * at most 47 octets of an unfinished line wait in a small carry buffer, copied because the input
 * chunk may be reused by its producer.
 */
class LineEncoder {
  readonly crc = new Crc24();
  readonly #carry = Buffer.allocUnsafe(BYTES_PER_LINE);
  #carried = 0;

  /** The whole lines completed by `chunk` (possibly none). */
  update(chunk: Uint8Array): Buffer {
    const data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.crc.update(data);
    const lines = Math.floor((this.#carried + data.length) / BYTES_PER_LINE);
    let used = 0;
    let out = EMPTY;
    if (lines > 0) {
      out = Buffer.allocUnsafe(lines * LINE_BYTES);
      let at = 0;
      if (this.#carried > 0) {
        used = data.copy(this.#carry, this.#carried, 0, BYTES_PER_LINE - this.#carried);
        at = writeLines(this.#carry, out, 0);
        this.#carried = 0;
      }
      const whole = used + (lines - at / LINE_BYTES) * BYTES_PER_LINE;
      writeLines(data.subarray(used, whole), out, at);
      used = whole;
    }
    this.#carried += data.copy(this.#carry, this.#carried, used);
    return out;
  }

  /** The last, unfinished line, if any. */
  finish(): Buffer {
    const rest = this.#carry.subarray(0, this.#carried);
    const out = Buffer.allocUnsafe(linesLength(rest.length));
    writeLines(rest, out, 0);
    return out;
  }
}

/** Armors a stream of binary chunks, emitting at most one output chunk per input chunk. */
export async function* armorChunks(type: ArmorType, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  yield beginLine(type);
  const encoder = new LineEncoder();
  for await (const chunk of chunks) {
    const lines = encoder.update(chunk);
    if (lines.length > 0) yield lines;
  }
  yield Buffer.concat([encoder.finish(), checksumAndEnd(type, encoder.crc)]);
}

/** Armors a complete binary block. */
export function armorBytes(type: ArmorType, data: Uint8Array): Buffer {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const crc = new Crc24();
  crc.update(bytes);
  const begin = beginLine(type);
  const end = checksumAndEnd(type, crc);
  const out = Buffer.allocUnsafe(begin.length + linesLength(bytes.length) + end.length);
  begin.copy(out);
  end.copy(out, writeLines(bytes, out, begin.length));
  return out;
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ARMOR_HEADER = /^[A-Za-z][A-Za-z0-9-]*: /;
const CHECKSUM_LINE = /^=[A-Za-z0-9+/]{4}$/;
const PAD = 0x3d;

/** 1 for the base64 alphabet; a table lookup keeps the scan of tens of MiB fast. */
const BASE64_CHAR = (() => {
  const table = new Uint8Array(256);
  for (const c of BASE64_ALPHABET) table[c.charCodeAt(0)] = 1;
  return table;
})();

/** Splits into lines without their CRLF or LF; a lone CR stays in the line (and is then invalid). */
function* lines(buf: Buffer): Generator<[number, number]> {
  let start = 0;
  while (start <= buf.length) {
    const lf = buf.indexOf(LF, start);
    if (lf === -1) {
      yield [start, buf.length];
      return;
    }
    yield [start, lf > start && buf[lf - 1] === CR ? lf - 1 : lf];
    start = lf + 1;
  }
}

/**
 * Decodes one armored block of `type`. Lines may end in CRLF or LF; blank lines may surround the
 * block. Throws {@link PgpError} `ARMOR_INVALID` on anything else.
 */
export function dearmor(type: ArmorType, armored: Uint8Array): Buffer {
  const pieces = [...dearmorPieces(type, armored)];
  return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
}

/**
 * Base64 characters decoded per step by {@link dearmorPieces}: whole quanta (a multiple of 4), so
 * each step decodes on its own; large enough that the per-call cost does not matter.
 */
const DECODE_BATCH = 256 * 1024;

/**
 * Decodes one armored block of `type` piece by piece, with the rules of {@link dearmor}. Memory
 * stays at one batch whatever the size, so a caller that only walks the data (and may stop early)
 * never holds a decoded copy. The pieces are only trustworthy once the generator has finished:
 * a damaged line or a checksum mismatch further on throws {@link PgpError} `ARMOR_INVALID` then.
 */
export function* dearmorPieces(type: ArmorType, armored: Uint8Array): Generator<Buffer> {
  const buf = Buffer.from(armored.buffer, armored.byteOffset, armored.byteLength);
  const invalid = (why: string): PgpError => new PgpError('ARMOR_INVALID', `armored ${type.toLowerCase()}: ${why}`);
  const text = ([start, end]: [number, number]): string => buf.toString('latin1', start, end);
  const iterator = lines(buf);
  let line = iterator.next();
  while (line.done !== true && isBlank(text(line.value))) line = iterator.next();
  if (line.done === true || text(line.value) !== `-----BEGIN PGP ${type}-----`) throw invalid('no BEGIN line');
  for (line = iterator.next(); line.done !== true && line.value[0] !== line.value[1]; line = iterator.next()) {
    if (!ARMOR_HEADER.test(text(line.value))) throw invalid('malformed armor header');
  }
  if (line.done === true) throw invalid('no blank line after the armor headers');
  const batch = Buffer.allocUnsafe(Math.min(DECODE_BATCH, Math.ceil(buf.length / 4) * 4));
  let filled = 0;
  const crc = new Crc24();
  let padded = false;
  let checksum: string | null = null;
  for (line = iterator.next(); ; line = iterator.next()) {
    if (line.done === true) throw invalid('no END line');
    let [start, end] = line.value;
    if (buf[start] === 0x2d && text(line.value) === `-----END PGP ${type}-----`) break;
    if (checksum !== null) throw invalid('data after the checksum line');
    if (buf[start] === PAD) {
      if (!CHECKSUM_LINE.test(text(line.value))) throw invalid('malformed checksum line');
      checksum = text(line.value).slice(1);
      continue;
    }
    if (start === end || padded) throw invalid('invalid line in the base64 data');
    for (let i = start; i < end; i++) {
      const c = buf[i] as number;
      if (c === PAD) padded = true;
      else if (padded || BASE64_CHAR[c] !== 1) throw invalid('invalid character in the base64 data');
    }
    while (start < end) {
      // A full batch is decoded only when more characters follow, so the last quantum, where
      // padding may be, always reaches the canonical check below.
      if (filled === batch.length) {
        const piece = Buffer.from(batch.toString('latin1', 0, filled), 'base64');
        crc.update(piece);
        yield piece;
        filled = 0;
      }
      const copied = buf.copy(batch, filled, start, Math.min(end, start + batch.length - filled));
      filled += copied;
      start += copied;
    }
  }
  for (line = iterator.next(); line.done !== true; line = iterator.next()) {
    if (!isBlank(text(line.value))) throw invalid('text after the END line');
  }
  const last = decodeCanonical(batch.subarray(0, filled), invalid);
  crc.update(last);
  if (checksum !== null && crc.toBase64() !== checksum) throw invalid('checksum mismatch');
  yield last;
}

/**
 * Decodes base64 that must be canonical: whole quanta, at most two `=`, and zero unused bits in
 * the last quantum (else two spellings would decode to the same bytes).
 */
function decodeCanonical(encoded: Buffer, invalid: (why: string) => PgpError): Buffer {
  const n = encoded.length;
  if (n % 4 !== 0) throw invalid('bad base64 length');
  const pads = n === 0 ? 0 : (encoded[n - 1] === PAD ? 1 : 0) + (encoded[n - 2] === PAD ? 1 : 0);
  if (encoded.indexOf(PAD) !== -1 && encoded.indexOf(PAD) < n - pads) throw invalid('misplaced base64 padding');
  if (pads > 0) {
    const last = BASE64_ALPHABET.indexOf(String.fromCharCode(encoded[n - pads - 1] as number));
    if ((pads === 1 && (last & 0x03) !== 0) || (pads === 2 && (last & 0x0f) !== 0)) throw invalid('non-canonical base64');
  }
  return Buffer.from(encoded.toString('latin1'), 'base64');
}

function isBlank(line: string): boolean {
  return /^[ \t]*$/.test(line);
}

/** Shared empty result of {@link LineDearmorer.line} (most lines complete no batch). */
const NO_PIECES: Buffer[] = [];

/**
 * Decodes one armored block of `type` fed line by line (each line without its CRLF or LF), with exactly the rules
 * of {@link dearmorPieces}: a caller that splits a stream into lines as {@link dearmorPieces} splits a buffer gets
 * the same bytes, or the same refusal. Memory stays at one batch. As with {@link dearmorPieces}, the pieces are only
 * trustworthy once {@link finish} has returned.
 */
export class LineDearmorer {
  readonly #type: ArmorType;
  #state: 'lead' | 'headers' | 'data' | 'trail' = 'lead';
  readonly #batch = Buffer.allocUnsafe(DECODE_BATCH);
  #filled = 0;
  readonly #crc = new Crc24();
  #padded = false;
  #checksum: string | null = null;
  #bytes = 0;

  constructor(type: ArmorType) {
    this.#type = type;
  }

  /** Octets decoded so far. */
  get byteLength(): number {
    return this.#bytes;
  }

  /**
   * Reads one line, octets `start` to `end` of `buf` (without its line break); returns the octets it completes
   * (often none). Throws `ARMOR_INVALID`.
   */
  line(buf: Buffer, start = 0, end = buf.length): Buffer[] {
    const type = this.#type;
    const text = (): string => buf.toString('latin1', start, end);
    switch (this.#state) {
      case 'lead':
        if (isBlank(text())) return [];
        if (text() !== `-----BEGIN PGP ${type}-----`) throw this.#invalid('no BEGIN line');
        this.#state = 'headers';
        return [];
      case 'headers':
        if (start === end) this.#state = 'data';
        else if (!ARMOR_HEADER.test(text())) throw this.#invalid('malformed armor header');
        return [];
      case 'trail':
        if (!isBlank(text())) throw this.#invalid('text after the END line');
        return [];
      case 'data':
        return this.#dataLine(buf, start, end);
    }
  }

  #dataLine(buf: Buffer, start: number, end: number): Buffer[] {
    if (buf[start] === 0x2d && start < end && buf.toString('latin1', start, end) === `-----END PGP ${this.#type}-----`) {
      this.#state = 'trail';
      return [];
    }
    if (this.#checksum !== null) throw this.#invalid('data after the checksum line');
    if (start < end && buf[start] === PAD) {
      const line = buf.toString('latin1', start, end);
      if (!CHECKSUM_LINE.test(line)) throw this.#invalid('malformed checksum line');
      this.#checksum = line.slice(1);
      return [];
    }
    if (start === end || this.#padded) throw this.#invalid('invalid line in the base64 data');
    for (let i = start; i < end; i++) {
      const c = buf[i] as number;
      if (c === PAD) this.#padded = true;
      else if (this.#padded || BASE64_CHAR[c] !== 1) throw this.#invalid('invalid character in the base64 data');
    }
    let out: Buffer[] = NO_PIECES;
    for (let at = start; at < end; ) {
      // As in dearmorPieces: a full batch is decoded only when more characters follow.
      if (this.#filled === this.#batch.length) {
        const piece = Buffer.from(this.#batch.toString('latin1', 0, this.#filled), 'base64');
        this.#crc.update(piece);
        this.#bytes += piece.length;
        out = [piece];
        this.#filled = 0;
      }
      const copied = buf.copy(this.#batch, this.#filled, at, Math.min(end, at + this.#batch.length - this.#filled));
      this.#filled += copied;
      at += copied;
    }
    return out;
  }

  /** Ends the block: the last octets, once the END line, the padding and the checksum are found right. */
  finish(): Buffer {
    if (this.#state === 'lead') throw this.#invalid('no BEGIN line');
    if (this.#state === 'headers') throw this.#invalid('no blank line after the armor headers');
    if (this.#state === 'data') throw this.#invalid('no END line');
    const last = decodeCanonical(this.#batch.subarray(0, this.#filled), (why) => this.#invalid(why));
    this.#crc.update(last);
    this.#bytes += last.length;
    if (this.#checksum !== null && this.#crc.toBase64() !== this.#checksum) throw this.#invalid('checksum mismatch');
    return last;
  }

  #invalid(why: string): PgpError {
    return new PgpError('ARMOR_INVALID', `armored ${this.#type.toLowerCase()}: ${why}`);
  }
}
