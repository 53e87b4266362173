/** What a CLI verb is: its options, its help, and a function from parsed arguments to an exit code. */

/** Exit codes of every verb. */
export const EXIT = {
  /** Done, nothing wrong found. */
  OK: 0,
  /** The verb ran and found a problem (a mismatch, a DNS failure, an error). */
  FAILURE: 1,
  /** The command line was wrong. */
  USAGE: 2,
} as const;

/** Where a verb writes; tests capture it, `main.ts` sends it to the process streams. */
export interface CliIo {
  /** Results (zone lines, lookup reports). */
  stdout(text: string): void;
  /** Diagnostics, warnings, errors. */
  stderr(text: string): void;
}

/** A `node:util` parseArgs option, with the help line it shows. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** Shown in help as `--name VALUE`. */
  readonly valueName?: string;
  readonly description: string;
}

/** Parsed command line of one verb. */
export interface VerbArgs {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
}

/** One `muse-milter <verb>`. */
export interface Verb {
  readonly name: string;
  /** One line for the verb list. */
  readonly summary: string;
  /** Positional arguments as shown in the usage line, e.g. `DOMAIN|ADDRESS`; empty for none. */
  readonly positionals: { readonly usage: string; readonly min: number; readonly max: number };
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Paragraphs after the option list: defaults, exit codes, examples. */
  readonly details: string;
  /** Runs the verb; throws {@link UsageError} for command-line mistakes. */
  run(args: VerbArgs, io: CliIo): Promise<number>;
}

/** A mistake on the command line: the dispatcher prints it with a hint and exits {@link EXIT.USAGE}. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}
