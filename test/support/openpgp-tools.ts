/**
 * Runs Sequoia `sq` and `rnp` offline for interoperability tests: keys and messages go through
 * files in a temporary directory (rnp gets its own keyring home there); neither tool looks keys up
 * anywhere when given them as files. A tool that cannot start rejects, so its test fails.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The outcome of one tool run. */
export interface ToolResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Upper bound for one process; generous for a loaded CI machine. */
const RUN_TIMEOUT_MS = 60_000;

/** Runs `command` with `args` in `cwd`, with no input. */
export function runTool(command: string, args: readonly string[], cwd: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', HOME: cwd } });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not finish within ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') });
    });
  });
}

/** A scratch directory for one test file's keys and messages. */
export interface ToolDir {
  readonly dir: string;
  /** Writes `data` to `name` in the directory and returns its path. */
  file(name: string, data: Uint8Array | string): Promise<string>;
  dispose(): Promise<void>;
}

/** Creates a scratch directory. */
export async function createToolDir(): Promise<ToolDir> {
  const dir = await mkdtemp(join(tmpdir(), 'muse-pgp-tools-'));
  return {
    dir,
    async file(name, data) {
      const path = join(dir, name);
      await writeFile(path, data, { mode: 0o600 });
      return path;
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/** `sq decrypt` of `message` with the secret key file `recipientKey`, checking signatures by the certificate file `signerCert`. */
export function sqDecrypt(dir: ToolDir, message: string, recipientKey: string, signerCert: string, dump = false): Promise<ToolResult> {
  return runTool('sq', ['decrypt', '--recipient-key', recipientKey, '--signer-cert', signerCert, ...(dump ? ['--dump'] : []), message], dir.dir);
}

/** An rnp keyring home inside `dir` holding the given key files; runs `rnp --decrypt`. */
export interface RnpHome {
  decrypt(message: string): Promise<ToolResult>;
}

/** Makes an rnp home named `name` and imports `keyFiles` (secret or public) into it. */
export async function createRnpHome(dir: ToolDir, name: string, keyFiles: readonly string[]): Promise<RnpHome> {
  const home = join(dir.dir, name);
  await mkdir(home, { mode: 0o700 });
  for (const key of keyFiles) {
    const result = await runTool('rnpkeys', ['--homedir', home, '--import', key], dir.dir);
    if (result.code !== 0) throw new Error(`rnpkeys --import failed (${result.code}): ${result.stderr}`);
  }
  return { decrypt: (message) => runTool('rnp', ['--homedir', home, '--decrypt', message, '--output=-'], dir.dir) };
}
