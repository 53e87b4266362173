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
  | 'SIGN_FAILED';

/** An OpenPGP operation failure; `cause` holds the library's error. */
export class PgpError extends Error {
  readonly code: PgpErrorCode;

  constructor(code: PgpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PgpError';
    this.code = code;
  }
}

/** The message of an unknown thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
