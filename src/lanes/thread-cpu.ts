/**
 * What each job running in a thread cost in CPU. The thread's own CPU clock (Linux: the first field of
 * `/proc/thread-self/schedstat`, in nanoseconds) is read whenever a job starts, ends, or stops or resumes waiting
 * for something outside the thread (a DNS lookup); the time between two readings is shared equally among the jobs
 * that were running then. Where that file cannot be read, nothing is charged (the wall clock would charge a job at
 * nice 19 for the time it waited for the CPU); the lanes then go by size alone.
 */
import { readFileSync } from 'node:fs';

/** The calling thread's CPU time in milliseconds; 0 where it cannot be read (not Linux, no /proc). */
export function threadCpuMs(): number {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0]);
    return Number.isFinite(ns) ? ns / 1e6 : 0;
  } catch {
    return 0;
  }
}

/** Shares a thread's CPU time among the jobs it runs concurrently. */
export class CpuLedger {
  readonly #clock: () => number;
  /** Jobs running now (not waiting). */
  readonly #running = new Set<number>();
  /** How many waits each waiting job is in (a job may wait for two things at once). */
  readonly #waits = new Map<number, number>();
  /** Jobs started and not ended, running or waiting, with the CPU charged to each so far (ms). */
  readonly #charged = new Map<number, number>();
  #last: number;

  constructor(clock: () => number = threadCpuMs) {
    this.#clock = clock;
    this.#last = clock();
  }

  /** A job starts running. */
  start(job: number): void {
    this.#settle();
    this.#charged.set(job, 0);
    this.#running.add(job);
  }

  /** The job waits (for a DNS answer, a body chunk, a decryption slot): it is not charged meanwhile. */
  pause(job: number): void {
    if (!this.#charged.has(job)) return;
    this.#settle();
    this.#running.delete(job);
    this.#waits.set(job, (this.#waits.get(job) ?? 0) + 1);
  }

  /** One wait of the job is over; it runs again once none is left. */
  resume(job: number): void {
    const waits = this.#waits.get(job);
    if (waits === undefined) return;
    this.#settle();
    if (waits > 1) {
      this.#waits.set(job, waits - 1);
      return;
    }
    this.#waits.delete(job);
    this.#running.add(job);
  }

  /** Runs `wait` with `job` paused, however it settles. */
  async waiting<T>(job: number | undefined, wait: () => Promise<T>): Promise<T> {
    if (job === undefined) return wait();
    this.pause(job);
    try {
      return await wait();
    } finally {
      this.resume(job);
    }
  }

  /** The job ended: what it cost, in milliseconds. */
  end(job: number): number {
    this.#settle();
    this.#running.delete(job);
    this.#waits.delete(job);
    const cost = this.#charged.get(job) ?? 0;
    this.#charged.delete(job);
    return cost;
  }

  #settle(): void {
    const now = this.#clock();
    const spent = Math.max(0, now - this.#last);
    this.#last = now;
    if (this.#running.size === 0) return;
    const share = spent / this.#running.size;
    for (const job of this.#running) this.#charged.set(job, (this.#charged.get(job) ?? 0) + share);
  }
}
