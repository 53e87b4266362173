/**
 * Low-level wire helpers shared by the command and response codecs.
 *
 * Strings on the milter wire are NUL-terminated byte strings with no declared charset: header values may
 * carry raw 8-bit or UTF-8 bytes. The codec maps them to "binary strings" (latin1: one character per
 * byte, U+0000–U+00FF), which round-trips every byte exactly; convert with
 * `Buffer.from(value, 'latin1')` where the bytes are needed.
 */
import { MilterProtocolError, type ProtocolErrorCode } from '../errors.ts';

/** The four-byte length prefix of every frame. */
export const LENGTH_BYTES = 4;

/** Bytes of a frame before its data: the length and the command byte. */
export const FRAME_HEADER_BYTES = LENGTH_BYTES + 1;

/** Encodes one frame: length (command byte plus data), command byte, data. */
export function encodeFrame(code: string, data?: Uint8Array): Buffer {
  return writeFrame(Buffer.allocUnsafe(FRAME_HEADER_BYTES + (data?.length ?? 0)), code, data);
}

/** Writes the frame of `data` at the start of `target` (large enough); returns the frame, a view of `target`. */
export function writeFrame(target: Buffer, code: string, data?: Uint8Array): Buffer {
  const length = 1 + (data?.length ?? 0);
  target.writeUInt32BE(length, 0);
  target.write(code, LENGTH_BYTES, 'latin1');
  if (data !== undefined) target.set(data, FRAME_HEADER_BYTES);
  return target.subarray(0, LENGTH_BYTES + length);
}

/** Encodes strings as consecutive NUL-terminated byte strings. */
export function cstrings(...values: string[]): Buffer {
  let size = 0;
  for (const value of values) size += value.length + 1;
  const out = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const value of values) {
    offset += out.write(value, offset, 'latin1');
    out[offset++] = 0;
  }
  return out;
}

/** Encodes a 32-bit unsigned integer, big-endian, as the protocol uses everywhere. */
export function uint32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value >>> 0, 0);
  return out;
}

/** A cursor over a frame's data that raises a protocol error, never a RangeError, on short input. */
export class WireReader {
  private offset = 0;

  constructor(
    private readonly data: Buffer,
    private readonly what: string,
    private readonly errorCode: ProtocolErrorCode,
  ) {}

  /** Bytes not read yet. */
  get remaining(): number {
    return this.data.length - this.offset;
  }

  /** Reads a NUL-terminated string. */
  cstring(field: string): string {
    const end = this.data.indexOf(0, this.offset);
    if (end < 0) throw this.fail(`${field} is not NUL-terminated`);
    const value = this.data.toString('latin1', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  /** Reads a big-endian 32-bit unsigned integer. */
  uint32(field: string): number {
    if (this.remaining < 4) throw this.fail(`${field} needs 4 bytes, ${this.remaining} left`);
    const value = this.data.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** Reads a big-endian 16-bit unsigned integer. */
  uint16(field: string): number {
    if (this.remaining < 2) throw this.fail(`${field} needs 2 bytes, ${this.remaining} left`);
    const value = this.data.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  /** Reads one byte as a character. */
  char(field: string): string {
    if (this.remaining < 1) throw this.fail(`${field} is missing`);
    return String.fromCharCode(this.data[this.offset++] as number);
  }

  /** Returns everything not read yet (a view, not a copy). */
  rest(): Buffer {
    const rest = this.data.subarray(this.offset);
    this.offset = this.data.length;
    return rest;
  }

  /** Fails unless every byte was consumed: trailing bytes mean the peer and we disagree on the layout. */
  end(): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} unexpected trailing bytes`);
  }

  private fail(detail: string): MilterProtocolError {
    return new MilterProtocolError(this.errorCode, `${this.what}: ${detail}`);
  }
}
