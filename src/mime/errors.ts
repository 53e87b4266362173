/** Errors raised while reading or building MIME structure. */

/** Stable codes of {@link MimeError}. */
export type MimeErrorCode =
  /** MIME nesting deeper than the configured limit. */
  'MIME_DEPTH';

/** A MIME structure problem, with a stable `code`. */
export class MimeError extends Error {
  readonly code: MimeErrorCode;

  constructor(code: MimeErrorCode, message: string) {
    super(message);
    this.name = 'MimeError';
    this.code = code;
  }
}
