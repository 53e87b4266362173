/** Typed failures of the site-key layer, each with a stable `code`. */

/** Stable codes of {@link KeyError}. */
export type KeyErrorCode =
  /** A domain or address that cannot name a site. */
  | 'KEY_BAD_DOMAIN'
  /** Bytes or text that are not exactly one OpenPGP key. */
  | 'KEY_MALFORMED'
  /** A key file that cannot be read (missing, not a regular file, too large). */
  | 'KEY_FILE_UNREADABLE'
  /** A private key file that group or others may read or write, where that is refused. */
  | 'KEY_FILE_INSECURE'
  /** A file expected to hold the private site key holds only a public key. */
  | 'KEY_NOT_PRIVATE'
  /** A private key protected by a passphrase: the milter must use it unattended. */
  | 'KEY_ENCRYPTED'
  /** A key file that exists where a new one was to be written. */
  | 'KEY_FILE_EXISTS';

/** A site-key failure. */
export class KeyError extends Error {
  override readonly name = 'KeyError';

  /**
   * @param code stable failure code
   * @param message human-readable explanation (never contains key material)
   */
  constructor(
    readonly code: KeyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
