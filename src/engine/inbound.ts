/**
 * Inbound opening: recognises PGP/MIME addressed to this site, decrypts it, judges the signature and delivers the
 * message with the header its verdict allows (docs/security.md). The rules, in short:
 *
 * - Whose key must have signed is read from the signed header: the one mailbox of its one From field. Anything
 *   else (no From inside, several From fields or mailboxes, an address literal) cannot earn `pass`.
 * - `pass` needs a valid signature by a key that domain publishes (and, when we hold a pin for it, a key the pin
 *   vouches for), and the message must be meant for us: our key among the signature's Intended Recipient
 *   Fingerprints, or, for senders that do not write them, a signed To or Cc in one of our local domains
 *   (otherwise the weaker `policy`).
 * - The three RFC 3156 shapes are judged alike: combined sign+encrypt (§6.2), a multipart/signed inside the
 *   encryption (§6.1), and a multipart/signed in clear.
 * - Under `pass` and `policy` the delivered user-facing fields are exactly the signed ones; otherwise the
 *   transport header stays and decrypted fields travel only as `Muse-Unverified-*`. A failed verdict leaves the
 *   message as it came (still encrypted) apart from the Authentication-Results field.
 * - Whatever the message, forged results under our authserv-id and our own fields are removed first.
 */
import type { PrivateKey, PublicKey } from 'openpgp';
import { getDomain } from 'tldts';
import { authorOf, mailboxesOf, type AuthorResult } from '../mail/address.ts';
import { isValidBoundary } from '../mime/boundary.ts';
import { contentTypeOf, multipartBoundary, type ContentType } from '../mime/content-fields.ts';
import { toCrlf } from '../mime/crlf.ts';
import { parseEntity } from '../mime/entity.ts';
import { fieldsNamed, firstValue, headerByteLength, sameHeaderName, type HeaderEncoding, type HeaderField } from '../mime/header-fields.ts';
import { stripHeaderProtection, type HeaderProtectionMode } from '../mime/inner-entity.ts';
import { signedContentType } from '../mime/pgp-mime-build.ts';
import { EncryptedPartReader } from '../mime/encrypted-part-stream.ts';
import { pgpMimeLayer, readPgpMime } from '../mime/pgp-mime-read.ts';
import { LineDearmorer } from '../pgp/armor.ts';
import { openStream, type StreamDecrypted } from '../pgp/stream/open-stream.ts';
import { decryptMessage, isAddressedTo, readEncrypted, verifyDecrypted, type DecryptedMessage } from '../pgp/decrypt.ts';
import { readDetachedSignature, verifyDetached } from '../pgp/detached.ts';
import { PgpError } from '../pgp/errors.ts';
import type { SignatureCheck } from '../pgp/signature-check.ts';
import { authenticationResultsInsert, forgedFieldDeletions } from './authentication-results.ts';
import { collect, prepend, readAhead, readBody, type BodyInput, type BodyState } from './body-input.ts';
import { contentFieldEdits, signedHeaderEdits, unverifiedFieldAdditions } from './delivered-header.ts';
import { EngineError, rejectUnknownOptions } from './errors.ts';
import { Unstreamable } from '../stream/unstreamable.ts';
import type { HeaderEdit } from './header-edits.ts';
import { decompressionCap, headerLimitExceeded, limitExceeded, resolveLimits, type LimitExceeded, type Limits } from './limits.ts';
import { DecryptionQueues } from './decryption-queues.ts';
import type { Slots } from './slots.ts';
import { BodySink, DEFAULT_SPOOL, memoryBody, offsetBody, type OutputBody, type SpoolOptions } from './output-body.ts';
import { plainVerdict, verdictFromFailedCheck, type Verdict, type VerdictReason } from './verdict.ts';

/** A sending domain's published keys, as the DNS layer and the pin store judge them. */
export interface SenderKeys {
  /** Keys that may vouch for the domain: published, and (under a pin without DNSSEC) vouched for by the pin. */
  readonly keys: readonly PublicKey[];
  /** Keys the domain publishes that its pin does not vouch for (a signature by one of them fails). */
  readonly unvouched?: readonly PublicKey[];
  /** Whether the answer was DNSSEC-validated. */
  readonly dnssec: boolean;
}

/** Looks up a domain's keys; `null` when it publishes none. A rejection is a temporary failure. */
export type SenderKeyLookup = (domain: string) => Promise<SenderKeys | null>;

/** How the signing key's domain must match the From domain. */
export type Alignment = 'strict' | 'relaxed';

/** Options of {@link openInbound}. */
export interface InboundOptions {
  readonly headers: readonly HeaderField[];
  /**
   * The body. Given as a function that reads it (again) from the start, a large multipart/encrypted body is
   * opened as it streams (docs/pgp-mime.md, "Memory"), and read whole only for the shapes the streaming reader
   * leaves to the whole read.
   */
  readonly body: BodyInput | (() => AsyncIterable<Uint8Array>);
  /** The site's decryption keys (unlocked); several during a key rollover. */
  readonly siteKeys: readonly PrivateKey[];
  readonly senderKeys: SenderKeyLookup;
  /** This host's authserv-id for Authentication-Results (RFC 8601 §2.5). */
  readonly authservId: string;
  /**
   * Domains this site receives mail for (normalised). For a signature without Intended Recipient Fingerprints,
   * `pass` needs a signed To or Cc in one of them. Default none.
   */
  readonly localDomains?: readonly string[];
  /**
   * `strict` (default): the key must be published by the From domain itself. `relaxed`: when the From domain
   * publishes none, a key of its organisational domain (public suffix list) may sign, as DMARC's relaxed mode.
   */
  readonly alignment?: Alignment;
  /** Remove a verified site signature (multipart/signed) instead of only reporting it. Default false. */
  readonly unwrapSigned?: boolean;
  /** How header strings map to bytes. Default `utf8`. */
  readonly headerEncoding?: HeaderEncoding;
  readonly limits?: Partial<Limits>;
  /**
   * Shared by every message a process opens, so only so many decryptions run at once; the others wait their
   * turn. {@link DecryptionQueues} gives small and large encrypted data a queue each (the daemon's choice); one
   * {@link Slots} queues them all together. Without it decryptions are not limited in number.
   */
  readonly decryptionSlots?: Slots | DecryptionQueues;
  /** Clock for key validity and signature checks. */
  readonly now?: () => Date;
  /** Where decrypted content of streamed messages is spooled (the threshold is the engine's own). */
  readonly spool?: Partial<Pick<SpoolOptions, 'dir' | 'tag'>>;
  /** Bodies larger than this are opened as they stream, when `body` can be read again. Default 1 MiB. */
  readonly streamAboveBytes?: number;
  /**
   * Told which reader gave the result: `whole` (the body read into memory), `streamed`, or `streamed-then-whole`
   * (the streaming reader left the shape to the whole read). For logs and tests.
   */
  readonly onRoute?: (route: InboundRoute) => void;
}

/** See {@link InboundOptions.onRoute}. */
export type InboundRoute = 'whole' | 'streamed' | 'streamed-then-whole';

/** The default of {@link InboundOptions.streamAboveBytes}: as outbound, the whole read is faster below it. */
export const DEFAULT_STREAM_ABOVE_BYTES = 1024 * 1024;

const OPTION_KEYS = ['headers', 'body', 'siteKeys', 'senderKeys', 'authservId', 'localDomains', 'alignment', 'unwrapSigned', 'headerEncoding', 'limits', 'decryptionSlots', 'now', 'spool', 'streamAboveBytes', 'onRoute'];

/** Which PGP/MIME layer a result is about. */
export type InboundLayer = 'encrypted' | 'signed';

/** Why a message's body was left exactly as it was. */
export type UnchangedReason = 'not-pgp-mime' | 'not-for-us' | 'not-site-signed' | 'no-sender-key';

/** An opened message: apply `headerEdits` in order and replace the body with `body`. */
export interface InboundOpened {
  readonly kind: 'opened';
  readonly layer: InboundLayer;
  readonly verdict: Verdict;
  /** The RFC 9788 `hp` mode found on the inner entity, if any. */
  readonly headerProtection: HeaderProtectionMode | null;
  readonly headerEdits: HeaderEdit[];
  readonly body: OutputBody;
}

/** The result of {@link openInbound}. */
export type InboundResult =
  | InboundOpened
  /** Reported only: apply `headerEdits` (Authentication-Results, and for pass the signed header), keep the body. */
  | { readonly kind: 'annotated'; readonly layer: InboundLayer; readonly verdict: Verdict; readonly headerEdits: HeaderEdit[] }
  /** Nothing to verify: body untouched; `headerEdits` only remove forged fields (often none). */
  | { readonly kind: 'unchanged'; readonly reason: UnchangedReason; readonly headerEdits: HeaderEdit[] }
  | LimitExceeded
  /** The body could not be read; the message is untouched. */
  | { readonly kind: 'failed'; readonly error: EngineError };

/**
 * Verification time is moved this far ahead of the clock, so a sender whose clock runs slightly
 * fast does not produce signatures "created in the future".
 */
const CLOCK_SKEW_MS = 15 * 60 * 1000;

interface Context {
  readonly headers: readonly HeaderField[];
  readonly siteKeys: readonly PrivateKey[];
  /** Primary fingerprints of the site keys, uppercase hex. */
  readonly ourFingerprints: ReadonlySet<string>;
  readonly lookup: SenderKeyLookup;
  readonly authservId: string;
  readonly localDomains: ReadonlySet<string>;
  readonly alignment: Alignment;
  readonly unwrapSigned: boolean;
  readonly encoding: HeaderEncoding;
  readonly limits: Limits;
  readonly slots: Slots | DecryptionQueues | undefined;
  readonly spoolDir: string;
  readonly spoolTag: string | undefined;
  readonly streamAbove: number;
  readonly onRoute: (route: InboundRoute) => void;
  readonly now: Date;
  /** Deletions of forged fields, applied to every message. */
  readonly forged: readonly HeaderEdit[];
}

/** An entity: its header fields and body bytes (in a spool file for a streamed message). */
interface Entity<B extends Buffer | OutputBody = Buffer> {
  readonly kind: 'entity';
  readonly fields: readonly HeaderField[];
  readonly body: B;
}

/** Content under a signature, with the check that judges it. */
interface SignedContent {
  /** The header that was signed (the payload's or the signed part's). */
  readonly fields: readonly HeaderField[];
  readonly verify: (keys: readonly PublicKey[]) => Promise<SignatureCheck>;
  readonly encrypted: boolean;
}

/**
 * How signed content was judged. `unattributed`: no site key of the author domain is involved (it publishes none,
 * or a key it does not publish signed, or no author domain could be read); the encrypted shapes turn that into a
 * verdict, a multipart/signed in clear is left alone.
 */
type Judgement = { readonly kind: 'verdict'; readonly verdict: Verdict } | { readonly kind: 'unattributed'; readonly verdict: Verdict };

/** Opens one incoming message. Throws only {@link EngineError} `BAD_OPTIONS`. */
export async function openInbound(options: InboundOptions): Promise<InboundResult> {
  rejectUnknownOptions(options, OPTION_KEYS, 'openInbound');
  if (!/^[^\s;()"]+$/.test(options.authservId)) throw new EngineError('BAD_OPTIONS', 'openInbound: authservId must be a token');
  const ctx: Context = {
    headers: options.headers,
    siteKeys: options.siteKeys,
    ourFingerprints: new Set(options.siteKeys.map((k) => k.getFingerprint().toUpperCase())),
    lookup: options.senderKeys,
    authservId: options.authservId,
    localDomains: new Set(options.localDomains ?? []),
    alignment: options.alignment ?? 'strict',
    unwrapSigned: options.unwrapSigned ?? false,
    encoding: options.headerEncoding ?? 'utf8',
    limits: resolveLimits(options.limits),
    slots: options.decryptionSlots,
    spoolDir: options.spool?.dir ?? DEFAULT_SPOOL.dir,
    spoolTag: options.spool?.tag,
    streamAbove: options.streamAboveBytes ?? DEFAULT_STREAM_ABOVE_BYTES,
    onRoute: options.onRoute ?? (() => undefined),
    now: (options.now ?? (() => new Date()))(),
    forged: forgedFieldDeletions(options.headers, options.authservId),
  };
  const headerBytes = headerByteLength(ctx.headers, ctx.encoding);
  const headerLimit = headerLimitExceeded(ctx.headers.length, headerBytes, ctx.limits);
  if (headerLimit !== null) return headerLimit;
  const type = contentTypeOf(ctx.headers);
  const layer = pgpMimeLayer(type);
  if (layer === null) return unchanged(ctx, 'not-pgp-mime');
  const budget = ctx.limits.maxMessageBytes - headerBytes;
  const input = options.body;
  if (typeof input === 'function' && layer === 'encrypted') return openPerhapsStreaming(ctx, type, input, budget);
  const result = await openWhole(ctx, type, typeof input === 'function' ? input() : input, budget);
  ctx.onRoute('whole');
  return result;
}

/** Reads the body whole, then opens it. */
async function openWhole(ctx: Context, type: ContentType, input: BodyInput, budget: number): Promise<InboundResult> {
  const state: BodyState = { exceeded: false, readFailed: false };
  let body: Buffer;
  try {
    body = await collect(readBody(input, budget, state));
  } catch (error) {
    if (state.exceeded) return limitExceeded('message-bytes', ctx.limits.maxMessageBytes);
    return { kind: 'failed', error: new EngineError('BODY_READ_FAILED', 'reading the body failed', { cause: error }) };
  }
  const container = readPgpMime(type, body);
  if (container === null) return unchanged(ctx, 'not-pgp-mime');
  if (container.kind === 'malformed') {
    // A broken multipart/signed cannot be attributed to a site; a broken encrypted one is reported.
    if (container.layer === 'signed') return unchanged(ctx, 'not-site-signed');
    return annotate(ctx, 'encrypted', plainVerdict('fail', 'malformed', null, true));
  }
  if (container.kind === 'encrypted') return openEncrypted(ctx, container.armoredMessage);
  return openClearSigned(ctx, type, container.signedPart, container.signature);
}

/** A multipart/signed in clear: reported (or unwrapped) only when the author domain's site key signed it. */
async function openClearSigned(ctx: Context, type: ContentType, signedPart: Buffer, armoredSignature: Buffer): Promise<InboundResult> {
  const signed = toCrlf(signedPart);
  const entity = entityOf(ctx, signed);
  if (entity.kind === 'limit-exceeded') return entity;
  const judgement = await judge(ctx, detachedContent(ctx, entity.fields, signed, armoredSignature, false));
  if (judgement.kind === 'unattributed') {
    // Signed by someone else (a person's own key, another site): not ours to judge, only forged fields go.
    if (judgement.verdict.result === 'temperror') return annotate(ctx, 'signed', judgement.verdict);
    return unchanged(ctx, judgement.verdict.reason === 'no-published-key' ? 'no-sender-key' : 'not-site-signed');
  }
  const verdict = judgement.verdict;
  if (!authenticated(verdict)) return annotate(ctx, 'signed', verdict);
  if (ctx.unwrapSigned) return opened(ctx, 'signed', verdict, entity);
  // The body stays multipart/signed, shown with the signed header all the same. Its Content-* fields are nobody's
  // statement: it is delivered under the Content-Type it was judged under, written anew, so no reader finds another
  // boundary in it or decodes the body with a transfer encoding added on the way.
  const judgedType = signedTypeOf(type);
  if (judgedType === null) return unchanged(ctx, 'not-site-signed');
  // A value that differs only in its line breaks (the MTA may hand folded values over with bare LF) stays as it came.
  const received = firstValue(ctx.headers, 'Content-Type');
  const contentType = received !== undefined && lineBreaksAsLf(received) === lineBreaksAsLf(judgedType) ? received : judgedType;
  return {
    kind: 'annotated',
    layer: 'signed',
    verdict,
    headerEdits: [
      ...ctx.forged,
      ...contentFieldEdits(ctx.headers, [{ name: 'Content-Type', value: contentType }]),
      ...signedHeaderEdits(ctx.headers, entity.fields),
      authenticationResultsInsert(ctx.authservId, verdict),
    ],
  };
}

function lineBreaksAsLf(value: string): string {
  return value.replace(/\r\n/g, '\n');
}

/** RFC 3156 §5 `micalg` values: `pgp-` and a hash name. */
const MICALG = /^pgp-[a-z0-9-]+$/i;

/**
 * The Content-Type value of a multipart/signed written from what was read of it: its boundary and `micalg` only,
 * so readers that would resolve a repeated parameter or RFC 2231 continuations otherwise read the same boundary.
 * Null when the boundary or `micalg` cannot be written back as RFC 2046 and RFC 3156 allow.
 */
function signedTypeOf(type: ContentType): string | null {
  const boundary = multipartBoundary(type);
  const micalg = type.params['micalg'];
  if (boundary === undefined || !isValidBoundary(boundary) || micalg === undefined || !MICALG.test(micalg)) return null;
  return signedContentType(boundary, micalg);
}

/**
 * A multipart/encrypted body read by `read`: opened as it streams when it is larger than the threshold, else
 * (and whenever the streaming reader leaves the shape to the whole read) read whole. Both give the same result.
 */
async function openPerhapsStreaming(ctx: Context, type: ContentType, read: () => AsyncIterable<Uint8Array>, budget: number): Promise<InboundResult> {
  const state: BodyState = { exceeded: false, readFailed: false };
  const chunks = readBody(read(), budget, state);
  try {
    const ahead = await readAhead(chunks, ctx.streamAbove);
    if (ahead.complete) {
      const result = await openWhole(ctx, type, ahead.head.length === 1 ? (ahead.head[0] as Buffer) : Buffer.concat(ahead.head), budget);
      ctx.onRoute('whole');
      return result;
    }
    const boundary = multipartBoundary(type);
    if (boundary !== undefined) {
      const result = await openStreaming(ctx, boundary, prepend(ahead.head, chunks));
      ctx.onRoute('streamed');
      return result;
    }
  } catch (error) {
    if (state.exceeded) return limitExceeded('message-bytes', ctx.limits.maxMessageBytes);
    if (state.readFailed) return { kind: 'failed', error: new EngineError('BODY_READ_FAILED', 'reading the body failed', { cause: error }) };
    // Anything else the streaming reader met (a shape it leaves to the whole read, a broken armor, a spool it
    // could not write) is for the whole read to judge.
  } finally {
    await chunks.return(undefined);
  }
  const result = await openWhole(ctx, type, read(), budget);
  ctx.onRoute('streamed-then-whole');
  return result;
}

/** Octets of the decrypted entity read to find its header: the header limit, and room for the separator line. */
const HEAD_MARGIN = 64 * 1024;

/**
 * Opens a large multipart/encrypted body as it streams. Throws (for the caller to read it whole) on anything the
 * streaming reader does not handle; the results it returns are those the whole read gives.
 */
async function openStreaming(ctx: Context, boundary: string, chunks: AsyncIterable<Buffer>): Promise<InboundResult> {
  const dearmorer = new LineDearmorer('MESSAGE');
  const pieces: Buffer[] = [];
  const part = new EncryptedPartReader(boundary, (buf, start, end) => {
    for (const piece of dearmorer.line(buf, start, end)) pieces.push(piece);
  });
  const binary = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      part.push(chunk);
      yield* pieces.splice(0);
    }
    part.end();
    yield* pieces.splice(0);
    yield dearmorer.finish();
  };
  const open = () =>
    openStream({
      binary: binary(),
      binaryLength: () => dearmorer.byteLength,
      keys: ctx.siteKeys,
      date: ctx.now,
      bounds: ctx.limits,
      decompressionCap: (bytes) => decompressionCap(bytes, ctx.limits),
      spool: () => new BodySink({ dir: ctx.spoolDir, thresholdBytes: SINK_MEMORY_BYTES, ...(ctx.spoolTag === undefined ? {} : { tag: ctx.spoolTag }) }),
    });
  let decrypted;
  try {
    // Only bodies above streamAbove come this way: the queue of large encrypted data.
    decrypted = await runInSlot(ctx, Number.POSITIVE_INFINITY, open);
  } catch (error) {
    if (error instanceof PgpError && error.limit !== undefined) return limitExceeded(error.limit.name, error.limit.max);
    if (error instanceof PgpError && error.code === 'DECRYPT_FAILED') return annotate(ctx, 'encrypted', plainVerdict('fail', 'decryption-failed', null, true));
    throw error;
  }
  if (decrypted.kind === 'not-for-us') return unchanged(ctx, 'not-for-us');
  let result: InboundResult | undefined;
  try {
    result = await judgeStreamed(ctx, decrypted);
    return result;
  } finally {
    if (result?.kind !== 'opened') await decrypted.literal.dispose();
  }
}

/** Runs a decryption of `bytes` octets of armored data when its queue has a free slot (at once without slots). */
function runInSlot<T>(ctx: Context, bytes: number, task: () => Promise<T>): Promise<T> {
  if (ctx.slots === undefined) return task();
  const slots = ctx.slots instanceof DecryptionQueues ? ctx.slots.for(bytes) : ctx.slots;
  return slots.run(task);
}

/** Bytes of decrypted content kept in memory before its spool goes to a file. */
const SINK_MEMORY_BYTES = 1024 * 1024;

/** {@link openEncrypted} from the signature on, for a message decrypted as it streamed. */
async function judgeStreamed(ctx: Context, decrypted: StreamDecrypted<OutputBody>): Promise<InboundResult> {
  const literal = decrypted.literal;
  const head = await readHead(literal.chunks(), ctx.limits.maxHeaderBytes + HEAD_MARGIN);
  const parsed = parseEntity(head, ctx.encoding);
  const whole = head.length === literal.size;
  // The header must end within what was read, on a whole line, for the parse of a prefix to be the parse of all.
  if (!whole && (parsed.headerEnd >= head.length || head.indexOf(0x0a, parsed.headerEnd) === -1)) throw new Unstreamable('header longer than read');
  const limit = headerLimitExceeded(parsed.fields.length, parsed.headerEnd, ctx.limits);
  if (limit !== null) return limit;
  const entity: Entity<OutputBody> = { kind: 'entity', fields: parsed.fields, body: offsetBody(literal, parsed.bodyOffset) };
  if (decrypted.signerIds.length > 0) {
    const content: SignedContent = { fields: entity.fields, verify: (keys) => decrypted.verify(keys, verificationDate(ctx)), encrypted: true };
    return encryptedOutcome(ctx, await judge(ctx, content), entity);
  }
  // RFC 3156 §6.1 (a multipart/signed inside) is read whole.
  if (pgpMimeLayer(contentTypeOf(entity.fields)) === 'signed') throw new Unstreamable('multipart/signed inside');
  return opened(ctx, 'encrypted', plainVerdict('none', 'unsigned', authorDomain(outerAuthor(ctx)), true), entity);
}

/** The first `bytes` octets of a stream (all of it when shorter). */
async function readHead(chunks: AsyncIterable<Buffer>, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    parts.push(chunk.subarray(0, bytes - size));
    size += Math.min(chunk.length, bytes - size);
    if (size >= bytes) break;
  }
  return Buffer.concat(parts, size);
}

async function openEncrypted(ctx: Context, armored: Buffer): Promise<InboundResult> {
  let decrypted: DecryptedMessage;
  try {
    const encrypted = await readEncrypted(armored, ctx.limits.maxSessionKeyPackets);
    if (!isAddressedTo(encrypted, ctx.siteKeys)) return unchanged(ctx, 'not-for-us');
    const decrypt = (): Promise<DecryptedMessage> =>
      decryptMessage(encrypted, ctx.siteKeys, ctx.now, decompressionCap(encrypted.byteLength, ctx.limits), ctx.limits);
    decrypted = await runInSlot(ctx, armored.length, decrypt);
  } catch (error) {
    if (error instanceof PgpError && error.limit !== undefined) return limitExceeded(error.limit.name, error.limit.max);
    const reason = error instanceof PgpError && error.code === 'DECRYPT_FAILED' ? 'decryption-failed' : 'malformed';
    return annotate(ctx, 'encrypted', plainVerdict('fail', reason, null, true));
  }
  const inner = entityOf(ctx, Buffer.from(decrypted.plaintext.buffer, decrypted.plaintext.byteOffset, decrypted.plaintext.byteLength));
  if (inner.kind === 'limit-exceeded') return inner;
  if (decrypted.message.getSigningKeyIDs().length > 0) {
    // RFC 3156 §6.2: one OpenPGP message, signed and encrypted; the decrypted entity is what was signed.
    const content: SignedContent = { fields: inner.fields, verify: (keys) => verifyDecrypted(decrypted, keys, verificationDate(ctx)), encrypted: true };
    return encryptedOutcome(ctx, await judge(ctx, content), inner);
  }
  const container = readPgpMime(contentTypeOf(inner.fields), inner.body);
  if (container !== null && container.kind === 'signed') {
    // RFC 3156 §6.1: a multipart/signed inside the encryption; judged exactly as the combined form.
    const signed = toCrlf(container.signedPart);
    const entity = entityOf(ctx, signed);
    if (entity.kind === 'limit-exceeded') return entity;
    return encryptedOutcome(ctx, await judge(ctx, detachedContent(ctx, entity.fields, signed, container.signature, true)), entity);
  }
  return opened(ctx, 'encrypted', plainVerdict('none', 'unsigned', authorDomain(outerAuthor(ctx)), true), inner);
}

/** What happens to an encrypted message once its signed content is judged: fail and temperror keep it encrypted. */
function encryptedOutcome(ctx: Context, judgement: Judgement, entity: Entity<Buffer | OutputBody>): InboundResult {
  const verdict = judgement.verdict;
  if (verdict.result === 'fail' || verdict.result === 'temperror') return annotate(ctx, 'encrypted', verdict);
  return opened(ctx, 'encrypted', verdict, entity);
}

/** Signed content checked by a detached signature (RFC 3156 §5 part 2). */
function detachedContent(ctx: Context, fields: readonly HeaderField[], signed: Buffer, armoredSignature: Buffer, encrypted: boolean): SignedContent {
  return {
    fields,
    encrypted,
    verify: async (keys) => {
      try {
        return await verifyDetached(signed, await readDetachedSignature(armoredSignature), keys, verificationDate(ctx));
      } catch {
        // An unreadable signature part signs nothing.
        return { status: 'unsigned' };
      }
    },
  };
}

const AUTHOR_FAILURES: Record<Exclude<AuthorResult['kind'], 'single'>, VerdictReason> = {
  'no-from': 'from-not-signed',
  'multiple-from-fields': 'multiple-from-fields',
  'multiple-mailboxes': 'multiple-from-mailboxes',
  'unparseable-from': 'unparseable-from',
  'bad-from-domain': 'bad-from-domain',
};

/**
 * Judges signed content (docs/security.md, "What pass means"): the author is the one mailbox of the signed From;
 * its domain's published (and pin-vouched) keys must have signed; the message must be meant for us.
 */
async function judge(ctx: Context, content: SignedContent): Promise<Judgement> {
  const encrypted = content.encrypted;
  const author = authorOf(fieldsNamed(content.fields, 'From').map((f) => f.value), ctx.encoding);
  if (author.kind !== 'single') {
    const reason = AUTHOR_FAILURES[author.kind];
    if (author.kind !== 'no-from') return { kind: 'verdict', verdict: plainVerdict('fail', reason, null, encrypted) };
    // Nothing signed names an author. If the transport From's domain signed, that is a site signature over a
    // header without a From: it authenticates no author, so it fails; anything else cannot be attributed.
    const outer = outerAuthor(ctx);
    const unattributed: Judgement = { kind: 'unattributed', verdict: plainVerdict('fail', reason, authorDomain(outer), encrypted) };
    if (outer.kind !== 'single') return unattributed;
    const found = await keysFor(ctx, outer.mailbox.domain, encrypted);
    if (found.kind === 'verdict') return found.verdict.result === 'temperror' ? { kind: 'verdict', verdict: found.verdict } : unattributed;
    const check = await content.verify(found.keys.keys);
    if (check.status === 'unsigned' || check.status === 'unknown-signer') return unattributed;
    // The site's key signed (or its signature was broken): either way a site signature that earns nothing.
    const why = check.status === 'invalid' ? 'bad-signature' : reason;
    return { kind: 'verdict', verdict: { result: 'fail', reason: why, domain: outer.mailbox.domain, fingerprint: check.fingerprint, dnssec: found.keys.dnssec, encrypted } };
  }
  const domain = author.mailbox.domain;
  const found = await keysFor(ctx, domain, encrypted);
  if (found.kind === 'verdict') {
    return found.verdict.result === 'temperror' ? { kind: 'verdict', verdict: found.verdict } : { kind: 'unattributed', verdict: found.verdict };
  }
  const { keys } = found;
  const check = await content.verify(keys.keys);
  if (check.status !== 'valid') {
    const unpinned = check.status === 'unknown-signer' && (keys.unvouched ?? []).some((k) => k.getKeyIDs().some((id) => id.toHex().toUpperCase() === check.keyId));
    const verdict = verdictFromFailedCheck(check, domain, keys.dnssec, encrypted, unpinned);
    // A signature by a key the domain does not publish at all is not a site signature (a person's own key).
    return check.status === 'unknown-signer' && !unpinned ? { kind: 'unattributed', verdict } : { kind: 'verdict', verdict };
  }
  const signedBy = { domain, fingerprint: check.fingerprint, dnssec: keys.dnssec, encrypted };
  const intended = check.intendedRecipients ?? null;
  if (intended !== null) {
    if (!intended.some((fp) => ctx.ourFingerprints.has(fp))) return { kind: 'verdict', verdict: { result: 'fail', reason: 'not-intended-recipient', ...signedBy } };
    return { kind: 'verdict', verdict: { result: 'pass', reason: 'signature-verified', ...signedBy } };
  }
  // No Intended Recipient Fingerprint (an older sender): only a signed To or Cc here binds the message to us.
  const bound = signedRecipientDomains(ctx, content.fields).some((d) => ctx.localDomains.has(d));
  return { kind: 'verdict', verdict: bound ? { result: 'pass', reason: 'signature-verified', ...signedBy } : { result: 'policy', reason: 'recipient-not-bound', ...signedBy } };
}

/** The keys of the author domain, or (relaxed alignment) of its organisational domain; a verdict when none. */
async function keysFor(ctx: Context, domain: string, encrypted: boolean): Promise<{ kind: 'keys'; keys: SenderKeys } | { kind: 'verdict'; verdict: Verdict }> {
  const candidates = [domain];
  const organisational = ctx.alignment === 'relaxed' ? getDomain(domain) : null;
  if (organisational !== null && organisational !== domain) candidates.push(organisational);
  for (const candidate of candidates) {
    let found: SenderKeys | null;
    try {
      found = await ctx.lookup(candidate);
    } catch {
      return { kind: 'verdict', verdict: plainVerdict('temperror', 'key-lookup-failed', domain, encrypted) };
    }
    if (found !== null && (found.keys.length > 0 || (found.unvouched ?? []).length > 0)) return { kind: 'keys', keys: found };
  }
  return { kind: 'verdict', verdict: plainVerdict('none', 'no-published-key', domain, encrypted) };
}

/** The normalised domains of every mailbox in the signed To and Cc fields. */
function signedRecipientDomains(ctx: Context, fields: readonly HeaderField[]): string[] {
  return fields
    .filter((f) => sameHeaderName(f.name, 'To') || sameHeaderName(f.name, 'Cc'))
    .flatMap((f) => mailboxesOf(f.value, ctx.encoding) ?? [])
    .flatMap((m) => (m.domain === null ? [] : [m.domain]));
}

function outerAuthor(ctx: Context): AuthorResult {
  return authorOf(fieldsNamed(ctx.headers, 'From').map((f) => f.value), ctx.encoding);
}

function authorDomain(author: AuthorResult): string | null {
  return author.kind === 'single' ? author.mailbox.domain : null;
}

/** `pass` and `policy` rest on a valid signature by the author's domain: the signed header is shown. */
function authenticated(verdict: Verdict): boolean {
  return verdict.result === 'pass' || verdict.result === 'policy';
}

function verificationDate(ctx: Context): Date {
  return new Date(ctx.now.getTime() + CLOCK_SKEW_MS);
}

/**
 * Parses a header found inside (decrypted, or the signed part); it is held to the limits of the outer header,
 * since everything done with a header (edits, delivery) grows with it. Its bytes are counted as received.
 */
function entityOf(ctx: Context, bytes: Buffer): Entity | LimitExceeded {
  const parsed = parseEntity(bytes, ctx.encoding);
  return headerLimitExceeded(parsed.fields.length, parsed.headerEnd, ctx.limits) ?? { kind: 'entity', fields: parsed.fields, body: bytes.subarray(parsed.bodyOffset) };
}

function unchanged(ctx: Context, reason: UnchangedReason): InboundResult {
  return { kind: 'unchanged', reason, headerEdits: [...ctx.forged] };
}

function annotate(ctx: Context, layer: InboundLayer, verdict: Verdict): InboundResult {
  return { kind: 'annotated', layer, verdict, headerEdits: [...ctx.forged, authenticationResultsInsert(ctx.authservId, verdict)] };
}

function opened(ctx: Context, layer: InboundLayer, verdict: Verdict, entity: Entity<Buffer | OutputBody>): InboundOpened {
  const contentType = entity.fields.find((f) => sameHeaderName(f.name, 'Content-Type'));
  const header = authenticated(verdict) ? signedHeaderEdits(ctx.headers, entity.fields) : unverifiedFieldAdditions(entity.fields);
  return {
    kind: 'opened',
    layer,
    verdict,
    headerProtection: contentType === undefined ? null : stripHeaderProtection(contentType.value).hp,
    // Forged fields are deleted first and the new result is inserted last, so no index-based edit ever sees a
    // list shifted by another.
    headerEdits: [...ctx.forged, ...contentFieldEdits(ctx.headers, entity.fields), ...header, authenticationResultsInsert(ctx.authservId, verdict)],
    body: Buffer.isBuffer(entity.body) ? memoryBody([entity.body]) : entity.body,
  };
}
