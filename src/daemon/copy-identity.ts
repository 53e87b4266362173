/**
 * What identifies a split-off copy: its envelope, its Message-ID field and a digest of its body as an MTA
 * hands the body to a milter. The re-injection marker is bound to it (a marker moved to any other message
 * stops verifying), and the re-injection ledger keys on it (a retried original finds its copy again).
 */
import { createHash } from 'node:crypto';

/** Removes the angle brackets the MTA keeps around envelope addresses. */
export function bareAddress(address: string): string {
  return address.replace(/^<(.*)>$/, '$1');
}

/** The envelope, Message-ID fields and body digest of a message. */
export interface CopyIdentity {
  /** Envelope sender without angle brackets ('' for the null sender). */
  readonly sender: string;
  /** Envelope recipients without angle brackets, in any order. */
  readonly recipients: readonly string[];
  /** The value of every Message-ID field, in order (see {@link messageIdValues}). */
  readonly messageIds: readonly string[];
  /** {@link BodyDigest} of the body. */
  readonly bodyDigest: Buffer;
}

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');
const CR_ONLY = Buffer.from('\r');

/**
 * SHA-256 over a body as a milter receives it after an SMTP hop. The sending client may leave bare LF line
 * ends and an unterminated last line; the receiving MTA reads lines up to each LF, drops one CR before it,
 * and hands every line to the milter ending in CRLF (dot-stuffing is undone before the milter sees anything).
 * Digesting that line form makes the value the same on both sides of the hop, and the same again for bytes
 * already in that form, so the sender of a copy and the milter that sees it come back agree.
 */
export class BodyDigest {
  readonly #hash = createHash('sha256');
  /** A CR at the end of the last chunk, held back: it is dropped if an LF follows. */
  #heldCr = false;
  /** Bytes of a line without its LF yet have been seen. */
  #lineOpen = false;

  /** Adds the next chunk of the body. */
  update(chunk: Uint8Array): this {
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      const end = lf < 0 ? chunk.length : lf;
      const segment = chunk.subarray(start, end);
      if (segment.length > 0 && this.#heldCr) this.#hash.update(CR_ONLY);
      if (segment.length > 0) this.#heldCr = false;
      if (lf < 0) {
        // The line goes on in the next chunk; its last CR may yet turn out to precede an LF.
        const last = segment[segment.length - 1];
        this.#heldCr = last === CR;
        this.#hash.update(this.#heldCr ? segment.subarray(0, -1) : segment);
        this.#lineOpen = true;
        break;
      }
      // One CR before the LF belongs to the line end, whether it came in this chunk or was held back.
      this.#hash.update(segment.length > 0 && segment[segment.length - 1] === CR ? segment.subarray(0, -1) : segment);
      this.#hash.update(CRLF);
      this.#heldCr = false;
      this.#lineOpen = false;
      start = lf + 1;
    }
    return this;
  }

  /** The digest; an unterminated last line counts as terminated (the SMTP client ends it before the final dot). */
  digest(): Buffer {
    if (this.#heldCr) this.#hash.update(CR_ONLY);
    if (this.#lineOpen) this.#hash.update(CRLF);
    return this.#hash.digest();
  }
}

/** Digests a whole body with {@link BodyDigest}. */
export async function digestBody(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Buffer> {
  const digest = new BodyDigest();
  for await (const chunk of chunks) digest.update(chunk);
  return digest.digest();
}

/**
 * The values of every Message-ID field, in order. Line breaks are taken out (the MTA may hand a folded value over
 * with LF where the wire had CRLF) and surrounding blanks trimmed (whether the MTA keeps the space after the colon
 * depends on the milter protocol options); everything else stays as it is.
 */
export function messageIdValues(headers: ReadonlyArray<{ readonly name: string; readonly value: string }>): string[] {
  return headers.filter((h) => h.name.toLowerCase() === 'message-id').map((h) => h.value.replace(/[\r\n]/g, '').trim());
}

/**
 * An unambiguous byte encoding of a list of strings (each one length-prefixed), so no two different lists hash or
 * authenticate alike. UTF-8, which is injective for any JavaScript string.
 */
export function encodeParts(parts: readonly string[]): Buffer {
  return Buffer.concat(
    parts.map((part) => {
      const bytes = Buffer.from(part, 'utf8');
      return Buffer.concat([Buffer.from(`${bytes.length}:`), bytes]);
    }),
  );
}

/** The identity as a list of parts: recipients sorted (the set matters, not the RCPT order), counts before lists. */
export function identityParts(identity: CopyIdentity): string[] {
  const recipients = [...identity.recipients].sort();
  return [identity.sender, String(recipients.length), ...recipients, String(identity.messageIds.length), ...identity.messageIds, identity.bodyDigest.toString('hex')];
}
