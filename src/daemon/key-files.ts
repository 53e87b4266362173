/**
 * The daemon's secret files: the site's private keys (current and previous, named by the configuration) and
 * the marker secret, created on first run. Both are refused when group or others may read or write them, as
 * `src/keys/` refuses a loose private key file; a leaked marker secret would let anyone mark a message as
 * already processed and have it pass in clear.
 *
 * Load them before dropping privileges: they belong to the account that installed them, often root.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KeyError, loadSitePrivateKey, PRIVATE_KEY_MODE, type LocalSiteKey } from '../keys/index.ts';

/** The site's private keys: the one to sign with, and every one inbound mail may be encrypted to. */
export interface SiteKeys {
  /** `site.keyFile`: signs outbound mail and decrypts inbound mail. */
  readonly current: LocalSiteKey;
  /** `site.previousKeyFiles`: still decrypt mail encrypted to a key published before a rotation. */
  readonly previous: readonly LocalSiteKey[];
}

/**
 * Loads the site's private keys, refusing any file group or others may read or write.
 * @throws KeyError `KEY_FILE_INSECURE`, `KEY_FILE_UNREADABLE`, `KEY_NOT_PRIVATE`, `KEY_ENCRYPTED`, `KEY_MALFORMED`
 */
export async function loadSiteKeys(site: { readonly keyFile: string; readonly previousKeyFiles: readonly string[] }): Promise<SiteKeys> {
  const current = await loadSitePrivateKey(site.keyFile, 'refuse');
  const previous: LocalSiteKey[] = [];
  for (const path of site.previousKeyFiles) previous.push(await loadSitePrivateKey(path, 'refuse'));
  return { current, previous };
}

/** Random bytes in a new marker secret: 256 bits, as much as the HMAC-SHA-256 it keys. */
const SECRET_BYTES = 32;

/** Shortest secret accepted from a file an administrator wrote: 32 characters. */
const MIN_SECRET_LENGTH = 32;

/** Longest secret file read; a secret is a line of text. */
const MAX_SECRET_FILE_BYTES = 4096;

/**
 * Reads the marker secret from `path`, creating it first (mode 0600, directory 0700, 64 hex digits) when it does
 * not exist. The secret is the file's text without surrounding white space, so an administrator may write the
 * same secret on two hosts that re-inject for each other.
 * @throws KeyError `KEY_FILE_INSECURE` (group or others may read or write it), `KEY_FILE_UNREADABLE` (not a regular
 *   file, too large, too short, or unreadable)
 */
export async function readOrCreateSecret(path: string): Promise<Buffer> {
  await createSecretIfMissing(path);
  const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new KeyError('KEY_FILE_UNREADABLE', `cannot read ${path}: ${error.code ?? error.message}`, { cause: error });
  });
  try {
    // Check the opened file itself, so it cannot be swapped between the check and the read.
    const info = await handle.stat();
    if (!info.isFile()) throw new KeyError('KEY_FILE_UNREADABLE', `${path} is not a regular file`);
    const mode = info.mode & 0o7777;
    if (mode & 0o077) {
      throw new KeyError(
        'KEY_FILE_INSECURE',
        `secret file ${path} has mode ${mode.toString(8).padStart(4, '0')}: group or others may ${mode & 0o022 ? 'write' : 'read'} it; ` +
          `it should be 0600 (chmod 600 ${path})`,
      );
    }
    if (info.size > MAX_SECRET_FILE_BYTES) throw new KeyError('KEY_FILE_UNREADABLE', `${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    const secret = (await handle.readFile('utf8')).trim();
    if (secret.length < MIN_SECRET_LENGTH) throw new KeyError('KEY_FILE_UNREADABLE', `${path} holds fewer than ${MIN_SECRET_LENGTH} characters`);
    return Buffer.from(secret, 'utf8');
  } finally {
    await handle.close();
  }
}

async function createSecretIfMissing(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // O_EXCL: never overwrite a secret, even one created by a second process in the meantime.
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, PRIVATE_KEY_MODE).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EEXIST') return undefined;
    throw new KeyError('KEY_FILE_UNREADABLE', `cannot create ${path}: ${error.code ?? error.message}`, { cause: error });
  });
  if (handle === undefined) return;
  try {
    // The umask may have narrowed the mode given to open(); it cannot have widened it, but set it exactly.
    await handle.chmod(PRIVATE_KEY_MODE);
    await handle.writeFile(`${randomBytes(SECRET_BYTES).toString('hex')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
