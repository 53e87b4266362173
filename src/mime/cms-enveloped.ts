/**
 * Whether a CMS object (RFC 5652) is encrypted: a ContentInfo whose content type is envelopedData
 * (RFC 5652 §6) or authEnvelopedData (RFC 5083), and whose content starts the way both do.
 *
 * The BER is read with asn1js (PeculiarVentures, maintained, no native code, the parser of PKI.js):
 * it accepts BER as well as DER, which matters because S/MIME agents stream enveloped data with
 * indefinite lengths, and its parser has resource limits for untrusted input (depth, node count,
 * content length), which bound the work a hostile body can cause.
 */
import { Constructed, fromBER, Integer, ObjectIdentifier, Sequence, Set as AsnSet, type BaseBlock } from 'asn1js';

/** RFC 5652 §6.1 id-envelopedData. */
export const ENVELOPED_DATA = '1.2.840.113549.1.7.3';
/** RFC 5083 §1.1 id-ct-authEnvelopedData. */
export const AUTH_ENVELOPED_DATA = '1.2.840.113549.1.9.16.1.23';

/**
 * Most elements the parser may build. Encrypted content streamed in 4 KiB segments (OpenSSL's
 * `-stream`) makes about 12 800 of them at the 50 MiB message limit; a limit keeps a body of many
 * tiny elements from costing seconds and hundreds of MiB. Content beyond it counts as not
 * encrypted, which only means it is wrapped once more.
 */
const MAX_NODES = 20_000;
/** Enveloped data nests about ten levels deep; far fewer than the library's default of 100 needed. */
const MAX_DEPTH = 32;
/** ASN.1 tag class of context-specific tags such as `[0]`. */
const CONTEXT_SPECIFIC = 3;

/** Whether `ber` is exactly one ContentInfo holding enveloped or auth-enveloped data. */
export function isEnvelopedCms(ber: Uint8Array): boolean {
  if (ber.length === 0) return false;
  const parsed = fromBER(ber, {
    maxDepth: MAX_DEPTH,
    maxNodes: MAX_NODES,
    maxContentLength: ber.length,
    // The octet strings hold ciphertext: looking for ASN.1 inside them would be wasted work.
    parseEmbedded: false,
    // Only read while this call runs, so the input need not be copied.
    copyInput: false,
  });
  if (parsed.offset !== ber.length) return false;
  // ContentInfo ::= SEQUENCE { contentType OBJECT IDENTIFIER, content [0] EXPLICIT ANY }
  const [contentType, content, ...rest] = elements(parsed.result) ?? [];
  if (!(contentType instanceof ObjectIdentifier) || !(content instanceof Constructed) || rest.length > 0) return false;
  const oid = contentType.getValue();
  if (oid !== ENVELOPED_DATA && oid !== AUTH_ENVELOPED_DATA) return false;
  if (content.idBlock.tagClass !== CONTEXT_SPECIFIC || content.idBlock.tagNumber !== 0) return false;
  const [inner, ...more] = elements(content, true) ?? [];
  if (!(inner instanceof Sequence) || more.length > 0) return false;
  return startsLikeEnveloped(elements(inner) ?? []);
}

/**
 * EnvelopedData (RFC 5652 §6.1) and AuthEnvelopedData (RFC 5083 §2.1) both begin `version`,
 * optional `[0] originatorInfo`, `recipientInfos` (a SET of at least one), then a SEQUENCE naming
 * the type of the encrypted content: without a recipient nobody could decrypt it.
 */
function startsLikeEnveloped(fields: readonly BaseBlock[]): boolean {
  const [version, ...afterVersion] = fields;
  if (!(version instanceof Integer)) return false;
  const first = afterVersion[0];
  const hasOriginator = first instanceof Constructed && first.idBlock.tagClass === CONTEXT_SPECIFIC && first.idBlock.tagNumber === 0;
  const [recipients, encrypted] = hasOriginator ? afterVersion.slice(1) : afterVersion;
  if (!(recipients instanceof AsnSet) || (elements(recipients) ?? []).length === 0) return false;
  const [encryptedType] = encrypted instanceof Sequence ? (elements(encrypted) ?? []) : [];
  return encryptedType instanceof ObjectIdentifier;
}

/**
 * The elements of a constructed value without the end-of-contents marker of the indefinite form;
 * `null` for anything else. `anyConstructed` admits tagged constructions such as `[0]`, which the
 * library types as plain Constructed.
 */
function elements(block: BaseBlock, anyConstructed = false): BaseBlock[] | null {
  const isUniversal = block instanceof Sequence || block instanceof AsnSet;
  if (!(block instanceof Constructed) || (!isUniversal && !anyConstructed)) return null;
  const values = block.valueBlock.value;
  const last = values[values.length - 1];
  // Tag class 1 (universal), number 0: the end-of-contents octets closing an indefinite length.
  const endMarker = block.valueBlock.isIndefiniteForm && last !== undefined && last.idBlock.tagClass === 1 && last.idBlock.tagNumber === 0;
  return endMarker ? values.slice(0, -1) : values;
}
