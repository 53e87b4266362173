/**
 * Unique per-instance directories for real daemons under test. They live under /var because Postfix only
 * writes its `maillog_file` below a `maillog_file_prefixes` entry (`/var` by default), and they are
 * world-traversable because Postfix daemons run as user `postfix` and must reach their data directory.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Parent of every instance directory. */
export const INSTANCE_BASE = '/var/lib/muse-test';

/** Creates `/var/lib/muse-test/<prefix>-XXXXXX` (mode 0755) and returns its path. */
export function makeInstanceDir(prefix: string): string {
  mkdirSync(INSTANCE_BASE, { recursive: true, mode: 0o755 });
  chmodSync(INSTANCE_BASE, 0o755);
  const dir = mkdtempSync(join(INSTANCE_BASE, `${prefix}-`));
  chmodSync(dir, 0o755);
  return dir;
}

/** Removes an instance directory and everything in it; a missing one is fine. */
export function removeInstanceDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
