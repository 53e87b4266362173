/** Typed failures of loading the configuration. */

/** Stable codes of {@link ConfigError}. */
export type ConfigErrorCode =
  /** The file cannot be read (missing, a directory, no permission). */
  | 'CONFIG_UNREADABLE'
  /** The file is not valid YAML. */
  | 'CONFIG_SYNTAX'
  /** The file is YAML but breaks the schema: wrong types, unknown keys, refused values. */
  | 'CONFIG_INVALID';

/** A configuration that cannot be used. The message lists every problem, one per line, each with its place. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  /**
   * @param code stable failure code
   * @param problems every problem found, in file order, each `file[:line:column]: text`; the message joins them
   */
  constructor(
    readonly code: ConfigErrorCode,
    readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(problems.join('\n'), options);
  }
}
