/**
 * The example milters of `examples/` run verbatim as programs, the way a user runs them: `node --import tsx
 * examples/NAME.ts --listen ADDRESS`, each in its own process group. A start counts as done when the
 * program prints `listening ADDRESS` on stdout; a program that exits or stays silent fails the start with
 * its own output, so a test that needs it fails rather than skips.
 */
import { fileURLToPath } from 'node:url';
import { HarnessError } from '../../support/errors.ts';
import { startDaemon, waitFor, type DaemonProcess, type ExitStatus } from '../../support/processes.ts';

/** The example programs, by file name under `examples/`. */
export type ExampleName = 'stamp-milter' | 'reject-recipient-milter' | 'noop-milter';

/** The repository root: the examples are run from there so that `tsx` and the relative imports resolve. */
const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Node with tsx loads the TypeScript sources in well under two seconds; a slow CI machine gets more. */
const DEFAULT_START_TIMEOUT_MS = 20_000;
/** The examples close their server and exit at once on SIGTERM; the bound only guards a hang. */
const STOP_GRACE_MS = 8_000;

/** Options of {@link startExampleMilter}. */
export interface ExampleMilterOptions {
  /** Extra environment variables (REJECT_RECIPIENTS for the reject-recipient milter). */
  readonly env?: Readonly<Record<string, string>>;
  /** Bound on the wait for `listening ADDRESS` (default 20 s). */
  readonly startTimeoutMs?: number;
}

/** A running example milter. */
export interface ExampleMilter {
  /** The address it printed, in Postfix's syntax (`inet:127.0.0.1:12610`, `unix:/path`). */
  readonly address: string;
  readonly process: DaemonProcess;
  /** Its log lines (JSON on stderr), parsed, in order; other output is left out. */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERM, bounded wait, SIGKILL if needed; returns how it ended. Safe to call twice. */
  stop(): Promise<ExitStatus | undefined>;
}

/** One JSON log line, or nothing for `listening …`, a partial line or one cut by the output limit. */
function parseLogLine(line: string): Array<Record<string, unknown>> {
  if (!line.startsWith('{')) return [];
  try {
    return [JSON.parse(line) as Record<string, unknown>];
  } catch {
    return [];
  }
}

/**
 * Starts `examples/NAME.ts --listen LISTEN` and waits until it prints `listening ADDRESS`. Rejects with
 * `START_FAILED` (carrying the program's output) when it exits first or stays silent too long.
 */
export async function startExampleMilter(name: ExampleName, listen: string, options: ExampleMilterOptions = {}): Promise<ExampleMilter> {
  const daemon = await startDaemon(process.execPath, ['--import', 'tsx', `examples/${name}.ts`, '--listen', listen], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, ...options.env },
  });
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  let address: string;
  try {
    address = await waitFor(
      () => {
        const match = /^listening (\S+)$/m.exec(daemon.output());
        if (match?.[1] !== undefined) return match[1];
        const status = daemon.exitStatus();
        if (status !== undefined) throw new Error(`exited with ${JSON.stringify(status)} before listening`);
        return undefined;
      },
      { timeoutMs, what: `examples/${name}.ts printing "listening"` },
    );
  } catch (error) {
    await daemon.stop(STOP_GRACE_MS);
    const reason = error instanceof Error ? error.message : String(error);
    throw new HarnessError('START_FAILED', `examples/${name}.ts --listen ${listen} did not start: ${reason}\noutput:\n${daemon.output()}`, {
      cause: error,
    });
  }
  return {
    address,
    process: daemon,
    logLines: () => daemon.output().split('\n').flatMap(parseLogLine),
    async stop() {
      await daemon.stop(STOP_GRACE_MS);
      return daemon.exitStatus();
    },
  };
}
