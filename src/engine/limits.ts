/**
 * Size and structure limits. Exceeding one is reported as a {@link LimitExceeded} result, never
 * as an exception, so the daemon can apply its configured action and no mail is lost.
 */

/** The limits an operation enforces. */
export interface Limits {
  /** Header plus body bytes of the input message. Default 64 MiB. */
  readonly maxMessageBytes: number;
  /** Bytes of the top-level header section. Default 1 MiB. */
  readonly maxHeaderBytes: number;
  /** MIME nesting the engine descends into (multiparts and encapsulated messages). Default 32. */
  readonly maxMimeDepth: number;
}

/** The defaults: well above what Postfix accepts by default (message_size_limit is 10 MB). */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxMessageBytes: 64 * 1024 * 1024,
  maxHeaderBytes: 1024 * 1024,
  maxMimeDepth: 32,
});

/** Which limit was hit. */
export type LimitName = 'message-bytes' | 'header-bytes' | 'mime-depth';

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
