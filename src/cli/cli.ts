/**
 * The `muse-milter` command line: a table of verbs and a dispatcher that parses each verb's options with
 * `node:util` parseArgs, prints help, and maps outcomes to exit codes (0 ok, 1 failure found, 2 usage error).
 * Adding a verb is one entry in {@link VERBS}.
 */
import { parseArgs } from 'node:util';
import { checkConfigVerb } from './verbs/check-config.ts';
import { dnsRecordVerb } from './verbs/dns-record.ts';
import { genkeyVerb } from './verbs/genkey.ts';
import { initVerb } from './verbs/init.ts';
import { lookupVerb } from './verbs/lookup.ts';
import { pinsVerb } from './verbs/pins.ts';
import { rotateVerb } from './verbs/rotate.ts';
import { runVerb } from './verbs/run.ts';
import { testkeyVerb } from './verbs/testkey.ts';
import { EXIT, UsageError, type CliIo, type Verb } from './verb.ts';

/** Every verb, in the order help lists them. */
export const VERBS: readonly Verb[] = [runVerb, initVerb, checkConfigVerb, genkeyVerb, rotateVerb, dnsRecordVerb, testkeyVerb, lookupVerb, pinsVerb];

const PROGRAM = 'muse-milter';

/**
 * Runs one command line (without the program name) and returns the exit code. Never throws: every error becomes
 * a message on `io.stderr` and exit code 1 (or 2 for usage errors).
 */
export async function runCli(argv: readonly string[], io: CliIo, verbs: readonly Verb[] = VERBS): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr(generalHelp(verbs));
    return EXIT.USAGE;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const verb = rest[0] === undefined ? undefined : verbs.find((v) => v.name === rest[0]);
    if (rest[0] !== undefined && !verb) return usage(io, `unknown verb "${rest[0]}"`);
    io.stdout(verb ? verbHelp(verb) : generalHelp(verbs));
    return EXIT.OK;
  }
  const verb = verbs.find((v) => v.name === first);
  if (!verb) return usage(io, `unknown verb "${first}"`);
  try {
    const parsed = parseArgs({
      args: [...rest],
      options: {
        ...Object.fromEntries(
          Object.entries(verb.options).map(([name, spec]) => [name, { type: spec.type, multiple: spec.multiple ?? false }]),
        ),
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.values.help === true) {
      io.stdout(verbHelp(verb));
      return EXIT.OK;
    }
    const count = parsed.positionals.length;
    if (count < verb.positionals.min || count > verb.positionals.max) {
      throw new UsageError(count > verb.positionals.max ? `unexpected argument "${parsed.positionals[verb.positionals.max] ?? ''}"` : `missing ${verb.positionals.usage}`);
    }
    return await verb.run({ values: parsed.values, positionals: parsed.positionals }, io);
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) return usage(io, (error as Error).message, verb);
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`${PROGRAM} ${verb.name}: ${typeof code === 'string' ? `${code}: ` : ''}${message}\n`);
    return EXIT.FAILURE;
  }
}

function usage(io: CliIo, message: string, verb?: Verb): number {
  const hint = verb ? `${PROGRAM} ${verb.name} --help` : `${PROGRAM} --help`;
  io.stderr(`${PROGRAM}${verb ? ` ${verb.name}` : ''}: ${message}\nTry "${hint}".\n`);
  return EXIT.USAGE;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

function generalHelp(verbs: readonly Verb[]): string {
  const width = Math.max(...verbs.map((v) => v.name.length)) + 2;
  return (
    `Usage: ${PROGRAM} <verb> [options]\n\nVerbs:\n` +
    verbs.map((v) => `  ${v.name.padEnd(width)}${v.summary}\n`).join('') +
    `\nRun "${PROGRAM} <verb> --help" for the options of a verb.\n`
  );
}

function verbHelp(verb: Verb): string {
  const entries: [string, string][] = Object.entries(verb.options).map(([name, spec]) => [
    `--${name}${spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : ''}`,
    `${spec.description}${spec.multiple ? ' (repeatable)' : ''}`,
  ]);
  entries.push(['-h, --help', 'show this help']);
  const width = Math.max(...entries.map(([flag]) => flag.length)) + 2;
  const positional = verb.positionals.usage ? ` ${verb.positionals.min > 0 ? verb.positionals.usage : `[${verb.positionals.usage}]`}` : '';
  return (
    `Usage: ${PROGRAM} ${verb.name} [options]${positional}\n\n${verb.summary}\n\nOptions:\n` +
    entries.map(([flag, text]) => `  ${flag.padEnd(width)}${text}\n`).join('') +
    `\n${verb.details}\n`
  );
}
