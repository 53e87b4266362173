/** Errors raised by the OpenPGP operations, with stable codes. */

/** Stable codes of {@link PgpError}. */
export type PgpErrorCode =
  /** The ASCII armor is not well formed, not canonical, or its checksum does not match. */
  | 'ARMOR_INVALID'
  /** The OpenPGP packets cannot be parsed. */
  | 'MESSAGE_INVALID'
  /** Decryption failed: wrong key, damaged session key, or failed integrity check (MDC). */
  | 'DECRYPT_FAILED'
  /** Signing and encrypting failed (for example an unusable recipient key). */
  | 'ENCRYPT_FAILED'
  /** Producing a detached signature failed. */
  | 'SIGN_FAILED'
  /** A bound on the work a message may cause was reached; `limit` says which. */
  | 'LIMIT_EXCEEDED';

/**
 * The bounds decryption enforces: how far compressed data may expand, how many session key packets a message
 * may carry, how many of them are tried with a private key.
 */
export type PgpLimit = 'decompressed-bytes' | 'session-key-packets' | 'session-key-attempts';

/** An OpenPGP operation failure; `cause` holds the library's error. */
export class PgpError extends Error {
  readonly code: PgpErrorCode;
  /** For `LIMIT_EXCEEDED`: the bound reached and its value. */
  readonly limit: { readonly name: PgpLimit; readonly max: number } | undefined;

  constructor(code: PgpErrorCode, message: string, options?: { cause?: unknown; limit?: { name: PgpLimit; max: number } }) {
    super(message, options);
    this.name = 'PgpError';
    this.code = code;
    this.limit = options?.limit;
  }
}

/** The message of an unknown thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
