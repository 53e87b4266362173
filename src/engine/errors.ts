/** Errors of the engine's entry points, with stable codes. */

/** Stable codes of {@link EngineError}. */
export type EngineErrorCode =
  /** The options object is invalid (unknown key, locked key, bad boundary…): a programming error. */
  | 'BAD_OPTIONS'
  /** Signing and encrypting the message failed. */
  | 'ENCRYPT_FAILED'
  /** Producing the detached signature failed. */
  | 'SIGN_FAILED'
  /** Every boundary tried occurred in the content. */
  | 'BOUNDARY_COLLISION'
  /** Writing the spooled body failed (disk full, permissions). */
  | 'SPOOL_FAILED'
  /** Reading the input body failed. */
  | 'BODY_READ_FAILED';

/** An engine failure; `cause` holds the underlying error. */
export class EngineError extends Error {
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}

/** Throws `BAD_OPTIONS` when `options` has a key outside `allowed` (catches misspelt options). */
export function rejectUnknownOptions(options: object, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw new EngineError('BAD_OPTIONS', `${where}: unknown option "${key}"`);
  }
}
