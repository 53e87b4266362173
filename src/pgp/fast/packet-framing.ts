/**
 * OpenPGP packet framing (RFC 4880 §4.2.2): new-format headers with definite lengths, the same
 * length encoding for signature subpackets (§5.2.3.1), and multiprecision integers (§3.2).
 * Packets whose length is not known up front are framed by partial-body.ts.
 */

/** Largest body a definite length can state (the five-octet form holds 32 bits). */
export const MAX_BODY_BYTES = 0xffffffff;

/** Lengths below this take one octet. */
const ONE_OCTET_LIMIT = 192;
/** Lengths below this take two octets: 192 + 255 * 256 + 255 + 1. */
const TWO_OCTET_LIMIT = 8384;

/** The encoded length of a packet body or subpacket: one, two or five octets. */
export function encodeLength(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > MAX_BODY_BYTES) throw new RangeError(`OpenPGP length out of range: ${length}`);
  if (length < ONE_OCTET_LIMIT) return Buffer.from([length]);
  if (length < TWO_OCTET_LIMIT) {
    const rest = length - ONE_OCTET_LIMIT;
    return Buffer.from([(rest >> 8) + ONE_OCTET_LIMIT, rest & 0xff]);
  }
  const out = Buffer.alloc(5);
  out[0] = 0xff;
  out.writeUInt32BE(length, 1);
  return out;
}

/** A new-format packet header (tag octet with bits 7 and 6 set) for a body of `length` octets. */
export function packetHeader(tag: number, length: number): Buffer {
  return Buffer.concat([Buffer.from([0xc0 | tag]), encodeLength(length)]);
}

/** A whole packet: header and body. */
export function packet(tag: number, body: Uint8Array): Buffer {
  return Buffer.concat([packetHeader(tag, body.length), body]);
}

/**
 * A multiprecision integer from big-endian bytes: a two-octet bit count, then the value without
 * leading zero octets (the bit count makes them unrecoverable, so they must not be written).
 */
export function mpi(value: Uint8Array): Buffer {
  let start = 0;
  while (start < value.length && value[start] === 0) start++;
  if (start === value.length) return Buffer.from([0, 0]);
  const bits = (value.length - start - 1) * 8 + (32 - Math.clz32(value[start] as number));
  return Buffer.concat([Buffer.from([bits >> 8, bits & 0xff]), value.subarray(start)]);
}

/** A four-octet big-endian number (times, lengths in hash trailers). */
export function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/**
 * A time as OpenPGP's four-octet count of seconds (RFC 4880 §3.5), or null for a time it cannot
 * express (invalid, before 1970, after 2106). Fractions of a second are dropped, as openpgp.js does.
 */
export function openpgpTime(date: Date): number | null {
  const seconds = Math.floor(date.getTime() / 1000);
  return Number.isInteger(seconds) && seconds >= 0 && seconds <= 0xffffffff ? seconds : null;
}
