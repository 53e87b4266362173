/** How a configuration value is named in an error message, after "got". */

/**
 * Names a value the way an administrator wrote it in YAML: strings quoted, numbers and booleans as they are,
 * lists and mappings by kind (their contents would not fit on one line).
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}
