/**
 * Replacing a small state file so that a crash leaves either the old or the new content, never a torn file, and
 * the new content survives a power loss once the promise resolves: write a temporary file in the same directory
 * (mode 0600), fsync it, rename it over the target, fsync the directory.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Suffix of the temporary files {@link replaceFileAtomically} writes; a sweep may remove leftovers by it. */
export const TEMPORARY_SUFFIX = '.tmp';

/**
 * Replaces `path` with `text`, atomically and durably, mode 0600.
 * @param mtime when given, the file's modification time (some stores keep an expiry there)
 * @throws the file system's error; the temporary file is removed first
 */
export async function replaceFileAtomically(path: string, text: string, mtime?: Date): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}${TEMPORARY_SUFFIX}`;
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      if (mtime !== undefined) await handle.utimes(mtime, mtime);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    // The rename is durable only once the directory entry is on disk too.
    const dirHandle = await open(dirname(path), 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
}
