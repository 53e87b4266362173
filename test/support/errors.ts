/**
 * Typed failures of the test harness (real MTAs, the SMTP sink and client, miltertest), so a test that fails
 * because a program could not start says so with a stable `code` and the program's own words.
 */

/** Stable codes of {@link HarnessError}. */
export type HarnessErrorCode =
  /** A program (Postfix, sendmail, the sink) could not be started; the message carries its output and logs. */
  | 'START_FAILED'
  /** A bounded wait ran out (port, message count, log line, command run time, SMTP reply). */
  | 'TIMEOUT'
  /** A helper command (`postfix flush`, m4) ran but failed; the message carries its output. */
  | 'COMMAND_FAILED'
  /** A TCP connection could not be opened. */
  | 'CONNECT_FAILED'
  /** The SMTP peer closed the connection or sent something that is not an SMTP reply. */
  | 'SMTP_PROTOCOL'
  /** The caller passed something the harness refuses (bad reply text, unknown template placeholder). */
  | 'INVALID_ARGUMENT';

/** A harness failure with a stable {@link HarnessErrorCode}. */
export class HarnessError extends Error {
  override readonly name = 'HarnessError';

  /**
   * @param code stable failure code
   * @param message human-readable explanation, including the output of the program concerned
   * @param options standard error options (`cause`)
   */
  constructor(
    readonly code: HarnessErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
