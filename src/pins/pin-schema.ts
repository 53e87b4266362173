/**
 * The shape of a pin as it leaves a process: in `pins.json` (keyed by domain) and in the messages worker
 * processes exchange with the primary (domain included). One schema for both, so a pin the file would refuse
 * never travels between processes either.
 */
import { z } from 'zod';
import { MAX_KEY_BYTES, SITE_POLICIES } from '../keys/index.ts';

/** A key fingerprint as pins hold it: v4, 40 upper-case hex digits (the only key version sites may publish). */
export const fingerprintSchema = z.string().regex(/^[0-9A-F]{40}$/);

/** An ISO 8601 time, as pins store them. */
export const isoDateSchema = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date');

/** A domain name: RFC 1035 bounds a name to 255 octets, which also bounds what a message may carry. */
export const domainSchema = z.string().min(1).max(255);

/** A binary public key in base64, no larger than a record may carry. */
export const keyBytesSchema = z
  .string()
  .min(4)
  .max(Math.ceil(MAX_KEY_BYTES / 3) * 4)
  .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'not base64');

/**
 * A pin without its domain, as `pins.json` stores it under the domain's key. `publicKeys` (store version 2) holds
 * the pinned keys' public key bytes by fingerprint, so a pinned key can vouch for its successor after the site
 * stopped publishing it; a version 1 store has none, and the bytes are filled in when the key is next seen.
 */
export const pinFieldsSchema = z
  .object({
    fingerprints: z.array(fingerprintSchema).min(1),
    policy: z.enum(SITE_POLICIES),
    maxAge: z.number().int().min(0),
    firstSeen: isoDateSchema,
    lastSeen: isoDateSchema,
    expiresAt: isoDateSchema,
    dnssec: z.boolean(),
    publicKeys: z.record(fingerprintSchema, keyBytesSchema).default({}),
  })
  .refine((pin) => Object.keys(pin.publicKeys).every((fp) => pin.fingerprints.includes(fp)), 'publicKeys holds a key that is not pinned');

/** A whole pin, domain included. */
export const pinSchema = pinFieldsSchema.and(z.object({ domain: domainSchema }));
