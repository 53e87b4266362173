/**
 * The literal data packet (RFC 4880 §5.9) in binary mode with an empty file name: the header is
 * written here and the content follows it unchanged, so CRLF and 8-bit bytes survive exactly.
 */
import { enums } from 'openpgp';
import { packetHeader, uint32 } from './packet-framing.ts';

/** Message content, whole or as pieces in order (joined only by the cipher, never copied first). */
export type MessageData = Uint8Array | readonly Uint8Array[];

/** Format octet `b`: binary data, no line-ending conversion. */
const BINARY_FORMAT = 0x62;
/** Format octet, file name length octet (zero), four-octet date. */
const FIXED_FIELDS = 6;

/** The pieces of `data`, in order. */
export function piecesOf(data: MessageData): readonly Uint8Array[] {
  return data instanceof Uint8Array ? [data] : data;
}

/** Total length of `pieces`. */
export function byteLength(pieces: readonly Uint8Array[]): number {
  return pieces.reduce((sum, p) => sum + p.length, 0);
}

/** The fields of a literal packet's body before its content: format, empty file name, date `created`. */
export function literalFixedFields(created: number): Buffer {
  return Buffer.concat([Buffer.from([BINARY_FORMAT, 0]), uint32(created)]);
}

/** Packet header and fixed fields of a literal packet holding `dataLength` octets dated `created`. */
export function literalDataHeader(dataLength: number, created: number): Buffer {
  return Buffer.concat([packetHeader(enums.packet.literalData, FIXED_FIELDS + dataLength), literalFixedFields(created)]);
}

/**
 * Content larger than this is left to openpgp.js (the engine streams such bodies anyway): well
 * inside what a definite packet length and one Buffer can hold.
 */
export const MAX_NATIVE_DATA_BYTES = 1 << 30;
