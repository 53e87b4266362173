/**
 * Inbound opening: recognises PGP/MIME addressed to this site, decrypts it, verifies the signature
 * against the sending domain's DNS key and restores the original entity and protected header
 * fields. A message that fails any check is never altered beyond an Authentication-Results field,
 * and mail encrypted to keys we do not hold is left alone.
 */
import type { PrivateKey, PublicKey } from 'openpgp';
import { contentTypeOf } from '../mime/content-fields.ts';
import { toCrlf } from '../mime/crlf.ts';
import { parseEntity } from '../mime/entity.ts';
import { firstValue, headerByteLength, sameHeaderName, type HeaderEncoding, type HeaderField } from '../mime/header-fields.ts';
import { DEFAULT_PROTECTED_FIELDS, stripHeaderProtection, type HeaderProtectionMode } from '../mime/inner-entity.ts';
import { pgpMimeLayer, readPgpMime } from '../mime/pgp-mime-read.ts';
import { decryptMessage, isAddressedTo, readEncrypted, verifyDecrypted, type DecryptedMessage } from '../pgp/decrypt.ts';
import { readDetachedSignature, verifyDetached } from '../pgp/detached.ts';
import { PgpError } from '../pgp/errors.ts';
import type { SignatureCheck } from '../pgp/signature-check.ts';
import { authenticationResultsInsert, forgedResultsDeletions } from './authentication-results.ts';
import { collect, readBody, type BodyInput, type BodyState } from './body-input.ts';
import { EngineError, rejectUnknownOptions } from './errors.ts';
import type { HeaderEdit } from './header-edits.ts';
import { limitExceeded, resolveLimits, type LimitExceeded, type Limits } from './limits.ts';
import { memoryBody, type OutputBody } from './output-body.ts';
import { restoreEdits } from './restore.ts';
import { senderDomainOf } from './sender-domain.ts';
import { plainVerdict, verdictFromCheck, type Verdict } from './verdict.ts';

/** The sending domain's published keys, as the DNS layer found them. */
export interface SenderKeys {
  readonly keys: readonly PublicKey[];
  /** Whether the answer was DNSSEC-validated. */
  readonly dnssec: boolean;
}

/** Looks up a domain's keys; `null` when it publishes none. A rejection is a temporary failure. */
export type SenderKeyLookup = (domain: string) => Promise<SenderKeys | null>;

/** Options of {@link openInbound}. */
export interface InboundOptions {
  readonly headers: readonly HeaderField[];
  readonly body: BodyInput;
  /** The site's decryption keys (unlocked); several during a key rollover. */
  readonly siteKeys: readonly PrivateKey[];
  readonly senderKeys: SenderKeyLookup;
  /** This host's authserv-id for Authentication-Results (RFC 8601 §2.5). */
  readonly authservId: string;
  /** Verify against this domain instead of the From domain. */
  readonly senderDomain?: string;
  /** Remove a verified site signature (multipart/signed) instead of only reporting it. Default false. */
  readonly unwrapSigned?: boolean;
  /** Names of the fields restored from the protected header. Default {@link DEFAULT_PROTECTED_FIELDS}. */
  readonly protectedFields?: readonly string[];
  /** How header strings map to bytes. Default `utf8`. */
  readonly headerEncoding?: HeaderEncoding;
  readonly limits?: Partial<Limits>;
  /** Clock for key validity and signature checks. */
  readonly now?: () => Date;
}

const OPTION_KEYS = [
  'headers',
  'body',
  'siteKeys',
  'senderKeys',
  'authservId',
  'senderDomain',
  'unwrapSigned',
  'protectedFields',
  'headerEncoding',
  'limits',
  'now',
];

/** Which PGP/MIME layer a result is about. */
export type InboundLayer = 'encrypted' | 'signed';

/** Why a message was left exactly as it was. */
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
  /** Reported only: apply `headerEdits` (Authentication-Results), keep the body as it is. */
  | { readonly kind: 'annotated'; readonly layer: InboundLayer; readonly verdict: Verdict; readonly headerEdits: HeaderEdit[] }
  /** Nothing to do: no edits, body untouched. */
  | { readonly kind: 'unchanged'; readonly reason: UnchangedReason }
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
  readonly lookup: SenderKeyLookup;
  readonly authservId: string;
  readonly senderDomain: string | undefined;
  readonly unwrapSigned: boolean;
  readonly protectedNames: readonly string[];
  readonly encoding: HeaderEncoding;
  readonly limits: Limits;
  readonly now: Date;
}

/** An entity to deliver: its header fields and body bytes. */
interface Entity {
  readonly fields: readonly HeaderField[];
  readonly body: Buffer;
}

/** The outcome of checking a multipart/signed. */
type SignedOutcome =
  | { readonly kind: 'unchanged'; readonly reason: 'no-sender-key' | 'not-site-signed' }
  | { readonly kind: 'checked'; readonly verdict: Verdict; readonly signed: Buffer };

/** Opens one incoming message. Throws only {@link EngineError} `BAD_OPTIONS`. */
export async function openInbound(options: InboundOptions): Promise<InboundResult> {
  rejectUnknownOptions(options, OPTION_KEYS, 'openInbound');
  if (!/^[^\s;()]+$/.test(options.authservId)) throw new EngineError('BAD_OPTIONS', 'openInbound: authservId must be a token');
  const ctx: Context = {
    headers: options.headers,
    siteKeys: options.siteKeys,
    lookup: options.senderKeys,
    authservId: options.authservId,
    senderDomain: options.senderDomain?.toLowerCase(),
    unwrapSigned: options.unwrapSigned ?? false,
    protectedNames: options.protectedFields ?? DEFAULT_PROTECTED_FIELDS,
    encoding: options.headerEncoding ?? 'utf8',
    limits: resolveLimits(options.limits),
    now: (options.now ?? (() => new Date()))(),
  };
  const headerBytes = headerByteLength(ctx.headers, ctx.encoding);
  if (headerBytes > ctx.limits.maxHeaderBytes) return limitExceeded('header-bytes', ctx.limits.maxHeaderBytes);
  const type = contentTypeOf(ctx.headers);
  if (pgpMimeLayer(type) === null) return { kind: 'unchanged', reason: 'not-pgp-mime' };
  const state: BodyState = { exceeded: false, readFailed: false };
  let body: Buffer;
  try {
    body = await collect(readBody(options.body, ctx.limits.maxMessageBytes - headerBytes, state));
  } catch (error) {
    if (state.exceeded) return limitExceeded('message-bytes', ctx.limits.maxMessageBytes);
    return { kind: 'failed', error: new EngineError('BODY_READ_FAILED', 'reading the body failed', { cause: error }) };
  }
  const container = readPgpMime(type, body);
  if (container === null) return { kind: 'unchanged', reason: 'not-pgp-mime' };
  if (container.kind === 'malformed') {
    // A broken multipart/signed cannot be attributed to a site; a broken encrypted one is reported.
    if (container.layer === 'signed') return { kind: 'unchanged', reason: 'not-site-signed' };
    return annotate(ctx, 'encrypted', plainVerdict('fail', 'malformed', null, true));
  }
  if (container.kind === 'encrypted') return openEncrypted(ctx, container.armoredMessage);
  const outcome = await checkSigned(ctx, senderDomain(ctx, []), container.signedPart, container.signature);
  if (outcome.kind === 'unchanged') return outcome;
  if (outcome.verdict.result !== 'pass' || !ctx.unwrapSigned) return annotate(ctx, 'signed', outcome.verdict);
  return opened(ctx, 'signed', outcome.verdict, entityOf(ctx, outcome.signed));
}

async function openEncrypted(ctx: Context, armored: Buffer): Promise<InboundResult> {
  let decrypted: DecryptedMessage;
  try {
    const encrypted = await readEncrypted(armored);
    if (!isAddressedTo(encrypted, ctx.siteKeys)) return { kind: 'unchanged', reason: 'not-for-us' };
    decrypted = await decryptMessage(encrypted, ctx.siteKeys, ctx.now, ctx.limits.maxMessageBytes);
  } catch (error) {
    const reason = error instanceof PgpError && error.code === 'DECRYPT_FAILED' ? 'decryption-failed' : 'malformed';
    return annotate(ctx, 'encrypted', plainVerdict('fail', reason, null, true));
  }
  const inner = entityOf(ctx, Buffer.from(decrypted.plaintext.buffer, decrypted.plaintext.byteOffset, decrypted.plaintext.byteLength));
  if (decrypted.message.getSigningKeyIDs().length === 0) return openUnsignedPayload(ctx, inner);
  const keys = await lookupKeys(ctx, senderDomain(ctx, inner.fields), true);
  if ('verdict' in keys) {
    if (keys.verdict.result === 'temperror') return annotate(ctx, 'encrypted', keys.verdict);
    return opened(ctx, 'encrypted', keys.verdict, inner);
  }
  const check = await verifyDecrypted(decrypted, keys.keys, verificationDate(ctx));
  const verdict = verdictFromCheck(check, keys.domain, keys.dnssec, true);
  if (verdict.result === 'fail') return annotate(ctx, 'encrypted', verdict);
  return opened(ctx, 'encrypted', verdict, inner);
}

/**
 * An encrypted payload without a combined signature: either RFC 3156 §6.1 (a multipart/signed
 * inside, opened through its site signature) or simply unsigned.
 */
async function openUnsignedPayload(ctx: Context, inner: Entity): Promise<InboundResult> {
  const domain = senderDomain(ctx, inner.fields);
  const unsigned = (): InboundResult => opened(ctx, 'encrypted', plainVerdict('none', 'unsigned', domain, true), inner);
  const container = readPgpMime(contentTypeOf(inner.fields), inner.body);
  if (container === null || container.kind !== 'signed') return unsigned();
  const outcome = await checkSigned(ctx, domain, container.signedPart, container.signature);
  if (outcome.kind === 'unchanged') return unsigned();
  const verdict: Verdict = { ...outcome.verdict, encrypted: true };
  if (verdict.result !== 'pass') return annotate(ctx, 'encrypted', verdict);
  return opened(ctx, 'encrypted', verdict, entityOf(ctx, outcome.signed));
}

/** Checks a detached site signature; anything not signed by the sender domain's key is left alone. */
async function checkSigned(ctx: Context, domain: string | null, signedPart: Buffer, armoredSignature: Buffer): Promise<SignedOutcome> {
  const keys = await lookupKeys(ctx, domain, false);
  if ('verdict' in keys) {
    if (keys.verdict.result === 'temperror') return { kind: 'checked', verdict: keys.verdict, signed: signedPart };
    return { kind: 'unchanged', reason: 'no-sender-key' };
  }
  const signed = toCrlf(signedPart);
  let check: SignatureCheck;
  try {
    check = await verifyDetached(signed, await readDetachedSignature(armoredSignature), keys.keys, verificationDate(ctx));
  } catch {
    // An unreadable signature part cannot be attributed to the site key.
    return { kind: 'unchanged', reason: 'not-site-signed' };
  }
  if (check.status === 'unsigned' || check.status === 'unknown-signer') return { kind: 'unchanged', reason: 'not-site-signed' };
  return { kind: 'checked', verdict: verdictFromCheck(check, keys.domain, keys.dnssec, false), signed };
}

/**
 * The domain whose key must have signed: the configured override, else the From domain of the
 * protected (inner) header, else that of the outer header.
 */
function senderDomain(ctx: Context, innerFields: readonly HeaderField[]): string | null {
  return ctx.senderDomain ?? senderDomainOf(firstValue(innerFields, 'From')) ?? senderDomainOf(firstValue(ctx.headers, 'From'));
}

type KeyLookup = { keys: readonly PublicKey[]; dnssec: boolean; domain: string } | { verdict: Verdict };

async function lookupKeys(ctx: Context, domain: string | null, encrypted: boolean): Promise<KeyLookup> {
  if (domain === null) return { verdict: plainVerdict('none', 'no-sender-domain', null, encrypted) };
  let found: SenderKeys | null;
  try {
    found = await ctx.lookup(domain);
  } catch {
    return { verdict: plainVerdict('temperror', 'key-lookup-failed', domain, encrypted) };
  }
  if (found === null || found.keys.length === 0) return { verdict: plainVerdict('none', 'no-published-key', domain, encrypted) };
  return { keys: found.keys, dnssec: found.dnssec, domain };
}

function verificationDate(ctx: Context): Date {
  return new Date(ctx.now.getTime() + CLOCK_SKEW_MS);
}

function entityOf(ctx: Context, bytes: Buffer): Entity {
  const parsed = parseEntity(bytes, ctx.encoding);
  return { fields: parsed.fields, body: bytes.subarray(parsed.bodyOffset) };
}

function annotate(ctx: Context, layer: InboundLayer, verdict: Verdict): InboundResult {
  const headerEdits = [...forgedResultsDeletions(ctx.headers, ctx.authservId), authenticationResultsInsert(ctx.authservId, verdict)];
  return { kind: 'annotated', layer, verdict, headerEdits };
}

function opened(ctx: Context, layer: InboundLayer, verdict: Verdict, entity: Entity): InboundOpened {
  const contentType = entity.fields.find((f) => sameHeaderName(f.name, 'Content-Type'));
  return {
    kind: 'opened',
    layer,
    verdict,
    headerProtection: contentType === undefined ? null : stripHeaderProtection(contentType.value).hp,
    // Forged results are deleted first and the new one is inserted last, so no index-based edit
    // ever sees a list shifted by another.
    headerEdits: [
      ...forgedResultsDeletions(ctx.headers, ctx.authservId),
      ...restoreEdits(ctx.headers, entity.fields, ctx.protectedNames),
      authenticationResultsInsert(ctx.authservId, verdict),
    ],
    body: memoryBody([entity.body]),
  };
}
