/**
 * Key files on disk: where a site's files live in a key directory, writing them (the private key mode 0600, never
 * wider), and reading a key file of either encoding with a size bound.
 */
import { constants } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readKey, type Key } from 'openpgp';
import { normaliseDomain } from './domain.ts';
import { KeyError } from './errors.ts';

/** Largest key file read; a site key file is a few KiB. */
const MAX_KEY_FILE_BYTES = 1_048_576;

/** Mode of the private key file: owner read/write only. */
export const PRIVATE_KEY_MODE = 0o600;

/** The files of one site in a key directory. */
export interface SiteKeyPaths {
  /** `<domain>.private.asc`: the armored private key, mode 0600. */
  readonly privateKey: string;
  /** `<domain>.public.asc`: the armored public key. */
  readonly publicKey: string;
  /** `<domain>.zone`: the DNS records to publish. */
  readonly zone: string;
}

/**
 * The files of `domain` in `dir`. A `tag` (a rotation's new key ID) names a further key of the site, whose files
 * sit next to the current ones: `<domain>.<tag>.private.asc` and so on.
 */
export function siteKeyPaths(dir: string, domain: string, tag?: string): SiteKeyPaths {
  const stem = tag === undefined ? normaliseDomain(domain) : `${normaliseDomain(domain)}.${tag}`;
  return {
    privateKey: join(dir, `${stem}.private.asc`),
    publicKey: join(dir, `${stem}.public.asc`),
    zone: join(dir, `${stem}.zone`),
  };
}

/** What {@link writeSiteKeyFiles} writes. */
export interface SiteKeyFileContents {
  readonly privateArmored: string;
  readonly publicArmored: string;
  readonly zone: string;
}

/**
 * Writes a site's files into `dir` (created mode 0700 when missing), named with `tag` when given. The private key is created with mode 0600
 * and set to it even when an existing file is overwritten; every file is flushed to disk before returning.
 * @throws KeyError `KEY_FILE_EXISTS` when a file exists and `overwrite` is false (nothing is written then)
 */
export async function writeSiteKeyFiles(
  dir: string,
  domain: string,
  contents: SiteKeyFileContents,
  overwrite: boolean,
  tag?: string,
): Promise<SiteKeyPaths> {
  const paths = siteKeyPaths(dir, domain, tag);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!overwrite) {
    for (const path of Object.values(paths)) {
      const exists = await stat(path).then(
        () => true,
        () => false,
      );
      if (exists) throw new KeyError('KEY_FILE_EXISTS', `${path} exists; refusing to overwrite it`);
    }
  }
  await writeFileSynced(paths.privateKey, contents.privateArmored, PRIVATE_KEY_MODE, overwrite);
  await writeFileSynced(paths.publicKey, contents.publicArmored, 0o644, overwrite);
  await writeFileSynced(paths.zone, contents.zone, 0o644, overwrite);
  return paths;
}

async function writeFileSynced(path: string, text: string, mode: number, overwrite: boolean): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | (overwrite ? constants.O_TRUNC : constants.O_EXCL);
  const handle = await open(path, flags, mode).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EEXIST') throw new KeyError('KEY_FILE_EXISTS', `${path} exists; refusing to overwrite it`);
    throw error;
  });
  try {
    // The mode given to open() applies only to a new file, and the umask may narrow it: set it exactly.
    await handle.chmod(mode);
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A key file's key and the file's permission bits. */
export interface KeyFile {
  readonly key: Key;
  /** `stat` mode bits (permissions only). */
  readonly mode: number;
}

/**
 * Reads one OpenPGP key (public or private, armored or binary) from a file.
 * @throws KeyError `KEY_FILE_UNREADABLE` (missing, not a regular file, too large), `KEY_MALFORMED`
 */
export async function readKeyFile(path: string): Promise<KeyFile> {
  let bytes: Buffer;
  let mode: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new KeyError('KEY_FILE_UNREADABLE', `${path} is not a regular file`);
    if (info.size > MAX_KEY_FILE_BYTES) throw new KeyError('KEY_FILE_UNREADABLE', `${path} is larger than ${MAX_KEY_FILE_BYTES} bytes`);
    mode = info.mode & 0o7777;
    const handle = await open(path, 'r');
    try {
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof KeyError) throw error;
    throw new KeyError('KEY_FILE_UNREADABLE', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const text = bytes.toString('latin1');
  try {
    const key = text.includes('-----BEGIN PGP ') ? await readKey({ armoredKey: text }) : await readKey({ binaryKey: bytes });
    return { key, mode };
  } catch (error) {
    throw new KeyError('KEY_MALFORMED', `${path} does not hold an OpenPGP key`, { cause: error });
  }
}
