/**
 * Running a milter (or any server) under test as a separate process: start it, wait until its socket accepts
 * connections, stop it with SIGTERM (SIGKILL after a bound), and keep its output for error messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import { parseMilterAddress } from '../../milter/src/index.ts';

/** A started process. */
export interface TargetProcess {
  readonly pid: number;
  /** The last few kilobytes of its standard error. */
  stderrTail(): string;
  /** Exit code (or signal name) once it has exited. */
  exited(): number | string | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  stop(graceMs?: number): Promise<number | string>;
}

/** How to start one. */
export interface StartOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** Where standard output goes (the milter's log lines); discarded when undefined. */
  readonly stdoutFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Milter address to wait for. */
  readonly address: string;
  /** Text its standard error prints once it is ready (all its workers listening), if it prints one. */
  readonly readyText?: string;
  /** Bound on start-up, milliseconds. Default 30 s. */
  readonly timeoutMs?: number;
}

const TAIL_BYTES = 8192;

/** Resolves once a connection to `address` succeeds (and closes it at once). */
function probe(address: string): Promise<boolean> {
  const target = parseMilterAddress(address);
  return new Promise((resolve) => {
    const socket = target.kind === 'unix' ? connect(target.path) : connect({ host: target.host, port: target.port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts the process and waits until its socket accepts a connection. */
export async function startTarget(options: StartOptions): Promise<TargetProcess> {
  const child: ChildProcess = spawn(options.command, [...options.args], {
    env: options.env ?? process.env,
    stdio: ['ignore', options.stdoutFile === undefined ? 'ignore' : 'pipe', 'pipe'],
  });
  if (options.stdoutFile !== undefined) child.stdout?.pipe(createWriteStream(options.stdoutFile));
  let tail = '';
  let ready = options.readyText === undefined;
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    if (!ready && tail.includes(options.readyText as string)) ready = true;
  });
  let status: number | string | undefined;
  const exit = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      status = code ?? signal ?? 'unknown';
      resolve(status);
    });
    child.once('error', (error) => {
      tail += `\n${error.message}`;
      status = 'spawn-failed';
      resolve(status);
    });
  });
  const handle: TargetProcess = {
    pid: child.pid ?? -1,
    stderrTail: () => tail,
    exited: () => status,
    stop: async (graceMs = 45_000) => {
      if (status !== undefined) return status;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
  };
  const deadline = performance.now() + (options.timeoutMs ?? 30_000);
  while (!ready || !(await probe(options.address))) {
    if (status !== undefined || performance.now() > deadline) {
      await handle.stop(1000);
      throw new Error(`${options.command} did not start (${status ?? 'timeout'}):\n${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return handle;
}
