/**
 * Runs the real GnuPG in a private, offline home directory for interoperability tests: a temporary
 * GNUPGHOME whose gpg.conf forbids any key lookup over the network, gpg invoked in batch mode with
 * machine-readable status lines on fd 3, and cleanup that stops the home's gpg-agent.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The outcome of one gpg run. */
export interface GpgResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** Status lines (`--status-fd`) without the `[GNUPG:] ` prefix, e.g. `GOODSIG 0123… Name`. */
  readonly status: string[];
}

/** A temporary GnuPG home. */
export interface GpgHome {
  readonly dir: string;
  /** Runs `gpg` with `args` (batch mode and status output are added), feeding `input` on stdin. */
  run(args: readonly string[], input?: Uint8Array | string): Promise<GpgResult>;
  /** Imports keys (armored or binary); rejects when gpg fails. */
  importKeys(keys: Uint8Array | string): Promise<void>;
  /** Stops the home's daemons and deletes it. */
  dispose(): Promise<void>;
}

/** Offline configuration: without it a missing key would send gpg to WKD or a keyserver. */
const GPG_CONF = ['auto-key-locate clear,local', 'no-auto-key-retrieve', 'trust-model always', ''].join('\n');
/** Upper bound for one gpg process; generous for a loaded CI machine. */
const RUN_TIMEOUT_MS = 60_000;

/** Creates a fresh home. */
export async function createGpgHome(): Promise<GpgHome> {
  const dir = await mkdtemp(join(tmpdir(), 'muse-gpg-'));
  await writeFile(join(dir, 'gpg.conf'), GPG_CONF, { mode: 0o600 });
  const run = (args: readonly string[], input?: Uint8Array | string): Promise<GpgResult> =>
    runProcess('gpg', ['--homedir', dir, '--batch', '--no-tty', '--status-fd', '3', ...args], dir, input);
  return {
    dir,
    run,
    async importKeys(keys) {
      const result = await run(['--import'], keys);
      if (result.code !== 0) throw new Error(`gpg --import failed (${result.code}): ${result.stderr}`);
    },
    async dispose() {
      try {
        await runProcess('gpgconf', ['--homedir', dir, '--kill', 'all'], dir);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

function runProcess(command: string, args: readonly string[], home: string, input?: Uint8Array | string): Promise<GpgResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, GNUPGHOME: home, LC_ALL: 'C' },
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const status: Buffer[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not finish within ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    (child.stdio[3] as NodeJS.ReadableStream | null)?.on('data', (chunk: Buffer) => status.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = Buffer.concat(status).toString('utf8').split('\n');
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8'),
        status: lines.filter((l) => l.startsWith('[GNUPG:] ')).map((l) => l.slice('[GNUPG:] '.length)),
      });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input === undefined ? undefined : input);
  });
}
