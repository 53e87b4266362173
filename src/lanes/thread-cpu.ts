/**
 * What each job running in a thread cost in CPU. The thread's own CPU clock (Linux: the first field of
 * `/proc/thread-self/schedstat`, in nanoseconds) is read whenever a job starts, ends, or stops or resumes waiting
 * for something outside the thread (a DNS lookup); the time between two readings is shared equally among the jobs
 * that were running then. Where that file cannot be read, the wall clock stands in for it.
 */
import { readFileSync } from 'node:fs';

/** The calling thread's CPU time in milliseconds (or, failing that, the wall clock). */
export function threadCpuMs(): number {
  try {
    const first = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0];
    const ns = Number(first);
    if (Number.isFinite(ns)) return ns / 1e6;
  } catch {
    // Not Linux, or /proc not mounted: fall through to the wall clock.
  }
  return performance.now();
}

/** Shares a thread's CPU time among the jobs it runs concurrently. */
export class CpuLedger {
  readonly #clock: () => number;
  /** Jobs running now (not waiting). */
  readonly #running = new Set<number>();
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

  /** The job waits on something outside the thread: it is not charged meanwhile. */
  pause(job: number): void {
    this.#settle();
    this.#running.delete(job);
  }

  /** The job runs again. */
  resume(job: number): void {
    this.#settle();
    if (this.#charged.has(job)) this.#running.add(job);
  }

  /** The job ended: what it cost, in milliseconds. */
  end(job: number): number {
    this.#settle();
    this.#running.delete(job);
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
