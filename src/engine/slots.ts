/**
 * A counting semaphore with a first-come, first-served queue: at most `size` tasks run at once, the rest wait
 * in the order they asked and are never turned away. Used to bound how many decryptions (CPU and plaintext
 * memory) a process runs at the same time, whatever the number of connections.
 */

/** A waiting task's wake-up. */
type Waiter = () => void;

/** At most {@link size} tasks at once; further ones queue, first in first out. */
export class Slots {
  #size: number;
  #active = 0;
  readonly #queue: Waiter[] = [];
  /** Index of the first waiter still queued: shifting an array per wake-up would cost its length each time. */
  #head = 0;

  /** `size` is a whole number of at least 1. */
  constructor(size: number) {
    this.#size = Slots.#checked(size);
  }

  /** How many tasks may run at once. */
  get size(): number {
    return this.#size;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * Changes how many tasks may run at once (a reloaded configuration). Tasks already running finish; waiting
   * ones start as room appears, so the new size holds from the moment the running ones drop below it.
   */
  resize(size: number): void {
    this.#size = Slots.#checked(size);
    this.#wake();
  }

  /** Runs `task` once a slot is free and frees the slot when it settles, however it settles. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active < this.#size && this.queued === 0) {
      this.#active++;
    } else {
      // The slot is handed over by #wake (the count already includes this task when it resumes).
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    }
    try {
      return await task();
    } finally {
      this.#active--;
      this.#wake();
    }
  }

  #wake(): void {
    while (this.#active < this.#size && this.#head < this.#queue.length) {
      const next = this.#queue[this.#head] as Waiter;
      this.#head++;
      this.#active++;
      next();
    }
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
  }

  static #checked(size: number): number {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`Slots: size must be a whole number of at least 1, got ${size}`);
    return size;
  }
}
