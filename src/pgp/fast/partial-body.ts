/**
 * Packet bodies of unknown length, written with partial body lengths (RFC 4880 §4.2.2.4) as the
 * bytes arrive: every part but the last holds exactly `2^exponent` octets and is announced by one
 * octet; the last part has a definite length. A full part is sent only once at least one more
 * octet is there to follow it, so the last part is never empty and a body shorter than one part
 * comes out as an ordinary definite-length packet.
 *
 * Two writers share that framing: one copies borrowed input into a part buffer it reuses (for
 * input its producer may overwrite), the other passes on buffers the caller gives up, cut at the
 * part boundaries, without copying them (for freshly made ciphertext).
 */
import { encodeLength, packetHeader } from './packet-framing.ts';

/** RFC 4880 §4.2.2.4: a partial length octet is 224 + the exponent of its power of two. */
const PARTIAL_LENGTH_BASE = 224;
/** The largest exponent a partial length octet can state (octet 254; 255 starts a five-octet length). */
const MAX_EXPONENT = 30;
/** RFC 4880 §4.2.2.4: the first partial length must be at least 512 octets. */
const MIN_EXPONENT = 9;
/** Most octets a part header can take: the packet tag, then the partial length octet. */
const PARTIAL_HEADER_BYTES = 2;

/** The headers of one packet's parts, in order: the first one carries the packet tag. */
class PartHeaders {
  readonly partBytes: number;
  readonly #tag: number;
  readonly #exponent: number;
  #first = true;

  constructor(tag: number, exponent: number) {
    if (!Number.isInteger(exponent) || exponent < MIN_EXPONENT || exponent > MAX_EXPONENT) throw new RangeError(`partial length exponent out of range: ${exponent}`);
    this.#tag = tag;
    this.#exponent = exponent;
    this.partBytes = 2 ** exponent;
  }

  /** The header of a full part that more octets follow. */
  partial(): Buffer {
    const length = PARTIAL_LENGTH_BASE + this.#exponent;
    const header = this.#first ? Buffer.from([0xc0 | this.#tag, length]) : Buffer.from([length]);
    this.#first = false;
    return header;
  }

  /** The header of the last part, `length` octets long. */
  last(length: number): Buffer {
    return this.#first ? packetHeader(this.#tag, length) : encodeLength(length);
  }
}

/**
 * Frames a body given as borrowed bytes: they are copied into one part buffer, reused for every
 * part, so each piece handed to `emit` (header and part together) is valid only during that call.
 */
export class BufferingPartialWriter {
  readonly #headers: PartHeaders;
  readonly #emit: (piece: Buffer) => void;
  /** Room for the longest part header, then the part. */
  readonly #part: Buffer;
  #filled = 0;

  /**
   * @param tag the packet tag; RFC 4880 allows partial lengths only for data packets
   * @param exponent parts are `2^exponent` octets, 512 octets to 1 GiB
   */
  constructor(tag: number, exponent: number, emit: (piece: Buffer) => void) {
    this.#headers = new PartHeaders(tag, exponent);
    this.#emit = emit;
    this.#part = Buffer.allocUnsafe(PARTIAL_HEADER_BYTES + this.#headers.partBytes);
  }

  /** Appends `data` to the body; it is copied, so the caller may reuse it at once. */
  write(data: Uint8Array): void {
    const partBytes = this.#headers.partBytes;
    for (let at = 0; at < data.length; ) {
      if (this.#filled === partBytes) {
        const header = this.#headers.partial();
        const start = PARTIAL_HEADER_BYTES - header.length;
        header.copy(this.#part, start);
        this.#emit(this.#part.subarray(start));
        this.#filled = 0;
      }
      const take = Math.min(partBytes - this.#filled, data.length - at);
      this.#part.set(take === data.length ? data : data.subarray(at, at + take), PARTIAL_HEADER_BYTES + this.#filled);
      this.#filled += take;
      at += take;
    }
  }

  /** Ends the body: what is left goes out with a definite length. No write may follow. */
  end(): void {
    const rest = this.#part.subarray(PARTIAL_HEADER_BYTES, PARTIAL_HEADER_BYTES + this.#filled);
    this.#emit(Buffer.concat([this.#headers.last(rest.length), rest]));
  }
}

/**
 * Frames a body given as buffers the caller gives up: they are held until their part is complete,
 * then handed to `emit` (cut at part boundaries, headers in between) without being copied.
 */
export class ForwardingPartialWriter {
  readonly #headers: PartHeaders;
  readonly #emit: (piece: Buffer) => void;
  readonly #held: Buffer[] = [];
  #heldBytes = 0;

  /** Parameters as for {@link BufferingPartialWriter}; each piece emitted is the receiver's to keep. */
  constructor(tag: number, exponent: number, emit: (piece: Buffer) => void) {
    this.#headers = new PartHeaders(tag, exponent);
    this.#emit = emit;
  }

  /** Appends `data` to the body; the writer keeps it, so the caller must not change it. */
  write(data: Buffer): void {
    if (data.length === 0) return;
    this.#held.push(data);
    this.#heldBytes += data.length;
    // Strictly more than a part: a full part goes out only when something follows it.
    while (this.#heldBytes > this.#headers.partBytes) this.#sendPart();
  }

  /** Ends the body: what is held goes out with a definite length. No write may follow. */
  end(): void {
    this.#emit(this.#headers.last(this.#heldBytes));
    for (const piece of this.#held.splice(0)) this.#emit(piece);
    this.#heldBytes = 0;
  }

  #sendPart(): void {
    this.#emit(this.#headers.partial());
    let missing = this.#headers.partBytes;
    while (missing > 0) {
      const piece = this.#held[0] as Buffer;
      if (piece.length <= missing) {
        this.#held.shift();
        this.#emit(piece);
        missing -= piece.length;
      } else {
        this.#emit(piece.subarray(0, missing));
        this.#held[0] = piece.subarray(missing);
        missing = 0;
      }
    }
    this.#heldBytes -= this.#headers.partBytes;
  }
}
