/**
 * Who writes the pin store: the daemon (or its primary process) records its process ID in `pins.pid` next to
 * `pins.json` when it opens the store for writing. Operator tools that change the store (`muse-milter pins
 * forget`) refuse while that process lives: the daemon holds every pin in memory and would write back a pin
 * removed behind its back.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Name of the owner file inside the pin directory. */
export const PIN_OWNER_FILE_NAME = 'pins.pid';

/** Records this process as the writer of the store in `dir` (which must exist). */
export async function claimPinDirectory(dir: string): Promise<void> {
  await writeFile(join(dir, PIN_OWNER_FILE_NAME), `${process.pid}\n`, { mode: 0o644 });
}

/**
 * The process ID of the live process that writes the store in `dir`, or undefined when none does (no owner file,
 * or the process it names has ended).
 */
export async function pinDirectoryOwner(dir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, PIN_OWNER_FILE_NAME), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const pid = /^\s*(\d{1,10})\s*$/.exec(text)?.[1];
  if (pid === undefined) return undefined;
  try {
    process.kill(Number(pid), 0);
    return Number(pid);
  } catch (error) {
    // EPERM: the process lives under another account (the daemon after dropping privileges).
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? Number(pid) : undefined;
  }
}
