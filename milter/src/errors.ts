/**
 * Typed errors of the milter library. Every error has a stable `code` so callers and logs can match on
 * it without parsing messages.
 */

/** Stable codes for protocol violations by the peer; each ends only the connection it happened on. */
export type ProtocolErrorCode =
  | 'frame-too-large'
  | 'frame-empty'
  | 'truncated-frame'
  | 'unknown-command'
  | 'unknown-response'
  | 'malformed-command'
  | 'malformed-response'
  | 'out-of-phase'
  | 'negotiation-failed';

/** The peer broke the protocol: the connection is closed and the reason logged. */
export class MilterProtocolError extends Error {
  override readonly name = 'MilterProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Stable codes for misuse of the library by a filter. */
export type UsageErrorCode = 'action-not-negotiated' | 'invalid-modification' | 'invalid-verdict' | 'invalid-option';

/**
 * A filter asked for something the protocol or the negotiation does not allow, such as a header change
 * when the MTA did not grant ChangeHeaders. Raised before anything reaches the MTA.
 */
export class MilterUsageError extends Error {
  override readonly name = 'MilterUsageError';
  constructor(
    readonly code: UsageErrorCode,
    message: string,
  ) {
    super(message);
  }
}
