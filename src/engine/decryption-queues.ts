/**
 * Decryption slots in two queues, by the size of the encrypted data: a message up to `largeAboveBytes` waits only
 * behind other small ones, a larger one only behind other large ones, and each queue runs at most `size` at once.
 *
 * One queue for all would let a stream of large encrypted messages (each holding its slot for the seconds it takes
 * to stream through decryption) keep every slot busy, and the ordinary small messages behind them would wait that
 * long too, however little each of them costs. Memory stays bounded: a small decryption holds at most its
 * decompression cap, a large one streams through spool files (docs/pgp-mime.md, "Limits").
 */
import { Slots } from './slots.ts';

/** Two {@link Slots} queues, chosen by the size of what is to be decrypted. */
export class DecryptionQueues {
  /** Encrypted data of at most {@link largeAboveBytes} octets. */
  readonly small: Slots;
  /** Larger encrypted data. */
  readonly large: Slots;

  /**
   * @param size decryptions running at once in each queue (a whole number of at least 1)
   * @param largeAboveBytes encrypted data larger than this waits in the large queue
   * @param makeSlots builds each queue (a subclass of {@link Slots} that also counts, for metrics)
   */
  constructor(
    size: number,
    readonly largeAboveBytes: number,
    makeSlots: (size: number) => Slots = (n) => new Slots(n),
  ) {
    this.small = makeSlots(size);
    this.large = makeSlots(size);
  }

  /** The queue for encrypted data of `bytes` octets. */
  for(bytes: number): Slots {
    return bytes > this.largeAboveBytes ? this.large : this.small;
  }

  /** Changes how many decryptions each queue runs at once (see {@link Slots.resize}). */
  resize(size: number): void {
    this.small.resize(size);
    this.large.resize(size);
  }

  /** Decryptions running now, in both queues. */
  get active(): number {
    return this.small.active + this.large.active;
  }

  /** Decryptions waiting for a slot, in both queues. */
  get queued(): number {
    return this.small.queued + this.large.queued;
  }
}
