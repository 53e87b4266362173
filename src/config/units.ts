/**
 * Durations, sizes and file modes as the configuration file writes them. Each parser returns `undefined` for
 * text it does not accept, so the schema can word the error once, with the offending value.
 */

/** Milliseconds per duration unit. `d` exists because pin lifetimes are naturally days. */
const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Bytes per size unit: binary units (KiB) and, since admins write them too, decimal ones (KB, MB, GB). */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  kB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

/**
 * Parses a duration: a string such as `30s`, `5m`, `2h`, `1.5s`, `250ms`, `30d`, or a number of milliseconds.
 * Returns whole milliseconds, or `undefined` when the value is not a non-negative duration.
 */
export function parseDuration(value: unknown): number | undefined {
  return parseQuantity(value, DURATION_UNITS);
}

/**
 * Parses a size: a string such as `64KiB`, `50MiB`, `1GB`, `512B`, or a number of bytes.
 * Returns whole bytes, or `undefined` when the value is not a non-negative size.
 */
export function parseSize(value: unknown): number | undefined {
  return parseQuantity(value, SIZE_UNITS);
}

function parseQuantity(value: unknown, units: Readonly<Record<string, number>>): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+)$/.exec(value.trim());
  const factor = match?.[2] === undefined ? undefined : units[match[2]];
  if (match === null || factor === undefined) return undefined;
  const result = Math.round(Number(match[1]) * factor);
  return Number.isSafeInteger(result) ? result : undefined;
}

/**
 * Parses a file mode written as octal digits in a string (`"0660"`, `"660"`). Numbers are refused on purpose:
 * YAML 1.2 reads an unquoted `0660` as the decimal number 660, which would be a very different mode.
 */
export function parseFileMode(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^0?[0-7]{3}$/.test(value.trim())) return undefined;
  return Number.parseInt(value.trim(), 8);
}
