/**
 * The compatibility site-key record: a KEY RR (type 25, RFC 2535 §3) at `_muse.<domain>`, as MUSE proposed.
 * Layout (docs/dns-records.md §3): flags 0x0200 (an end-entity key, usable for authentication and
 * confidentiality), protocol 2 (email), algorithm 253 (PRIVATEDNS), and a key field that starts with the
 * wire-format name `openpgp.muse.invalid.` identifying the format, followed by the binary OpenPGP public key.
 */
import { MAX_KEY_BYTES } from './txt-record.ts';

/** Flags we publish: name type 10 (entity named by the owner), A/C bits 00 (both uses allowed). */
export const KEY_FLAGS_ENTITY = 0x0200;
/** RFC 2535 §3.1.3 protocol 2: email. */
export const KEY_PROTOCOL_EMAIL = 2;
/** RFC 2535 §3.1.3 protocol 255: any. Accepted when reading. */
export const KEY_PROTOCOL_ANY = 255;
/** RFC 2535 §3.2 / RFC 4034 A.1.1 algorithm 253: private, named by a domain name at the start of the key field. */
export const KEY_ALGORITHM_PRIVATEDNS = 253;
/** The name that says "the rest is a binary OpenPGP public key". Under `.invalid` (RFC 6761) so it can never be delegated to anyone. */
export const OPENPGP_KEY_FORMAT_NAME = 'openpgp.muse.invalid';

const FLAG_NO_AUTH = 0x8000;
const FLAG_NO_CONF = 0x4000;
const FLAG_EXTENDED = 0x1000;
const NAME_TYPE_MASK = 0x0300;
const NAME_TYPE_ZONE = 0x0100;
const NAME_TYPE_RESERVED = 0x0300;

/** What one KEY record at `_muse.<domain>` turned out to be. */
export type KeyRrParseResult =
  /** Not a MUSE key (other protocol, zone key, "no key" flags); ignored. */
  | { readonly kind: 'foreign'; readonly reason: string }
  /** An email key in a form we cannot use (another algorithm or private format); reported. */
  | { readonly kind: 'unsupported'; readonly reason: string }
  /** Breaks RFC 2535 or our layout; reported. */
  | { readonly kind: 'malformed'; readonly reason: string }
  /** Its flags forbid use for confidentiality (A/C = 01), so it cannot be encrypted to; reported. */
  | { readonly kind: 'not-for-encryption'; readonly reason: string }
  | { readonly kind: 'ok'; readonly key: Uint8Array };

/** Builds the RDATA of our KEY record for a binary OpenPGP public key. */
export function buildKeyRdata(key: Uint8Array): Buffer {
  const header = Buffer.from([KEY_FLAGS_ENTITY >> 8, KEY_FLAGS_ENTITY & 0xff, KEY_PROTOCOL_EMAIL, KEY_ALGORITHM_PRIVATEDNS]);
  return Buffer.concat([header, wireName(OPENPGP_KEY_FORMAT_NAME), key]);
}

/** Parses the RDATA of a KEY record. */
export function parseKeyRdata(rdata: Buffer): KeyRrParseResult {
  if (rdata.length < 4) return { kind: 'malformed', reason: `RDATA of ${rdata.length} octets, at least 4 needed` };
  const flags = rdata.readUInt16BE(0);
  const protocol = rdata[2] ?? 0;
  const algorithm = rdata[3] ?? 0;
  if ((flags & (FLAG_NO_AUTH | FLAG_NO_CONF)) === (FLAG_NO_AUTH | FLAG_NO_CONF)) {
    return { kind: 'foreign', reason: 'flags say "no key"' };
  }
  if ((flags & NAME_TYPE_MASK) === NAME_TYPE_ZONE) return { kind: 'foreign', reason: 'a zone key' };
  if (protocol !== KEY_PROTOCOL_EMAIL && protocol !== KEY_PROTOCOL_ANY) {
    return { kind: 'foreign', reason: `protocol ${protocol} is not email` };
  }
  if ((flags & NAME_TYPE_MASK) === NAME_TYPE_RESERVED) return { kind: 'malformed', reason: 'reserved name type 11' };
  if (flags & FLAG_EXTENDED) return { kind: 'malformed', reason: 'extended flags are not used by MUSE records' };
  if (algorithm !== KEY_ALGORITHM_PRIVATEDNS) {
    return { kind: 'unsupported', reason: `algorithm ${algorithm} is not 253 (PRIVATEDNS + OpenPGP)` };
  }
  const name = readWireName(rdata, 4);
  if (!name) return { kind: 'malformed', reason: 'key field does not start with a domain name' };
  if (name.name !== OPENPGP_KEY_FORMAT_NAME) {
    return { kind: 'unsupported', reason: `private algorithm "${name.name}" is not ${OPENPGP_KEY_FORMAT_NAME}` };
  }
  const key = rdata.subarray(name.end);
  if (key.length === 0) return { kind: 'malformed', reason: 'empty key' };
  if (key.length > MAX_KEY_BYTES) return { kind: 'malformed', reason: `key of ${key.length} octets, more than ${MAX_KEY_BYTES}` };
  if (flags & FLAG_NO_CONF) return { kind: 'not-for-encryption', reason: 'flags forbid use for confidentiality' };
  return { kind: 'ok', key: new Uint8Array(key) };
}

/** The zone-file presentation of a KEY RDATA: `flags protocol algorithm base64`. */
export function keyRdataPresentation(rdata: Buffer): { readonly fields: string; readonly base64: string } {
  return {
    fields: `${rdata.readUInt16BE(0)} ${rdata[2] ?? 0} ${rdata[3] ?? 0}`,
    base64: rdata.subarray(4).toString('base64'),
  };
}

/** An uncompressed wire-format domain name (RFC 1035 §3.1). */
function wireName(name: string): Buffer {
  const labels = name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')]));
  return Buffer.concat([...labels, Buffer.from([0])]);
}

/** Reads an uncompressed wire-format name at `offset`; compression pointers are not allowed in RDATA of this type. */
function readWireName(bytes: Buffer, offset: number): { name: string; end: number } | undefined {
  const labels: string[] = [];
  let at = offset;
  for (;;) {
    const length = bytes[at];
    if (length === undefined || length > 63 || at + 1 + length > bytes.length) return undefined;
    at += 1;
    if (length === 0) break;
    labels.push(bytes.subarray(at, at + length).toString('latin1').toLowerCase());
    at += length;
    if (at - offset > 255) return undefined;
  }
  return { name: labels.join('.'), end: at };
}
