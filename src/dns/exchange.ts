/**
 * What the UDP and TCP exchanges share: the error they fail with, and the rule that an exchange settles
 * exactly once — on the answer, on an error, when its own try runs out, or when the caller's overall
 * deadline fires, whichever comes first — and releases its socket whichever way it ends.
 */

/** Why an exchange produced no message. */
export class ExchangeError extends Error {
  override readonly name = 'ExchangeError';

  /**
   * @param outcome `timeout` when the time ran out, `network` for socket errors, `bad-response` for a TCP peer
   *   that sent something other than our answer
   * @param message detail
   */
  constructor(
    readonly outcome: 'timeout' | 'network' | 'bad-response',
    message: string,
  ) {
    super(message);
  }
}

/** Ends an exchange: with an error, or with its answer. Later calls do nothing. */
export type Finish<T> = (error: Error | undefined, answer?: T) => void;

/** The bounds and the clean-up of one exchange. */
export interface ExchangeBounds {
  /** This try's time. */
  timeoutMs: number;
  /** The caller's overall deadline. */
  signal: AbortSignal;
  /** The error for a try that ran out; built when it happens, so it can say what was seen by then. */
  timeoutError(): ExchangeError;
  /** Frees the socket; called once, whichever way the exchange ends. */
  release(): void;
}

/**
 * Runs an exchange under its bounds. `start` wires the socket to `finish`; it is not called when the deadline
 * has already passed. `settled()` tells a late callback that the exchange is over.
 */
export function boundedExchange<T>(bounds: ExchangeBounds, start: (finish: Finish<T>, settled: () => boolean) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish: Finish<T> = (error, answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      bounds.signal.removeEventListener('abort', onAbort);
      bounds.release();
      if (error) reject(error);
      else if (answer !== undefined) resolve(answer);
    };
    const onAbort = (): void => finish(new ExchangeError('timeout', 'overall deadline reached'));
    const timer = setTimeout(() => finish(bounds.timeoutError()), bounds.timeoutMs);
    bounds.signal.addEventListener('abort', onAbort, { once: true });
    if (bounds.signal.aborted) {
      onAbort();
      return;
    }
    start(finish, () => done);
  });
}
