/**
 * Process plumbing for the real-program harness: bounded command runs, daemons in their own process group,
 * bounded waits (ports, conditions), finding an instance's processes in /proc, and a last-resort cleanup at
 * process exit so a crashed test file leaves no daemon behind. Linux only (reads /proc).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { HarnessError } from './errors.ts';

/** How a finished process ended. */
export interface ExitStatus {
  /** Exit code, or null when a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it, or null. */
  readonly signal: NodeJS.Signals | null;
}

/** Outcome of {@link runCommand}: exit status and the whole output, decoded as UTF-8. */
export interface CommandResult extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Bytes written to the program's stdin, which is then closed (empty by default). */
  readonly input?: string | Uint8Array;
  /** Upper bound on the run time; the process group is killed after it (default 30 s). */
  readonly timeoutMs?: number;
  /** Environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory. */
  readonly cwd?: string;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/**
 * `postfix start` leaves a daemon that may still hold the output pipes, so 'close' would never come: after
 * 'exit', output is collected for this long at most.
 */
const PIPE_DRAIN_MS = 300;
/** Daemon output kept for error messages (the tail). */
const DAEMON_OUTPUT_LIMIT = 64 * 1024;
/** Poll interval of bounded waits: short enough that a Postfix relay (~0.4 s) is seen promptly. */
const POLL_INTERVAL_MS = 50;
/** After SIGKILL, how long to wait for the kernel to remove the processes. */
const KILL_WAIT_MS = 2_000;

/** Sends `signal` to a whole process group, ignoring a group that is already gone. */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left in the group.
  }
}

/** Sends `signal` to one process, ignoring one that is already gone. */
function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

/**
 * Runs a program to completion in its own process group, feeding `input` on stdin, and returns its exit
 * status and output. Never rejects because of a non-zero exit; rejects with `TIMEOUT` (after killing the
 * group) when the bound is hit, and with `START_FAILED` when the program cannot be executed.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let status: ExitStatus | undefined;
    let settled = false;
    let drainTimer: NodeJS.Timeout | undefined;
    const text = (chunks: Buffer[]): string => Buffer.concat(chunks).toString('utf8');
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drainTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      if (error !== undefined) reject(error);
      else resolve({ code: status?.code ?? null, signal: status?.signal ?? null, stdout: text(stdout), stderr: text(stderr) });
    };
    const timer = setTimeout(() => {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      finish(
        new HarnessError(
          'TIMEOUT',
          `${file} ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${text(stdout)}\nstderr: ${text(stderr)}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (error) => {
      finish(new HarnessError('START_FAILED', `cannot run ${file}: ${error.message}`, { cause: error }));
    });
    child.on('exit', (code, signal) => {
      status = { code, signal };
      drainTimer = setTimeout(() => finish(), PIPE_DRAIN_MS);
    });
    child.on('close', () => {
      if (status !== undefined) finish();
    });
    // A program that exits without reading its input must not turn into an EPIPE crash here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** `promise`'s value, or undefined if it takes longer than `ms` (the timer never outlives the race). */
async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A long-running program started by {@link startDaemon}, in its own process group. */
export interface DaemonProcess {
  /** Pid of the started program (also its process group id). */
  readonly pid: number;
  /** Settles when the program exits. */
  readonly exited: Promise<ExitStatus>;
  /** Exit status once it exited, else undefined. */
  exitStatus(): ExitStatus | undefined;
  /** The last 64 KiB of its stdout and stderr, interleaved as they came. */
  output(): string;
  /** SIGTERM to the group, wait up to `graceMs` (default 8 s), then SIGKILL; always bounded. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link startDaemon}. */
export interface StartDaemonOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/**
 * Starts a long-running program in a new process group with its output captured, and registers it for
 * the exit-time cleanup. Rejects with `START_FAILED` if it cannot be executed at all.
 */
export async function startDaemon(
  file: string,
  args: readonly string[],
  options: StartDaemonOptions = {},
): Promise<DaemonProcess> {
  const child = spawn(file, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  let output = Buffer.alloc(0);
  const keep = (chunk: Buffer): void => {
    output = Buffer.concat([output, chunk]);
    if (output.length > DAEMON_OUTPUT_LIMIT) output = output.subarray(output.length - DAEMON_OUTPUT_LIMIT);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) =>
      reject(new HarnessError('START_FAILED', `cannot run ${file}: ${error.message}`, { cause: error })),
    );
  });
  const pid = child.pid;
  if (pid === undefined) throw new HarnessError('START_FAILED', `cannot run ${file}: no pid`);
  let status: ExitStatus | undefined;
  const unregister = registerExitCleanup(() => signalGroup(pid, 'SIGKILL'));
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      unregister();
      resolve(status);
    });
  });
  return {
    pid,
    exited,
    exitStatus: () => status,
    output: () => output.toString('utf8'),
    async stop(graceMs = 8_000): Promise<void> {
      if (status !== undefined) return;
      signalGroup(pid, 'SIGTERM');
      if ((await withinMs(exited, graceMs)) !== undefined) return;
      signalGroup(pid, 'SIGKILL');
      await withinMs(exited, KILL_WAIT_MS);
    },
  };
}

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Upper bound on the wait. */
  readonly timeoutMs: number;
  /** What is awaited, for the timeout message ("message 3 in the sink"). */
  readonly what: string;
  /** Poll interval (default 50 ms). */
  readonly intervalMs?: number;
}

/**
 * Polls `probe` until it returns something other than undefined, and returns that. A probe may throw to
 * stop waiting early (for example when the daemon being awaited has exited). Rejects with `TIMEOUT`.
 */
export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  options: WaitForOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      throw new HarnessError('TIMEOUT', `${options.what}: not reached within ${options.timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? POLL_INTERVAL_MS));
  }
}

/** Whether a TCP connection to host:port can be opened now (each try bounded to 1 s). */
function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Options of {@link waitForPort}. */
export interface WaitForPortOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 20 s. */
  readonly timeoutMs?: number;
  /** Called before each try; throw from it to give up early (the program exited). */
  readonly failFast?: () => void;
}

/** Waits until something accepts TCP connections on host:port. Rejects with `TIMEOUT`. */
export async function waitForPort(port: number, options: WaitForPortOptions = {}): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  await waitFor(
    async () => {
      options.failFast?.();
      return (await canConnect(host, port)) ? true : undefined;
    },
    { timeoutMs: options.timeoutMs ?? 20_000, what: `TCP port ${host}:${port} accepting connections` },
  );
}

/** Inodes of the IPv4 TCP sockets listening on `port` (any address), from /proc/net/tcp. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // fields: sl, local_address (ADDR:PORT in hex), rem_address, st (0A = LISTEN), …, inode at index 9.
    if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A' && fields[9] !== undefined) inodes.add(fields[9]);
  }
  return inodes;
}

/**
 * Whether process `pid` holds a socket listening on TCP `port`. Unlike a connect probe, this cannot be
 * fooled by another program that already had the port.
 */
export function ownsListeningPort(pid: number, port: number): boolean {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      return match?.[1] !== undefined && inodes.has(match[1]);
    } catch {
      return false;
    }
  });
}

/** Whether a process exists and is not a zombie (zombies of reparented daemons count as dead). */
export function processAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // The state letter follows the parenthesised command name, which may itself contain ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Pids of all processes except this one for which `predicate` holds (processes that vanish are skipped). */
export function findProcesses(predicate: (pid: number) => boolean): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid !== process.pid && predicate(pid)) pids.push(pid);
  }
  return pids;
}

/** Whether `entry` (`NAME=value`) is in the process's environment; false when it cannot be read. */
export function environmentHas(pid: number, entry: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry);
  } catch {
    return false;
  }
}

/** The mount namespace of a process (`mnt:[4026532177]`), or undefined when it is gone. */
export function mountNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/**
 * SIGTERM to each pid, wait up to `graceMs` for all to die, then SIGKILL the rest and wait up to 2 s more.
 * Bounded; processes stuck in the kernel are left as they are.
 */
export async function terminateProcesses(pids: readonly number[], graceMs: number): Promise<void> {
  const alive = (): number[] => pids.filter(processAlive);
  for (const pid of pids) signalProcess(pid, 'SIGTERM');
  const none = (): true | undefined => (alive().length === 0 ? true : undefined);
  try {
    await waitFor(none, { timeoutMs: graceMs, what: 'processes ending after SIGTERM' });
    return;
  } catch {
    for (const pid of alive()) signalProcess(pid, 'SIGKILL');
  }
  await waitFor(none, { timeoutMs: KILL_WAIT_MS, what: 'processes ending after SIGKILL' }).catch(() => undefined);
}

/** SIGKILL to each pid, without waiting (for exit-time cleanup, which must be synchronous). */
export function killProcessesNow(pids: readonly number[]): void {
  for (const pid of pids) signalProcess(pid, 'SIGKILL');
}

const exitCleanups = new Set<() => void>();
let exitHooksInstalled = false;

function runExitCleanups(): void {
  for (const cleanup of [...exitCleanups].reverse()) {
    try {
      cleanup();
    } catch {
      // Best effort: one failing cleanup must not keep the others from running.
    }
  }
  exitCleanups.clear();
}

/**
 * Registers a synchronous cleanup run if this process exits (normally, or by SIGINT/SIGTERM) while the
 * resource is still up: the last resort when a test file dies before its `after` hooks. Returns the function
 * that unregisters it, to be called once the resource was stopped normally.
 */
export function registerExitCleanup(cleanup: () => void): () => void {
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    process.once('exit', runExitCleanups);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        runExitCleanups();
        // Listening replaced the default action; re-raise so the process still dies of the signal.
        process.kill(process.pid, signal);
      });
    }
  }
  exitCleanups.add(cleanup);
  return () => {
    exitCleanups.delete(cleanup);
  };
}
