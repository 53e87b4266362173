/** Small statistics over latency samples, and the counts every kind of run reports. */

/** What any measured run counts, whatever drove it (the load generator, gpg processes). */
export interface RunCounts {
  /** Messages measured that got an acceptable result. */
  readonly messages: number;
  /** Messages measured that failed. */
  readonly errors: number;
  /** Up to five distinct error texts. */
  readonly errorSamples: readonly string[];
  /** Measurement window, milliseconds. */
  readonly elapsedMs: number;
  readonly messagesPerSecond: number;
  /** Message bytes (as sent) per second. */
  readonly bytesPerSecond: number;
}

/** The `p`-th percentile (0–100) of `sorted` (ascending), by the nearest-rank method; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** The median of `values` (any order); NaN when empty. */
export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Rounds to `digits` decimals, keeping the report readable and its JSON small. */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
