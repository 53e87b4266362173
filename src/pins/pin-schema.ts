/**
 * The shape of a pin as it leaves a process: in `pins.json` (keyed by domain) and in the messages worker
 * processes exchange with the primary (domain included). One schema for both, so a pin the file would refuse
 * never travels between processes either.
 */
import { z } from 'zod';
import { SITE_POLICIES } from '../keys/index.ts';

/** A key fingerprint as pins hold it: v4, 40 upper-case hex digits (the only key version sites may publish). */
export const fingerprintSchema = z.string().regex(/^[0-9A-F]{40}$/);

/** An ISO 8601 time, as pins store them. */
export const isoDateSchema = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date');

/** A domain name: RFC 1035 bounds a name to 255 octets, which also bounds what a message may carry. */
export const domainSchema = z.string().min(1).max(255);

/** A pin without its domain, as `pins.json` stores it under the domain's key. */
export const pinFieldsSchema = z.object({
  fingerprints: z.array(fingerprintSchema).min(1),
  policy: z.enum(SITE_POLICIES),
  maxAge: z.number().int().min(0),
  firstSeen: isoDateSchema,
  lastSeen: isoDateSchema,
  expiresAt: isoDateSchema,
  dnssec: z.boolean(),
});

/** A whole pin, domain included. */
export const pinSchema = pinFieldsSchema.extend({ domain: domainSchema });
