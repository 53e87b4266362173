/**
 * The warning for a full pin store. A store holding its maximum of pins in force learns no pin for a new domain
 * (src/pins/store.ts says why it never evicts one), so mail to and from that domain is judged as on first contact.
 * The administrator hears of it on the first refusal and then on every {@link REFUSALS_PER_WARNING}th, which keeps a
 * flood of lookups for made-up domains from flooding the log as well.
 */
import type { MilterLogger } from '../../milter/src/index.ts';

/** Refusals between two warnings after the first. */
export const REFUSALS_PER_WARNING = 1000;

/** The `onFull` callback of the pin store, logging through `log`. */
export function warnWhenPinStoreFull(log: MilterLogger, directory: string): (domain: string, refused: number) => void {
  return (domain, refused) => {
    if (refused !== 1 && refused % REFUSALS_PER_WARNING !== 0) return;
    log.warn('pin store full: no pin kept for a new domain (pins in force are never evicted; expired ones make room)', { directory, domain, refused });
  };
}
