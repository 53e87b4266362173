/**
 * The pid file (`pidFile`), for init scripts and supervisors that signal the daemon by pid (SIGHUP to reload,
 * SIGTERM to stop) without systemd.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';

/** Writes this process's pid and a newline, replacing what a previous run left (mode 0644: anyone may read a pid). */
export async function writePidFile(path: string): Promise<void> {
  await writeFile(path, `${process.pid}\n`, { mode: 0o644 });
}

/**
 * Removes the pid file if it still names this process. Best effort: after the switch to an unprivileged account
 * the directory (often /run) may not allow it, and a stale pid file is harmless next to a failed stop.
 */
export async function removePidFile(path: string): Promise<void> {
  const text = await readFile(path, 'utf8').catch(() => '');
  if (text.trim() !== String(process.pid)) return;
  await rm(path, { force: true }).catch(() => undefined);
}
