/**
 * muse-milter run as a program, the way an administrator runs it: `node --max-semi-space-size=2 --import tsx
 * src/cli/main.ts run --config FILE` (the command's Node options), in its own process group, its output (JSON log lines on stdout, notices on stderr)
 * appended to one log file that survives restarts, so a test can count the `message processed` lines of
 * every incarnation. A start is done when this incarnation owns its milter port and logged
 * `muse-milter started`; one that exits first or stays silent fails with its own output.
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { YOUNG_GENERATION_FLAG } from '../../src/daemon/young-generation.ts';
import { HarnessError } from '../support/errors.ts';
import { ownsListeningPort, startDaemon, waitFor, type DaemonProcess, type ExitStatus } from '../support/processes.ts';

/** The repository root: the daemon runs from there so that `tsx` resolves. */
const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Node with tsx starts the daemon in about three seconds here; a loaded CI machine gets far more. */
const START_TIMEOUT_MS = 30_000;
/** Bound on a SIGTERM stop: milter.shutdownTimeout (30 s in examples/muse.yaml) plus slack. */
const STOP_TIMEOUT_MS = 40_000;
/** The summary line every processed message gets (src/log/message-line.ts). */
const MESSAGE_LINE = 'message processed';

/** One parsed JSON log line. */
export type LogLine = Readonly<Record<string, unknown>>;

/** Options of {@link MuseDaemon}. */
export interface MuseDaemonOptions {
  /** The configuration file. */
  readonly configPath: string;
  /** Where the output of every incarnation is appended. */
  readonly logPath: string;
  /** The TCP port of `milter.listen`, to check this incarnation listens. */
  readonly milterPort: number;
  /** A name for messages ("site A milter"). */
  readonly name: string;
}

/** A muse-milter program that a test starts, kills and restarts. */
export class MuseDaemon {
  private daemon: DaemonProcess | undefined;
  /** Where the running incarnation's output starts in the log file (its start is judged by its own lines). */
  private logStart = 0;

  constructor(private readonly options: MuseDaemonOptions) {}

  /** The pid of the running incarnation, or undefined. */
  get pid(): number | undefined {
    return this.daemon?.exitStatus() === undefined ? this.daemon?.pid : undefined;
  }

  /**
   * Starts an incarnation and waits until it serves. Rejects with `START_FAILED` (with its output) when it
   * exits first or does not come up in time; nothing is left running then.
   */
  async start(): Promise<void> {
    if (this.pid !== undefined) throw new HarnessError('INVALID_ARGUMENT', `${this.options.name} is already running`);
    closeSync(openSync(this.options.logPath, 'a'));
    this.logStart = statSync(this.options.logPath).size;
    // exec: the shell becomes node, so the pid (and process group) is the daemon's own. The Node options are the
    // muse-milter command's.
    const script = `MALLOC_ARENA_MAX=2 exec "$0" ${YOUNG_GENERATION_FLAG} --import tsx src/cli/main.ts run --config "$1" >>"$2" 2>&1`;
    const daemon = await startDaemon('sh', ['-c', script, process.execPath, this.options.configPath, this.options.logPath], {
      cwd: REPOSITORY_ROOT,
    });
    this.daemon = daemon;
    try {
      await waitFor(
        () => {
          const status = daemon.exitStatus();
          if (status !== undefined) throw new Error(`exited (code ${status.code}, signal ${status.signal})`);
          const started = this.ownLines().some((line) => line['message'] === 'muse-milter started');
          return started && ownsListeningPort(daemon.pid, this.options.milterPort) ? true : undefined;
        },
        { timeoutMs: START_TIMEOUT_MS, what: `${this.options.name} serving on port ${this.options.milterPort}` },
      );
    } catch (error) {
      await daemon.stop(2_000);
      const reason = error instanceof Error ? error.message : String(error);
      throw new HarnessError('START_FAILED', `${this.options.name} did not start: ${reason}\noutput:\n${this.ownOutput()}`, { cause: error });
    }
  }

  /** SIGTERM (the daemon drains in-flight messages) and waits for the exit; bounded, SIGKILL past the bound. */
  async stop(): Promise<ExitStatus | undefined> {
    const daemon = this.daemon;
    if (daemon === undefined) return undefined;
    await daemon.stop(STOP_TIMEOUT_MS);
    return daemon.exitStatus();
  }

  /**
   * SIGKILL to the daemon's process group (its worker processes too, if it runs any): it dies at once, in the
   * middle of whatever it was doing. Waits for the exit (bounded).
   */
  async kill(): Promise<ExitStatus | undefined> {
    const daemon = this.daemon;
    if (daemon === undefined || daemon.exitStatus() !== undefined) return daemon?.exitStatus();
    process.kill(-daemon.pid, 'SIGKILL');
    await waitFor(() => daemon.exitStatus(), { timeoutMs: 5_000, what: `${this.options.name} ending after SIGKILL` });
    return daemon.exitStatus();
  }

  /**
   * Ends the running incarnation with `signal` (SIGTERM: {@link stop}, SIGKILL: {@link kill}) and starts a new
   * one: an empty DNS cache, and the pins its data directory keeps.
   */
  async restart(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    if (signal === 'SIGKILL') await this.kill();
    else await this.stop();
    await this.start();
  }

  /** The `message processed` lines of every incarnation so far, in order. */
  messageLines(): LogLine[] {
    return parseLines(this.readLog()).filter((line) => line['message'] === MESSAGE_LINE);
  }

  private readLog(): string {
    try {
      return readFileSync(this.options.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  private ownOutput(): string {
    return Buffer.from(this.readLog(), 'utf8').subarray(this.logStart).toString('utf8');
  }

  private ownLines(): LogLine[] {
    return parseLines(this.ownOutput());
  }
}

/** The JSON objects among `text`'s lines (notices on stderr and a line cut by a kill are left out). */
function parseLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // A line cut short by SIGKILL.
    }
  }
  return lines;
}
