/**
 * A full disk, as the process sees it: RLIMIT_FSIZE lowered for the test process itself (prlimit), so a write
 * past `bytes` in any file fails with EFBIG (Node ignores SIGXFSZ). Only the file's own test process is limited,
 * and the limit is lifted again when `run` ends, however it ends.
 */
import { execFileSync } from 'node:child_process';

/** Runs `run` with every file of this process limited to `bytes`. */
export async function withFileSizeLimit<T>(bytes: number, run: () => Promise<T>): Promise<T> {
  const set = (limit: string): void => {
    execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${limit}`], { stdio: 'pipe' });
  };
  set(`${bytes}:unlimited`);
  try {
    return await run();
  } finally {
    set('unlimited:unlimited');
  }
}
