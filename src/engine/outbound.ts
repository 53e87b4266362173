/**
 * Outbound protection: wraps the original message, untouched, in PGP/MIME. With recipient keys the
 * result is multipart/encrypted holding one signed-and-encrypted OpenPGP message (RFC 3156 §6.2);
 * without, it is multipart/signed (RFC 3156 §5) with the entity made 7-bit safe first. The original
 * header fields are never re-serialised: the returned edits say what the MTA must change.
 */
import type { PrivateKey, PublicKey, SessionKey } from 'openpgp';
import { isValidBoundary, randomBoundary, type BoundaryGenerator } from '../mime/boundary.ts';
import { canonicalizeChunks, toCrlf } from '../mime/crlf.ts';
import { claimedEncryption, INLINE_PROBE_BYTES, isEncrypted, opensInlinePgp, type ExistingEncryption } from '../mime/encryption-detector.ts';
import { MimeError } from '../mime/errors.ts';
import {
  fieldsNamed,
  headerByteLength,
  isContentField,
  sameHeaderName,
  serializeFields,
  type HeaderEncoding,
  type HeaderField,
} from '../mime/header-fields.ts';
import { buildInnerFields, DEFAULT_PROTECTED_FIELDS } from '../mime/inner-entity.ts';
import { boundaryOccursIn } from '../mime/multipart.ts';
import { encryptedContentType, encryptedEnvelope, signedBody, signedContentType } from '../mime/pgp-mime-build.ts';
import { makeSevenBitSafe } from '../mime/seven-bit.ts';
import { armorChunks } from '../pgp/armor.ts';
import { signDetached } from '../pgp/detached.ts';
import type { Compression } from '../pgp/config.ts';
import { signAndEncrypt } from '../pgp/sign-encrypt.ts';
import { collect, prepend, readAhead, readBody, type BodyInput, type BodyState } from './body-input.ts';
import { EngineError, rejectUnknownOptions } from './errors.ts';
import { applyHeaderEdits, distinctNames, syncFieldEdits, type HeaderEdit } from './header-edits.ts';
import { limitExceeded, resolveLimits, type LimitExceeded, type Limits } from './limits.ts';
import { BodySink, DEFAULT_SPOOL, type OutputBody, type SpoolOptions } from './output-body.ts';

/** The field added to every protected message, naming what was done and by which key. */
export const PROTECTION_FIELD = 'Muse-Protection';
/** RFC 9788 §5.2 (hcp_baseline): the Subject shown outside an encrypted message. */
export const DEFAULT_SUBJECT_PLACEHOLDER = '[...]';

/** Options of {@link protectOutbound}. */
export interface OutboundOptions {
  /** The original header fields, in order, values raw (see {@link HeaderField}). */
  readonly headers: readonly HeaderField[];
  /** The original body bytes. */
  readonly body: BodyInput;
  /** The site's signing key (unlocked). */
  readonly siteKey: PrivateKey;
  /** Keys to encrypt to; empty means sign only. */
  readonly recipientKeys: readonly PublicKey[];
  /**
   * Hide the protected header fields from the outside as RFC 9788 describes (`hp="cipher"`, outer Subject replaced).
   * False still signs them inside (`hp="clear"`), so receivers can check the author. Default true.
   */
  readonly headerProtection?: boolean;
  /** Names of the protected fields. Default {@link DEFAULT_PROTECTED_FIELDS}. */
  readonly protectedFields?: readonly string[];
  /** Outer Subject of encrypted mail when header protection is on; `null` leaves it. Default `[...]`. */
  readonly subjectPlaceholder?: string | null;
  /** How header strings map to bytes. Default `utf8`. */
  readonly headerEncoding?: HeaderEncoding;
  readonly limits?: Partial<Limits>;
  readonly spool?: Partial<SpoolOptions>;
  /** Clock for signature and literal-data times. */
  readonly now?: () => Date;
  /** MIME boundary source. */
  readonly boundary?: BoundaryGenerator;
  /** Fixed session key (tests only). */
  readonly sessionKey?: SessionKey;
  /** Reproducible signatures without openpgp.js's random salt notation (tests only). */
  readonly deterministicSignatures?: boolean;
  /** Compress the signed data before encrypting. Default `none` (faster; see docs/pgp-mime.md). */
  readonly compression?: Compression;
}

const OPTION_KEYS = [
  'headers',
  'body',
  'siteKey',
  'recipientKeys',
  'headerProtection',
  'protectedFields',
  'subjectPlaceholder',
  'headerEncoding',
  'limits',
  'spool',
  'now',
  'boundary',
  'sessionKey',
  'deterministicSignatures',
  'compression',
];

/** A protected message: apply `headerEdits` in order and replace the body with `body`. */
export interface OutboundProtected {
  readonly kind: 'protected';
  readonly protection: 'signed+encrypted' | 'signed';
  readonly headerEdits: HeaderEdit[];
  readonly body: OutputBody;
  /** Sign-only: whether parts were re-encoded for 7-bit transport (the body then differs). */
  readonly reencoded: boolean;
}

/** The result of {@link protectOutbound}. In every case but `protected` the message is untouched. */
export type OutboundResult =
  | OutboundProtected
  | { readonly kind: 'unchanged'; readonly reason: 'already-encrypted'; readonly format: ExistingEncryption }
  | LimitExceeded
  | { readonly kind: 'failed'; readonly error: EngineError };

/** Everything resolved from the options that the two paths share. */
interface Context {
  readonly headers: readonly HeaderField[];
  readonly siteKey: PrivateKey;
  readonly recipientKeys: readonly PublicKey[];
  readonly protectedNames: readonly string[];
  /** Whether the protected fields are hidden outside (RFC 9788 `hp="cipher"`) or only signed (`hp="clear"`). */
  readonly hide: boolean;
  readonly placeholder: string | null;
  readonly encoding: HeaderEncoding;
  readonly limits: Limits;
  readonly spool: SpoolOptions;
  readonly date: Date;
  readonly boundary: BoundaryGenerator;
  readonly sessionKey: SessionKey | undefined;
  readonly deterministic: boolean;
  readonly compression: Compression;
}

/**
 * Signs and encrypts (or only signs) one message. Throws only {@link EngineError} `BAD_OPTIONS`;
 * every message-dependent problem is a result.
 */
export async function protectOutbound(options: OutboundOptions): Promise<OutboundResult> {
  rejectUnknownOptions(options, OPTION_KEYS, 'protectOutbound');
  if (!options.siteKey.isPrivate() || !options.siteKey.isDecrypted()) {
    throw new EngineError('BAD_OPTIONS', 'protectOutbound: siteKey must be an unlocked private key');
  }
  // The protected fields are always signed inside: a receiving site grants pass only to a signed From, and shows
  // only signed user-facing fields (docs/security.md). Header protection off only stops hiding them outside.
  const protectedNames = options.protectedFields ?? DEFAULT_PROTECTED_FIELDS;
  const hide = options.headerProtection ?? true;
  // The Subject may only be hidden when the protected header inside carries it back.
  const subjectInside = hide && protectedNames.some((n) => sameHeaderName(n, 'Subject'));
  const ctx: Context = {
    headers: options.headers,
    siteKey: options.siteKey,
    recipientKeys: options.recipientKeys,
    protectedNames,
    hide,
    placeholder: subjectInside ? (options.subjectPlaceholder === undefined ? DEFAULT_SUBJECT_PLACEHOLDER : options.subjectPlaceholder) : null,
    encoding: options.headerEncoding ?? 'utf8',
    limits: resolveLimits(options.limits),
    spool: Object.assign({}, DEFAULT_SPOOL, options.spool),
    date: (options.now ?? (() => new Date()))(),
    boundary: options.boundary ?? randomBoundary,
    sessionKey: options.sessionKey,
    deterministic: options.deterministicSignatures ?? false,
    compression: options.compression ?? 'none',
  };
  const headerBytes = headerByteLength(ctx.headers, ctx.encoding);
  if (headerBytes > ctx.limits.maxHeaderBytes) return limitExceeded('header-bytes', ctx.limits.maxHeaderBytes);

  const state: BodyState = { exceeded: false, readFailed: false };
  try {
    const body = canonicalizeChunks(readBody(options.body, ctx.limits.maxMessageBytes - headerBytes, state));
    const probed = await probeExisting(ctx.headers, body);
    if (typeof probed === 'string') return { kind: 'unchanged', reason: 'already-encrypted', format: probed };
    return ctx.recipientKeys.length > 0 ? await encryptPath(ctx, probed) : await signPath(ctx, probed);
  } catch (error) {
    return classifyFailure(error, state, ctx.limits, ctx.recipientKeys.length > 0 ? 'ENCRYPT_FAILED' : 'SIGN_FAILED');
  }
}

/**
 * Maps a failure to a result. The body state is checked first because openpgp.js may wrap the
 * errors of the stream it reads; anything else is a failure of the crypto step (`fallback`).
 */
function classifyFailure(error: unknown, state: BodyState, limits: Limits, fallback: 'ENCRYPT_FAILED' | 'SIGN_FAILED'): OutboundResult {
  if (state.exceeded) return limitExceeded('message-bytes', limits.maxMessageBytes);
  if (state.readFailed) return { kind: 'failed', error: new EngineError('BODY_READ_FAILED', 'reading the body failed', { cause: error }) };
  if (error instanceof MimeError && error.code === 'MIME_DEPTH') return limitExceeded('mime-depth', limits.maxMimeDepth);
  if (error instanceof EngineError) {
    if (error.code === 'BAD_OPTIONS') throw error;
    return { kind: 'failed', error };
  }
  return { kind: 'failed', error: new EngineError(fallback, 'OpenPGP processing failed', { cause: error }) };
}

/**
 * Checks a message whose header fields claim existing encryption against its body: returns the
 * format when the body bears the claim out, else the body again (re-assembled) to be protected
 * like any other. A plain-text body is read only as far as needed to rule out inline OpenPGP;
 * only a body that opens with an armored message, or one labelled PGP/MIME or S/MIME, is read
 * whole, into one buffer that then also feeds the protection.
 */
async function probeExisting(headers: readonly HeaderField[], body: AsyncGenerator<Buffer>): Promise<ExistingEncryption | AsyncGenerator<Buffer>> {
  const claim = claimedEncryption(headers);
  if (claim === null) return body;
  let head: Buffer[] = [];
  if (claim === 'pgp-inline') {
    const probe = await readAhead(body, INLINE_PROBE_BYTES);
    if (!opensInlinePgp(Buffer.concat(probe.head))) return prepend(probe.head, body);
    head = probe.head;
  }
  const whole = await collect(prepend(head, body));
  return isEncrypted(claim, headers, whole) ? claim : prepend([whole], body);
}

/**
 * Bodies up to this size are encrypted from one buffer, in one pass with the fewest calls; larger bodies
 * stream in the chunks they arrive in, so memory stays flat whatever the size.
 */
const STREAMING_THRESHOLD = 1024 * 1024;

async function encryptPath(ctx: Context, body: AsyncGenerator<Buffer>): Promise<OutboundResult> {
  // Armor lines start with a base64 character or `-----BEGIN`/`-----END`: only those can collide.
  const boundary = pickBoundary(ctx.boundary, [Buffer.from('-----BEGIN PGP MESSAGE-----\r\n-----END PGP MESSAGE-----\r\n')]);
  const headerEdits = outerEdits(ctx, encryptedContentType(boundary), ctx.placeholder, 'signed+encrypted');
  const inner = buildInnerFields({
    original: ctx.headers,
    protectedNames: ctx.protectedNames,
    hp: ctx.protectedNames.length === 0 ? null : ctx.hide ? 'cipher' : 'clear',
    outer: applyHeaderEdits(ctx.headers, headerEdits),
  });
  const innerHead = Buffer.concat([toCrlf(serializeFields(inner, ctx.encoding)), Buffer.from('\r\n')]);
  const ahead = await readAhead(body, STREAMING_THRESHOLD);
  const encrypted = await signAndEncrypt({
    plaintext: ahead.complete ? Buffer.concat([innerHead, ...ahead.head]) : prepend([innerHead, ...ahead.head], body),
    signingKey: ctx.siteKey,
    encryptionKeys: ctx.recipientKeys,
    date: ctx.date,
    ...(ctx.sessionKey === undefined ? {} : { sessionKey: ctx.sessionKey }),
    deterministicSignatures: ctx.deterministic,
    compression: ctx.compression,
  });
  const envelope = encryptedEnvelope(boundary);
  const output = await writeBody(ctx.spool, async (sink) => {
    await sink.write(envelope.head);
    for await (const piece of armorChunks('MESSAGE', encrypted)) await sink.write(piece);
    await sink.write(envelope.tail);
  });
  return { kind: 'protected', protection: 'signed+encrypted', headerEdits, body: output, reencoded: false };
}

async function signPath(ctx: Context, body: AsyncGenerator<Buffer>): Promise<OutboundResult> {
  const safe = makeSevenBitSafe(ctx.headers, await collect(body), ctx.limits.maxMimeDepth);
  const inner = buildInnerFields({
    original: safe.fields,
    protectedNames: ctx.protectedNames,
    hp: ctx.protectedNames.length > 0 ? 'clear' : null,
    outer: [],
  });
  const entity = Buffer.concat([toCrlf(serializeFields(inner, ctx.encoding)), Buffer.from('\r\n'), safe.body]);
  const boundary = pickBoundary(ctx.boundary, [entity]);
  const signature = await signDetached(entity, ctx.siteKey, ctx.date, ctx.deterministic);
  const headerEdits = outerEdits(ctx, signedContentType(boundary, signature.micalg), null, 'signed');
  const output = await writeBody(ctx.spool, async (sink) => {
    for (const piece of signedBody(boundary, entity, signature.armored)) await sink.write(piece);
  });
  return { kind: 'protected', protection: 'signed', headerEdits, body: output, reencoded: safe.changed };
}

/** Fills a sink, discarding the spool file when anything fails. */
async function writeBody(spool: SpoolOptions, fill: (sink: BodySink) => Promise<void>): Promise<OutputBody> {
  const sink = new BodySink(spool);
  try {
    await fill(sink);
    return await sink.finish();
  } catch (error) {
    await sink.abort();
    throw error;
  }
}

/** Boundaries tried before giving up; a random one colliding even once is already improbable. */
const BOUNDARY_ATTEMPTS = 8;

function pickBoundary(generate: BoundaryGenerator, contents: readonly Buffer[]): string {
  for (let attempt = 0; attempt < BOUNDARY_ATTEMPTS; attempt++) {
    const boundary = generate();
    if (!isValidBoundary(boundary)) throw new EngineError('BAD_OPTIONS', `invalid MIME boundary ${JSON.stringify(boundary)}`);
    if (!contents.some((c) => boundaryOccursIn(c, boundary))) return boundary;
  }
  throw new EngineError('BOUNDARY_COLLISION', `no boundary in ${BOUNDARY_ATTEMPTS} attempts avoided the content`);
}

/**
 * The outer header edits: the new Content-Type, every other Content-* field removed (they now
 * describe the inner entity), MIME-Version ensured, Subject replaced when requested, and the
 * protection field added.
 */
function outerEdits(ctx: Context, contentType: string, placeholder: string | null, protection: string): HeaderEdit[] {
  const headers = ctx.headers;
  const edits = syncFieldEdits(headers, 'Content-Type', [contentType]);
  for (const name of distinctNames(headers, (n) => isContentField(n) && !sameHeaderName(n, 'Content-Type'))) {
    edits.push(...syncFieldEdits(headers, name, []));
  }
  if (fieldsNamed(headers, 'MIME-Version').length === 0) edits.push({ op: 'add', name: 'MIME-Version', value: ' 1.0' });
  if (placeholder !== null) {
    edits.push(...syncFieldEdits(headers, 'Subject', fieldsNamed(headers, 'Subject').map(() => ' ' + placeholder)));
  }
  const signer = ctx.siteKey.getFingerprint().toUpperCase();
  // One field, ours: a Muse-Protection the message brought along (a forward, a local program) says nothing true.
  edits.push(...syncFieldEdits(headers, PROTECTION_FIELD, [` ${protection}; signer=${signer}`]));
  return edits;
}
