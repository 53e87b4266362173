/**
 * What worker processes and their primary tell each other about pins over the cluster IPC channel. With
 * `milter.workers` above 1 the primary holds the one pin store; a worker asks it for the pins when it starts
 * (`open`, answered by `snapshot` messages and `done`), reports what a lookup taught (`learn`, answered by `done`
 * once the change is durable), and hears of every pin that changes (`pin`).
 *
 * Every message carries `muse: 'pins'`, which tells it apart from the other traffic on the channel (the daemon's
 * reload and stop requests, prom-client's metric requests). Anything so marked is validated in full before it
 * is used: a process never trusts the shape of what arrives on the channel.
 */
import { z } from 'zod';
import { MAX_AGE_LIMIT, MAX_RECORDS_PER_TYPE, SITE_POLICIES } from '../keys/index.ts';
import { domainSchema, fingerprintSchema, isoDateSchema, keyBytesSchema, pinSchema, PinStoreError, type Pin, type PinInput } from '../pins/index.ts';

/** The mark of a pin relay message. */
export const PIN_RELAY_TAG = 'pins';

/** The log line of a pin relay message that is not valid, on either side of the channel. */
export const MALFORMED_PIN_MESSAGE_LOG = 'pin relay: malformed message ignored';

/**
 * Pins per `snapshot` message. A store near its bound (MAX_PINS) then travels as many messages of a few hundred
 * kilobytes instead of one of tens of megabytes, which the channel would hold whole in memory on both sides.
 */
export const SNAPSHOT_CHUNK = 1000;

/** Stable codes of {@link PinRelayError}. */
export type PinRelayErrorCode =
  /** The other side sent a message that is not a valid pin relay message. */
  | 'PIN_RELAY_MALFORMED'
  /** A worker asked for a pin directory other than the one the primary started with. */
  | 'PIN_RELAY_DIRECTORY'
  /** The channel to the primary is closed: nothing can be saved any more. */
  | 'PIN_RELAY_CLOSED';

/** A failure of the pin relay itself (a store failure travels as the {@link PinStoreError} it is). */
export class PinRelayError extends Error {
  override readonly name = 'PinRelayError';

  /**
   * @param code stable failure code
   * @param message what went wrong
   */
  constructor(
    readonly code: PinRelayErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const STORE_CODES = ['PIN_STORE_CORRUPT', 'PIN_STORE_IO'] as const;
const RELAY_CODES = ['PIN_RELAY_MALFORMED', 'PIN_RELAY_DIRECTORY', 'PIN_RELAY_CLOSED'] as const;

/** Request numbers: positive, unique per worker. */
const requestId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** A lookup reduced to what the pin evaluation reads. A lookup merges three record types, hence the key bound. */
const lookupSchema = z.strictObject({
  domain: domainSchema,
  status: z.enum(['found', 'none', 'temporary-failure']),
  keys: z.array(z.strictObject({ fingerprint: fingerprintSchema, bytes: keyBytesSchema.optional() })).max(3 * MAX_RECORDS_PER_TYPE),
  policy: z.enum(SITE_POLICIES).nullable(),
  maxAge: z.number().int().min(0).max(MAX_AGE_LIMIT),
  dnssec: z.boolean(),
  /** Keys a pinned key certified, as the worker checked them: the primary trusts its own workers' checks. */
  certifiedBy: z.record(fingerprintSchema, fingerprintSchema).optional(),
});

const errorSchema = z.strictObject({ code: z.enum([...STORE_CODES, ...RELAY_CODES]), message: z.string().max(4096) });

const tag = z.literal(PIN_RELAY_TAG);

const workerMessageSchema = z.discriminatedUnion('op', [
  /** Asks for every pin the primary holds for `directory`. */
  z.strictObject({ muse: tag, op: z.literal('open'), id: requestId, directory: z.string().min(1).max(4096) }),
  /** Reports a lookup, evaluated at `at`, whose evaluation in the worker changed a pin. */
  z.strictObject({ muse: tag, op: z.literal('learn'), id: requestId, at: isoDateSchema, lookup: lookupSchema }),
]);

const primaryMessageSchema = z.discriminatedUnion('op', [
  /** Part of the answer to `open`: some of the pins. */
  z.strictObject({ muse: tag, op: z.literal('snapshot'), id: requestId, pins: z.array(pinSchema).max(SNAPSHOT_CHUNK) }),
  /** A domain's pin as the primary now holds it (null: none). */
  z.strictObject({ muse: tag, op: z.literal('pin'), domain: domainSchema, pin: pinSchema.nullable() }),
  /** The end of a request: `open` answered in full, or `learn` durable; with `error` when it failed. */
  z.strictObject({ muse: tag, op: z.literal('done'), id: requestId, error: errorSchema.optional() }),
]);

/** A message from a worker to the primary. */
export type WorkerPinMessage = z.infer<typeof workerMessageSchema>;
/** A message from the primary to a worker. */
export type PrimaryPinMessage = z.infer<typeof primaryMessageSchema>;
/** A lookup as a `learn` message carries it. */
export type WireLookup = z.infer<typeof lookupSchema>;
/** A failure as a `done` message carries it. */
export type WireError = z.infer<typeof errorSchema>;

/**
 * What arrived on the channel: a valid pin relay message, a malformed one (with the problem, and its request
 * number when one can be read, so the sender need not wait for ever), or other traffic.
 */
export type Received<T> =
  | { readonly kind: 'message'; readonly message: T }
  | { readonly kind: 'malformed'; readonly problem: string; readonly id: number | undefined }
  | { readonly kind: 'other' };

function receive<T>(schema: z.ZodType<T>, raw: unknown): Received<T> {
  if (typeof raw !== 'object' || raw === null || (raw as { muse?: unknown }).muse !== PIN_RELAY_TAG) return { kind: 'other' };
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { kind: 'message', message: parsed.data };
  const issue = parsed.error.issues[0];
  const id = requestId.safeParse((raw as { id?: unknown }).id);
  return {
    kind: 'malformed',
    problem: issue === undefined ? 'invalid' : `${issue.path.join('.') || 'message'}: ${issue.message}`,
    id: id.success ? id.data : undefined,
  };
}

/** Reads what a worker sent. */
export function receiveFromWorker(raw: unknown): Received<WorkerPinMessage> {
  return receive(workerMessageSchema, raw);
}

/** Reads what the primary sent. */
export function receiveFromPrimary(raw: unknown): Received<PrimaryPinMessage> {
  return receive(primaryMessageSchema, raw);
}

/** A lookup as `learn` carries it: only what the evaluation reads. */
export function lookupToWire(lookup: PinInput): WireLookup {
  return {
    domain: lookup.domain,
    status: lookup.status,
    keys: lookup.keys.map((key) => ({
      fingerprint: key.fingerprint,
      ...(key.bytes === undefined ? {} : { bytes: Buffer.from(key.bytes).toString('base64') }),
    })),
    policy: lookup.policy,
    maxAge: lookup.maxAge,
    dnssec: lookup.dnssec,
    ...(lookup.certifiedBy === undefined ? {} : { certifiedBy: { ...lookup.certifiedBy } }),
  };
}

/** The evaluation's input back from a `learn` message. */
export function lookupFromWire(lookup: WireLookup): PinInput {
  return {
    ...lookup,
    keys: lookup.keys.map((key) => (key.bytes === undefined ? { fingerprint: key.fingerprint } : { fingerprint: key.fingerprint, bytes: Buffer.from(key.bytes, 'base64') })),
  };
}

/** A failure for a `done` message: store and relay errors keep their code; anything else is an I/O failure. */
export function errorToWire(error: unknown): WireError {
  const message = (error instanceof Error ? error.message : String(error)).slice(0, 4096);
  if (error instanceof PinStoreError || error instanceof PinRelayError) return { code: error.code, message };
  return { code: 'PIN_STORE_IO', message };
}

/** The error a `done` message reports, as the class its code belongs to. */
export function errorFromWire(error: WireError): PinStoreError | PinRelayError {
  switch (error.code) {
    case 'PIN_STORE_CORRUPT':
    case 'PIN_STORE_IO':
      return new PinStoreError(error.code, error.message);
    default:
      return new PinRelayError(error.code, error.message);
  }
}

/** A pin as it travels (the same fields as in memory). */
export function pinToWire(pin: Pin): z.infer<typeof pinSchema> {
  return { ...pin, fingerprints: [...pin.fingerprints], publicKeys: { ...pin.publicKeys } };
}
