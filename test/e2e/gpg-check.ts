/**
 * Checks what travels between the sites with the real GnuPG, not with the library the milter uses: a private
 * offline keyring (test/support/gpg.ts) holding the receiving site's private key and the sending site's
 * public key, as a receiving site running GnuPG would.
 */
import { createGpgHome, type GpgHome } from '../support/gpg.ts';

/** What gpg said about one message. */
export interface GpgVerdict {
  /** gpg's exit status (0: decrypted, or verified, with a good signature). */
  readonly code: number;
  /** Status lines without the `[GNUPG:] ` prefix. */
  readonly status: readonly string[];
  /** The decrypted bytes (empty for a detached verification). */
  readonly plaintext: Buffer;
  /** Primary-key fingerprint of the VALIDSIG line, or undefined when no signature was valid. */
  readonly signer: string | undefined;
  readonly stderr: string;
}

/** The primary-key fingerprint in a `VALIDSIG` status line (its last field). */
function validSigner(status: readonly string[]): string | undefined {
  const line = status.find((entry) => entry.startsWith('VALIDSIG '));
  return line?.split(' ').at(-1);
}

/** A GnuPG keyring for checking one site's mail. */
export class GpgKeyring {
  private constructor(private readonly home: GpgHome) {}

  /** Creates a home and imports `armoredKeys` (private and public keys, as `genkey` wrote them). */
  static async create(armoredKeys: readonly string[]): Promise<GpgKeyring> {
    const home = await createGpgHome();
    try {
      for (const key of armoredKeys) await home.importKeys(key);
    } catch (error) {
      await home.dispose();
      throw error;
    }
    return new GpgKeyring(home);
  }

  /** `gpg --decrypt` of an armored OpenPGP message (the signature inside is checked too). */
  async decrypt(armored: Uint8Array): Promise<GpgVerdict> {
    const result = await this.home.run(['--decrypt'], armored);
    return { code: result.code, status: result.status, plaintext: result.stdout, signer: validSigner(result.status), stderr: result.stderr };
  }

  /** Stops the home's agent and deletes it. */
  dispose(): Promise<void> {
    return this.home.dispose();
  }
}
