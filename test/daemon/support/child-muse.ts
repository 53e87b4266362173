/**
 * `muse-milter` as a child process (`node --max-semi-space-size=2 --import tsx src/cli/main.ts ...`, with the Node
 * options of the command), for the tests of what only a real process has: signals, exit codes, what it prints.
 * Output is kept per stream, JSON log lines on stdout are parsed, and a process still running when the test file
 * ends is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerExitCleanup, waitFor, type ExitStatus } from '../../support/processes.ts';
import { MALLOC_ARENAS, MALLOC_ARENAS_ENV } from '../../../src/daemon/malloc-arenas.ts';
import { YOUNG_GENERATION_FLAG } from '../../../src/daemon/young-generation.ts';
import type { LogLine } from './harness.ts';

/** The repository root: the working directory of every child, so `tsx` and `src/` are found. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Bound on a child's start-up: loading the sources through tsx takes seconds when the machine is busy. */
export const STARTUP_TIMEOUT_MS = 45_000;

/** The command line that runs the CLI from source, with the Node options of the `muse-milter` command. */
export const CLI = [process.execPath, YOUNG_GENERATION_FLAG, '--import', 'tsx', 'src/cli/main.ts'] as const;

/** The environment the `muse-milter` command adds (its first line): two allocator arenas. */
export const COMMAND_ENV = { [MALLOC_ARENAS_ENV]: MALLOC_ARENAS } as const;

/** A running `muse-milter` child. */
export class ChildMuse {
  private out = '';
  private err = '';
  private status: ExitStatus | undefined;
  readonly exited: Promise<ExitStatus>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (text: string) => (this.out += text));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (this.err += text));
    const unregister = registerExitCleanup(() => child.kill('SIGKILL'));
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.status = { code, signal };
        unregister();
        resolve(this.status);
      });
    });
  }

  /** Starts `muse-milter ...args` with `env` added to this process's environment. */
  static async start(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ChildMuse> {
    const [node, ...nodeArgs] = CLI;
    const child = spawn(node, [...nodeArgs, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...COMMAND_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return new ChildMuse(child);
  }

  /** How it ended, once it has; undefined while it runs. */
  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** Everything written to stdout so far. */
  get stdout(): string {
    return this.out;
  }

  /** Everything written to stderr so far. */
  get stderr(): string {
    return this.err;
  }

  /** The JSON log lines on stdout so far (other stdout text, like the first-run report, is skipped). */
  logLines(): LogLine[] {
    return this.out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** Waits (bounded) for a log line with this message and returns it; fails at once if the process exits. */
  waitForLog(message: string, timeoutMs = 15_000, after = 0): Promise<LogLine> {
    return waitFor(
      () => {
        const line = this.logLines().slice(after).find((l) => l.message === message);
        if (line === undefined && this.status !== undefined) throw new Error(`exited (${JSON.stringify(this.status)}) before logging "${message}":\n${this.out}\n${this.err}`);
        return line;
      },
      { timeoutMs, what: `log line "${message}"` },
    );
  }

  /** Waits (bounded) until stderr matches `pattern`; returns the match. */
  waitForStderr(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    return waitFor(
      () => {
        const match = this.err.match(pattern) ?? undefined;
        if (match === undefined && this.status !== undefined) throw new Error(`exited (${JSON.stringify(this.status)}):\n${this.out}\n${this.err}`);
        return match;
      },
      { timeoutMs, what: `stderr matching ${pattern}` },
    );
  }

  /** The process id (for reading its memory use from /proc). */
  get pid(): number {
    return this.child.pid as number;
  }

  /** The milter address it announced on stderr (`run: milter listening on ...`); start-up on a loaded machine is slow. */
  async milterAddress(): Promise<string> {
    const match = await this.waitForStderr(/run: milter listening on (\S+?)(?:,|\n)/, STARTUP_TIMEOUT_MS);
    return match[1] as string;
  }

  /** Sends a signal. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Waits for the exit, at most `timeoutMs`; then kills it and fails. */
  async exit(timeoutMs = 15_000): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    const status = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (status !== undefined) return status;
    this.child.kill('SIGKILL');
    await this.exited;
    throw new Error(`did not exit within ${timeoutMs} ms:\n${this.out}\n${this.err}`);
  }

  /** Kills it if it still runs (for after hooks). */
  async kill(): Promise<void> {
    if (this.status !== undefined) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}
