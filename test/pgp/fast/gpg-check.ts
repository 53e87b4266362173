/**
 * What the GnuPG interoperability tests of the native paths share: one offline gpg home per
 * recipient key (holding only that secret key and the sender's public key), gpg's status lines,
 * and the check that gpg decrypted and verified a message from the sender site key.
 */
import assert from 'node:assert/strict';
import type { TestKey } from '../../engine/fixtures.ts';
import { FIXED_NOW } from '../../engine/fixtures.ts';
import { createGpgHome, type GpgHome, type GpgResult } from '../../support/gpg.ts';

/** Arguments of a status keyword, or undefined when gpg did not report it. */
export function statusOf(result: GpgResult, keyword: string): string[] | undefined {
  const line = result.status.find((l) => l === keyword || l.startsWith(keyword + ' '));
  return line?.split(' ').slice(1);
}

/** gpg homes by recipient fingerprint; `dispose` removes them all. */
export interface RecipientHomes {
  of(recipient: TestKey): GpgHome;
  dispose(): Promise<void>;
}

/** Makes a home for each of `recipients`, each also knowing `sender`'s public key. */
export async function createRecipientHomes(recipients: readonly TestKey[], sender: TestKey): Promise<RecipientHomes> {
  const homes = new Map<string, GpgHome>();
  const dispose = async (): Promise<void> => {
    for (const home of homes.values()) await home.dispose();
    homes.clear();
  };
  try {
    for (const recipient of recipients) {
      const home = await createGpgHome();
      homes.set(recipient.public.getFingerprint(), home);
      await home.importKeys(recipient.secretArmored);
      await home.importKeys(sender.publicArmored);
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return { of: (recipient) => homes.get(recipient.public.getFingerprint()) ?? assert.fail('no gpg home'), dispose };
}

/**
 * Asserts that gpg decrypted exactly `data` (MDC good, AES-256, no AEAD) and found a good EdDSA
 * SHA-512 binary signature by `sender`, made at FIXED_NOW.
 */
export function assertDecryptedAndVerified(result: GpgResult, data: Buffer, sender: TestKey, where: string): void {
  assert.equal(result.code, 0, `${where}: ${result.stderr}`);
  assert.ok(statusOf(result, 'DECRYPTION_OKAY'), where);
  assert.ok(statusOf(result, 'GOODMDC'), where);
  assert.deepEqual(statusOf(result, 'DECRYPTION_INFO'), ['2', '9', '0'], `${where}: MDC (SHA-1), AES-256, no AEAD`);
  assert.equal(statusOf(result, 'GOODSIG')?.[0], sender.public.getKeyID().toHex().toUpperCase(), where);
  // VALIDSIG <fpr> <date> <timestamp> <expire> <sig version> <reserved> <pk algo> <hash algo> <class> <primary fpr>
  const validsig = statusOf(result, 'VALIDSIG');
  const fingerprint = sender.public.getFingerprint().toUpperCase();
  assert.deepEqual(validsig?.slice(2, 10), [String(FIXED_NOW.getTime() / 1000), '0', '4', '0', '22', '10', '00', fingerprint], where);
  assert.ok(result.stdout.equals(data), `${where}: plaintext differs`);
}
