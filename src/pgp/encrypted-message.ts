/**
 * Whether an OpenPGP message is an encrypted one by its packet structure (RFC 9580 §10.3): one or
 * more session-key packets, then exactly one encrypted-data packet, then nothing. Only packet
 * headers and each packet's first (version) octet are read; bodies are skipped by their lengths,
 * so the cost is one pass over the input with a few octets of state, and nothing is decrypted.
 * A signed-only, compressed or literal message, or anything that does not frame exactly, is not
 * encrypted.
 */
import { dearmorPieces } from './armor.ts';
import { PgpError } from './errors.ts';

/** Session-key packet tags and the versions RFC 9580 (and RFC 4880 before it) define for them. */
const KEY_PACKETS: ReadonlyMap<number, readonly number[]> = new Map([
  [1, [3, 6]], // Public-Key Encrypted Session Key (§5.1)
  [3, [4, 5, 6]], // Symmetric-Key Encrypted Session Key (§5.3)
]);
/** Encrypted-data packet tags and their versions; `null`: the packet has no version octet. */
const DATA_PACKETS: ReadonlyMap<number, readonly number[] | null> = new Map([
  [9, null], // Symmetrically Encrypted Data (§5.7), legacy: its body is ciphertext from the first octet
  [18, [1, 2]], // Symmetrically Encrypted and Integrity Protected Data (§5.13)
  [20, [1]], // OCB Encrypted Data (GnuPG's AEAD packet of the draft that preceded RFC 9580)
]);

/** Lengths at or above this first octet, up to 223, take two octets (§4.2.1.2). */
const TWO_OCTET_START = 192;
/** First octets from here to 254 announce a partial body length (§4.2.1.4). */
const PARTIAL_START = 224;
/** The first octet of a five-octet length (§4.2.1.3). */
const FIVE_OCTET = 255;

/**
 * Reads a packet sequence incrementally. Feed the octets with {@link update} in any chunking and
 * ask {@link finish} at the end; `update` returns false as soon as the answer is known to be no,
 * so a caller can stop reading.
 */
export class EncryptedMessageShape {
  /** Where in the grammar the next octet falls. */
  #at: 'tag' | 'length' | 'body' | 'invalid' = 'tag';
  #tag = 0;
  /** New-format header (§4.2.1); old-format headers (§4.2.2) state their length size in the tag octet. */
  #newFormat = true;
  /** Old format: how many length octets the tag octet announced. */
  #oldLengthSize = 0;
  /** The length octets read so far. */
  readonly #length: number[] = [];
  /** Octets left in the current body part; Infinity for an old-format indeterminate length. */
  #left = 0;
  /** The current part was announced by a partial length, so another length follows it. */
  #partial = false;
  /** The next body octet is the packet's version octet, still to be checked. */
  #versionPending = false;
  #keyPackets = 0;
  #sawData = false;

  /** Session-key packets (public-key and password) met so far; reading stops counting once the shape fails. */
  get keyPackets(): number {
    return this.#keyPackets;
  }

  /** Reads more octets; false once the sequence can no longer be an encrypted message. */
  update(octets: Uint8Array): boolean {
    let i = 0;
    while (i < octets.length && this.#at !== 'invalid') {
      if (this.#at === 'body') {
        if (this.#versionPending) {
          this.#versionPending = false;
          if (!this.#versionAllowed(octets[i] as number)) return this.#fail();
        }
        const skip = Math.min(this.#left, octets.length - i);
        i += skip;
        this.#left -= skip;
        if (this.#left === 0) this.#endPart();
      } else if (this.#at === 'tag') {
        this.#readTag(octets[i++] as number);
      } else {
        this.#length.push(octets[i++] as number);
        this.#readLength();
      }
    }
    return this.#at !== 'invalid';
  }

  /** Whether everything read was one encrypted message, ending exactly here. */
  finish(): boolean {
    if (this.#at === 'tag') return this.#sawData;
    // An old-format indeterminate length runs to the end of the data (RFC 4880 §4.2.1).
    return this.#at === 'body' && this.#left === Infinity && !this.#versionPending;
  }

  #fail(): false {
    this.#at = 'invalid';
    return false;
  }

  #readTag(octet: number): void {
    // Nothing may follow the encrypted data, and bit 7 of every packet tag is set (§4.2).
    if (this.#sawData || (octet & 0x80) === 0) return void this.#fail();
    this.#newFormat = (octet & 0x40) !== 0;
    this.#tag = this.#newFormat ? octet & 0x3f : (octet >> 2) & 0x0f;
    const isKey = KEY_PACKETS.has(this.#tag);
    // Session keys come first; the encrypted data needs at least one to be decryptable.
    if (!isKey && !(DATA_PACKETS.has(this.#tag) && this.#keyPackets > 0)) return void this.#fail();
    if (isKey) this.#keyPackets++;
    this.#length.length = 0;
    this.#versionPending = true;
    if (this.#newFormat) {
      this.#at = 'length';
      return;
    }
    const lengthType = octet & 0x03;
    if (lengthType === 3) {
      if (isKey) return void this.#fail();
      this.#left = Infinity;
      this.#partial = false;
      this.#at = 'body';
      return;
    }
    this.#oldLengthSize = 1 << lengthType;
    this.#at = 'length';
  }

  /** Completes a length field once all its octets are in. */
  #readLength(): void {
    const octets = this.#length;
    const first = octets[0] as number;
    let length: number;
    let partial = false;
    if (!this.#newFormat) {
      if (octets.length < this.#oldLengthSize) return;
      length = octets.reduce((value, octet) => value * 256 + octet, 0);
    } else if (first < TWO_OCTET_START) {
      length = first;
    } else if (first < PARTIAL_START) {
      if (octets.length < 2) return;
      length = ((first - TWO_OCTET_START) << 8) + (octets[1] as number) + TWO_OCTET_START;
    } else if (first < FIVE_OCTET) {
      length = 2 ** (first & 0x1f);
      partial = true;
    } else {
      if (octets.length < 5) return;
      length = octets.slice(1).reduce((value, octet) => value * 256 + octet, 0);
    }
    // Partial lengths are for data packets only (§4.2.1.4).
    if (partial && !DATA_PACKETS.has(this.#tag)) return void this.#fail();
    // The version octet must exist; the legacy packet has none but cannot be empty either.
    if (length === 0 && this.#versionPending) return void this.#fail();
    this.#length.length = 0;
    this.#left = length;
    this.#partial = partial;
    this.#at = 'body';
    if (length === 0) this.#endPart();
  }

  /** After a body part: another length follows a partial one; else the packet is complete. */
  #endPart(): void {
    if (this.#partial) {
      this.#at = 'length';
      return;
    }
    if (DATA_PACKETS.has(this.#tag)) this.#sawData = true;
    this.#at = 'tag';
  }

  #versionAllowed(version: number): boolean {
    const versions = KEY_PACKETS.get(this.#tag) ?? DATA_PACKETS.get(this.#tag);
    return versions === null || (versions !== undefined && versions.includes(version));
  }
}

/** Whether binary OpenPGP data is exactly one encrypted message (see {@link EncryptedMessageShape}). */
export function isEncryptedPackets(data: Uint8Array): boolean {
  const shape = new EncryptedMessageShape();
  return shape.update(data) && shape.finish();
}

/**
 * Whether `armored` is exactly one armored `PGP MESSAGE` block (blank lines around it allowed,
 * read as strictly as {@link dearmorPieces} reads it) holding an encrypted message. Decodes piece
 * by piece and stops at the first octet that rules it out.
 */
export function isEncryptedArmor(armored: Uint8Array): boolean {
  const shape = new EncryptedMessageShape();
  try {
    for (const piece of dearmorPieces('MESSAGE', armored)) {
      if (!shape.update(piece)) return false;
    }
  } catch (error) {
    if (error instanceof PgpError) return false;
    throw error;
  }
  return shape.finish();
}
