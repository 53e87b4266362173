/**
 * The marker carried by a copy the milter re-injects into the MTA. It proves one thing: this very copy (its
 * envelope sender, its exact recipient set, its Message-ID field and its body) was made by this site, lately.
 * The HMAC, over a secret only this site holds, covers all of that, so a marker moved to another message, to the
 * same message with a recipient added, another body or another Message-ID, or kept past its lifetime verifies no
 * more. The filter accepts it only at the re-injection listener and removes it there in any case.
 *
 * The field value is a short list of tags, `v=2; id=<queue id>; t=<seconds>; mac=<base64url>`, read by a strict
 * parser: every tag exactly once, nothing else, each value from its own small alphabet.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { encodeParts, identityParts, type CopyIdentity } from './copy-identity.ts';

/** The header field name of the marker. */
export const MARKER_HEADER = 'X-Muse-Reinjected';

/** How long a marker stays valid: a copy sits in the MTA's queue at most this long before it is seen again. */
export const MARKER_LIFETIME_SECONDS = 7 * 24 * 3600;

/** How far in the future a marker's time may lie (clocks of a cluster's hosts disagree a little). */
export const MARKER_CLOCK_SKEW_SECONDS = 300;

/** The marker format this code writes and reads. */
const VERSION = '2';

/** The marker's own fields besides the copy it is bound to. */
export interface MarkerStamp {
  /** Queue id of the original transaction, for the log; letters, digits, `.`, `_` and `-` only. */
  readonly queueId: string;
  /** Seconds since the epoch when the copy was made. */
  readonly time: number;
}

/** What a marker binds together. */
export type MarkerFields = MarkerStamp & CopyIdentity;

const QUEUE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAC_BYTES = 32;

function mac(secret: Buffer, fields: MarkerFields): Buffer {
  return createHmac('sha256', secret)
    .update(encodeParts(['muse-reinjected', VERSION, fields.queueId, String(fields.time), ...identityParts(fields)]))
    .digest();
}

/** The queue id as it goes into a marker: one the tag syntax cannot carry is written as `unknown`. */
export function markerQueueId(queueId: string | undefined): string {
  return queueId !== undefined && QUEUE_ID.test(queueId) ? queueId : 'unknown';
}

/** The header value (with its leading space) for a copy. */
export function createMarker(secret: Buffer, fields: MarkerFields): string {
  const stamped = { ...fields, queueId: markerQueueId(fields.queueId) };
  return ` v=${VERSION}; id=${stamped.queueId}; t=${fields.time}; mac=${mac(secret, stamped).toString('base64url')}`;
}

/** A marker's tags, as parsed. */
export interface ParsedMarker {
  readonly queueId: string;
  readonly time: number;
  readonly mac: Buffer;
}

/** Each tag with the alphabet of its value. */
const TAG_VALUES: Readonly<Record<string, RegExp>> = {
  v: /^[0-9]{1,3}$/,
  id: QUEUE_ID,
  t: /^[0-9]{1,12}$/,
  mac: /^[A-Za-z0-9_-]{43}$/,
};

function isBlank(char: string | undefined): boolean {
  return char === ' ' || char === '\t' || char === '\r' || char === '\n';
}

/**
 * Parses a marker value: `tag=value` pairs separated by `;`, blanks (and folding) allowed around each tag and
 * value, a trailing `;` allowed. Every tag of {@link TAG_VALUES} exactly once and no other; the version this code
 * writes. Returns why not, as a string, when the value is not such a marker.
 */
export function parseMarker(value: string): ParsedMarker | string {
  const tags = new Map<string, string>();
  let at = 0;
  const skipBlanks = (): void => {
    while (isBlank(value[at])) at++;
  };
  /** Reads up to (not including) one of `stops` or the end; blanks inside end the token. */
  const token = (stops: string): string => {
    const start = at;
    while (at < value.length && !stops.includes(value[at] as string) && !isBlank(value[at])) at++;
    return value.slice(start, at);
  };
  skipBlanks();
  while (at < value.length) {
    const name = token('=;');
    skipBlanks();
    if (name === '' || value[at] !== '=') return 'malformed marker';
    at++;
    skipBlanks();
    const tagValue = token(';');
    skipBlanks();
    if (at < value.length && value[at] !== ';') return 'malformed marker';
    at++;
    skipBlanks();
    const alphabet = TAG_VALUES[name];
    if (alphabet === undefined || !Object.hasOwn(TAG_VALUES, name)) return `malformed marker: unknown tag ${JSON.stringify(name.slice(0, 16))}`;
    if (tags.has(name)) return `malformed marker: tag ${name} twice`;
    if (!alphabet.test(tagValue)) return `malformed marker: bad value of ${name}`;
    tags.set(name, tagValue);
  }
  for (const name of Object.keys(TAG_VALUES)) if (!tags.has(name)) return `malformed marker: no tag ${name}`;
  if (tags.get('v') !== VERSION) return `unsupported marker version ${tags.get('v')}`;
  const macBytes = Buffer.from(tags.get('mac') as string, 'base64url');
  if (macBytes.length !== MAC_BYTES) return 'malformed marker: bad value of mac';
  return { queueId: tags.get('id') as string, time: Number(tags.get('t')), mac: macBytes };
}

/** Why a marker was not accepted, or that it was. */
export type MarkerCheck = { valid: true; queueId: string; time: number } | { valid: false; reason: string };

/**
 * Checks a marker against the message that carries it, as the milter sees it, and the current time. Any
 * difference in sender, recipient set, Message-ID fields or body makes the HMAC differ.
 */
export function verifyMarker(secret: Buffer, headerValue: string, message: CopyIdentity, now: number): MarkerCheck {
  const parsed = parseMarker(headerValue);
  if (typeof parsed === 'string') return { valid: false, reason: parsed };
  if (now - parsed.time > MARKER_LIFETIME_SECONDS) return { valid: false, reason: 'marker expired' };
  if (parsed.time - now > MARKER_CLOCK_SKEW_SECONDS) return { valid: false, reason: 'marker from the future' };
  const expected = mac(secret, { ...message, queueId: parsed.queueId, time: parsed.time });
  if (!timingSafeEqual(expected, parsed.mac)) return { valid: false, reason: 'marker does not match this message' };
  return { valid: true, queueId: parsed.queueId, time: parsed.time };
}
