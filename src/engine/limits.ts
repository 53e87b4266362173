/**
 * Size and structure limits. Exceeding one is reported as a {@link LimitExceeded} result, never
 * as an exception, so the daemon can apply its configured action and no mail is lost.
 *
 * Every cost of a message is meant to grow linearly with its size; these limits put a ceiling on the
 * parts a sender controls that are not bounded by the size alone (how far compressed data expands, how
 * many key packets are worth a private-key operation).
 */

/** The limits an operation enforces. */
export interface Limits {
  /** Header plus body bytes of the input message. Default 64 MiB. */
  readonly maxMessageBytes: number;
  /** Bytes of a header section: the top-level one and the one found inside after decryption. Default 1 MiB. */
  readonly maxHeaderBytes: number;
  /** Fields of a header section, counted like {@link maxHeaderBytes}. Default 1000. */
  readonly maxHeaderFields: number;
  /** MIME nesting the engine descends into (multiparts and encapsulated messages). Default 32. */
  readonly maxMimeDepth: number;
  /**
   * How many times its own size an encrypted OpenPGP message may expand when decompressed; never more than
   * {@link maxMessageBytes} in any case. Default 20.
   */
  readonly maxDecompressionRatio: number;
  /** Public-key session key packets a message may carry at all; more and none is tried. Default 1000. */
  readonly maxSessionKeyPackets: number;
  /** Session key packets for one of our keys (or anonymous) tried with a private key. Default 8. */
  readonly maxSessionKeyAttempts: number;
}

/** The defaults: well above what Postfix accepts by default (message_size_limit is 10 MB). */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxMessageBytes: 64 * 1024 * 1024,
  maxHeaderBytes: 1024 * 1024,
  maxHeaderFields: 1000,
  maxMimeDepth: 32,
  maxDecompressionRatio: 20,
  maxSessionKeyPackets: 1000,
  maxSessionKeyAttempts: 8,
});

/** Which limit was hit. */
export type LimitName =
  | 'message-bytes'
  | 'header-bytes'
  | 'header-fields'
  | 'mime-depth'
  | 'decompressed-bytes'
  | 'session-key-packets'
  | 'session-key-attempts';

/** The result returned instead of output when a limit is exceeded; the message is untouched. */
export interface LimitExceeded {
  readonly kind: 'limit-exceeded';
  readonly limit: LimitName;
  readonly max: number;
}

/** Fills in defaults for the limits not given. */
export function resolveLimits(partial: Partial<Limits> | undefined): Limits {
  // Object.assign: spreading into a literal that already has fields is a slow path in V8 (per message here).
  return Object.assign({}, DEFAULT_LIMITS, partial);
}

/** Builds the result for a hit limit. */
export function limitExceeded(limit: LimitName, max: number): LimitExceeded {
  return { kind: 'limit-exceeded', limit, max };
}

/**
 * The first header limit `fields` exceed (`bytes` is what they occupy), or `null`. Fields are checked before
 * bytes: their count is what makes per-field work add up.
 */
export function headerLimitExceeded(fieldCount: number, bytes: number, limits: Limits): LimitExceeded | null {
  if (fieldCount > limits.maxHeaderFields) return limitExceeded('header-fields', limits.maxHeaderFields);
  if (bytes > limits.maxHeaderBytes) return limitExceeded('header-bytes', limits.maxHeaderBytes);
  return null;
}

/** The most bytes an encrypted OpenPGP message of `encryptedBytes` may decompress to. */
export function decompressionCap(encryptedBytes: number, limits: Limits): number {
  return Math.min(limits.maxMessageBytes, Math.floor(encryptedBytes * limits.maxDecompressionRatio));
}
