/** Loading the local site private key, with the file-permission check a private key deserves. */
import type { PrivateKey, PublicKey } from 'openpgp';
import { KeyError } from './errors.ts';
import { readKeyFile } from './key-files.ts';
import { fingerprintOf } from './openpgp-key.ts';

/** What to do with a private key file that group or others may read or write. */
export type PermissionPolicy = 'refuse' | 'warn';

/** The local site key, ready to sign and decrypt. */
export interface LocalSiteKey {
  readonly path: string;
  readonly privateKey: PrivateKey;
  readonly publicKey: PublicKey;
  readonly fingerprint: string;
  /** Problems worth telling the operator that did not stop the load (loose permissions under `warn`). */
  readonly warnings: readonly string[];
}

/**
 * Loads the site's private key from `path` (armored or binary, unprotected).
 * @param permissions `refuse` (the daemon) makes loose permissions an error; `warn` (operator tools) reports them
 * @throws KeyError `KEY_FILE_INSECURE`, `KEY_NOT_PRIVATE`, `KEY_ENCRYPTED`, `KEY_FILE_UNREADABLE`, `KEY_MALFORMED`
 */
export async function loadSitePrivateKey(path: string, permissions: PermissionPolicy): Promise<LocalSiteKey> {
  const { key, mode } = await readKeyFile(path);
  const warnings: string[] = [];
  if (mode & 0o077) {
    const message =
      `private key file ${path} has mode ${mode.toString(8).padStart(4, '0')}: group or others may ` +
      `${mode & 0o022 ? 'write' : 'read'} it; it should be 0600 (chmod 600 ${path})`;
    if (permissions === 'refuse') throw new KeyError('KEY_FILE_INSECURE', message);
    warnings.push(message);
  }
  if (!key.isPrivate()) throw new KeyError('KEY_NOT_PRIVATE', `${path} holds a public key, not the private site key`);
  const privateKey = key as PrivateKey;
  if (!privateKey.isDecrypted()) {
    throw new KeyError('KEY_ENCRYPTED', `${path} is protected by a passphrase; the milter needs it unprotected`);
  }
  return { path, privateKey, publicKey: privateKey.toPublic(), fingerprint: fingerprintOf(privateKey), warnings };
}
