/**
 * What the daemon's key service needs from wherever pins are kept: the pin store itself in a single process, or
 * a worker's copy of the primary's store when several worker processes share one socket.
 */
import type { Pin, PinInput, PinUpdate } from './evaluate.ts';

/** Pins by domain, readable at once, with a way to record what a lookup taught. */
export interface PinKeeper {
  /** The pin of a (normalised) domain, expired or not, as this process knows it now. */
  get(domain: string): Pin | undefined;
  /**
   * Records what `lookup`, evaluated at `at`, asked for (`update`). The change holds for {@link get} as soon as
   * this returns, so the process enforces what it learnt at once; the promise settles once the change is
   * durable, and rejects when it could not be saved (the change then still holds in memory).
   */
  learn(lookup: PinInput, update: PinUpdate, at: Date): Promise<void>;
}
