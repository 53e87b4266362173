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
const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;

/** CRC-24 lookup table (RFC 4880 §6.1 polynomial), one entry per leading byte. */
const CRC24_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 16;
    for (let bit = 0; bit < 8; bit++) {
      c <<= 1;
      if (c & 0x1000000) c ^= CRC24_POLY;
    }
    table[i] = c & 0xffffff;
  }
  return table;
})();

/** Incremental CRC-24 (RFC 4880 §6.1). */
class Crc24 {
  #crc = CRC24_INIT;

  update(data: Uint8Array): void {
    let crc = this.#crc;
    for (let i = 0; i < data.length; i++) {
      crc = ((crc << 8) ^ (CRC24_TABLE[((crc >> 16) ^ (data[i] as number)) & 0xff] as number)) & 0xffffff;
    }
    this.#crc = crc;
  }

  /** The checksum as the four base64 characters of the armor's `=` line. */
  toBase64(): string {
    const c = this.#crc;
    return Buffer.from([(c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff]).toString('base64');
  }
}

function base64Lines(data: Buffer): string {
  const encoded = data.toString('base64');
  let out = '';
  for (let i = 0; i < encoded.length; i += 64) out += encoded.slice(i, i + 64) + '\r\n';
  return out;
}

/** Armors a stream of binary chunks, emitting one output chunk per input chunk. */
export async function* armorChunks(type: ArmorType, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const crc = new Crc24();
  yield Buffer.from(`-----BEGIN PGP ${type}-----\r\n\r\n`, 'latin1');
  let pending = Buffer.alloc(0);
  for await (const chunk of chunks) {
    crc.update(chunk);
    const joined = pending.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([pending, chunk]);
    const whole = joined.length - (joined.length % BYTES_PER_LINE);
    if (whole > 0) yield Buffer.from(base64Lines(joined.subarray(0, whole)), 'latin1');
    // Copy the remainder: the input chunk may be reused by its producer.
    pending = Buffer.from(joined.subarray(whole));
  }
  const last = pending.length > 0 ? base64Lines(pending) : '';
  yield Buffer.from(`${last}=${crc.toBase64()}\r\n-----END PGP ${type}-----\r\n`, 'latin1');
}

/** Armors a complete binary block. */
export function armorBytes(type: ArmorType, data: Uint8Array): Buffer {
  const crc = new Crc24();
  crc.update(data);
  const body = base64Lines(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return Buffer.from(`-----BEGIN PGP ${type}-----\r\n\r\n${body}=${crc.toBase64()}\r\n-----END PGP ${type}-----\r\n`, 'latin1');
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ARMOR_HEADER = /^[A-Za-z][A-Za-z0-9-]*: /;
const CHECKSUM_LINE = /^=[A-Za-z0-9+/]{4}$/;
const LF = 0x0a;
const CR = 0x0d;
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
  const encoded = Buffer.allocUnsafe(buf.length);
  let length = 0;
  let padded = false;
  let checksum: string | null = null;
  for (line = iterator.next(); ; line = iterator.next()) {
    if (line.done === true) throw invalid('no END line');
    const [start, end] = line.value;
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
    length += buf.copy(encoded, length, start, end);
  }
  for (line = iterator.next(); line.done !== true; line = iterator.next()) {
    if (!isBlank(text(line.value))) throw invalid('text after the END line');
  }
  const bytes = decodeCanonical(encoded.subarray(0, length), invalid);
  if (checksum !== null) {
    const crc = new Crc24();
    crc.update(bytes);
    if (crc.toBase64() !== checksum) throw invalid('checksum mismatch');
  }
  return bytes;
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
