/**
 * The marker carried by a copy the milter re-injects into the MTA. It proves, with an HMAC over a
 * secret only this site holds, that the copy was already processed, so that a copy passing the milter
 * again (a misconfigured re-injection port) is let through unchanged instead of being split again in a
 * loop. A forged or stale marker is worth nothing: it is removed and the message processed normally.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header field name of the marker. */
export const MARKER_HEADER = 'X-Muse-Reinjected';

/** How long a marker stays valid: a copy sits in the MTA's queue at most this long before it is seen again. */
export const MARKER_LIFETIME_SECONDS = 7 * 24 * 3600;

/** What a marker binds together. */
export interface MarkerFields {
  /** Queue id of the original transaction. */
  queueId: string;
  /** Which group of recipients this copy carries (e.g. `clear`). */
  group: string;
  /** The copy's envelope recipients. */
  recipients: readonly string[];
  /** Seconds since the epoch when the copy was made. */
  time: number;
}

function mac(secret: Buffer, fields: MarkerFields): string {
  const recipients = [...fields.recipients].map((r) => r.toLowerCase()).sort().join(',');
  return createHmac('sha256', secret).update(`v1|${fields.queueId}|${fields.group}|${fields.time}|${recipients}`).digest('base64url');
}

/** The header value (with its leading space) for a copy. */
export function createMarker(secret: Buffer, fields: MarkerFields): string {
  return ` v=1; id=${fields.queueId}; g=${fields.group}; t=${fields.time}; mac=${mac(secret, fields)}`;
}

/** Why a marker was not accepted, or that it was. */
export type MarkerCheck = { valid: true; fields: MarkerFields } | { valid: false; reason: string };

/**
 * Checks a marker against the recipients of the message that carries it and the current time.
 * Recipients must match exactly: a marked copy with added recipients is not the copy we made.
 */
export function verifyMarker(secret: Buffer, headerValue: string, recipients: readonly string[], now: number): MarkerCheck {
  const tags = new Map<string, string>();
  for (const part of headerValue.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) tags.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const queueId = tags.get('id');
  const group = tags.get('g');
  const time = Number(tags.get('t'));
  const given = tags.get('mac');
  if (tags.get('v') !== '1' || queueId === undefined || group === undefined || !Number.isInteger(time) || given === undefined) {
    return { valid: false, reason: 'malformed marker' };
  }
  if (now - time > MARKER_LIFETIME_SECONDS || time - now > 300) return { valid: false, reason: 'marker expired' };
  const fields: MarkerFields = { queueId, group, time, recipients };
  const expected = Buffer.from(mac(secret, fields));
  const actual = Buffer.from(given);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return { valid: false, reason: 'marker does not verify' };
  return { valid: true, fields };
}
