/**
 * Runs OpenDKIM's miltertest (a Lua-scripted fake MTA) against a milter. Note: a Lua `error()` text is not
 * printed and the run just exits 1, so scripts should wrap checks in `pcall` and `mt.echo` the reason.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandResult } from './processes.ts';

const MILTERTEST = '/usr/bin/miltertest';

/** Options of {@link runMiltertest}: give exactly one of `scriptPath` and `source`. */
export type MiltertestOptions = (
  | { readonly scriptPath: string; readonly source?: undefined }
  | { readonly source: string; readonly scriptPath?: undefined }
) & {
  /** Lua globals, passed as `-D name=value` (values arrive in Lua as strings). */
  readonly defines?: Readonly<Record<string, string | number>>;
  /** Bound on the run; the process is killed and `TIMEOUT` thrown after it (default 30 s). */
  readonly timeoutMs?: number;
};

/**
 * Runs `miltertest -s SCRIPT -D name=value ...` and returns its exit code and output (exit 0: the script
 * ran to the end; 1: it failed). A `source` is written to a temporary file that is removed afterwards.
 */
export async function runMiltertest(options: MiltertestOptions): Promise<CommandResult> {
  let tempDir: string | undefined;
  try {
    let script: string;
    if (options.source !== undefined) {
      tempDir = mkdtempSync(join(tmpdir(), 'miltertest-'));
      script = join(tempDir, 'script.lua');
      writeFileSync(script, options.source);
    } else {
      script = options.scriptPath;
    }
    const args = ['-s', script];
    for (const [name, value] of Object.entries(options.defines ?? {})) args.push('-D', `${name}=${value}`);
    return await runCommand(MILTERTEST, args, { timeoutMs: options.timeoutMs ?? 30_000 });
  } finally {
    if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
  }
}
