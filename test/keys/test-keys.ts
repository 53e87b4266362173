/**
 * Test-only OpenPGP keys, generated at run time (nothing secret is stored in the tree) and memoised per process so
 * a test file pays for each kind once.
 */
import { generateKey, revokeKey, type PrivateKey, type PublicKey } from 'openpgp';

/** A generated key pair and the binary public key. */
export interface TestKey {
  readonly privateKey: PrivateKey;
  readonly publicKey: PublicKey;
  readonly bytes: Uint8Array;
  readonly fingerprint: string;
}

const DAY = 86_400_000;
const memo = new Map<string, Promise<TestKey>>();

function remember(name: string, make: () => Promise<PrivateKey>): Promise<TestKey> {
  let key = memo.get(name);
  if (!key) {
    key = make().then((privateKey) => {
      const publicKey = privateKey.toPublic();
      return { privateKey, publicKey, bytes: publicKey.write(), fingerprint: publicKey.getFingerprint().toUpperCase() };
    });
    memo.set(name, key);
  }
  return key;
}

async function generate(options: Omit<Parameters<typeof generateKey>[0], 'format'>): Promise<PrivateKey> {
  const { privateKey } = await generateKey({ ...options, format: 'object' });
  return privateKey;
}

const userIDs = [{ name: 'Test site key', email: 'postmaster@example.test' }];

/** A usable site key like `genkey` makes (Ed25519 + Curve25519, v4); `n` gives distinct keys, created `n` minutes apart. */
export function eccKey(n = 0): Promise<TestKey> {
  return remember(`ecc${n}`, () => generate({ type: 'ecc', userIDs, date: new Date(Date.now() - DAY + n * 60_000) }));
}

/** An RSA key of `bits` bits (1024 is below the floor). */
export function rsaKey(bits: 1024 | 2048): Promise<TestKey> {
  return remember(`rsa${bits}`, () => generate({ type: 'rsa', rsaBits: bits, userIDs, config: { minRSABits: 1024 } }));
}

/** A NIST P-256 key: not what we generate, but usable by both sides. */
export function p256Key(): Promise<TestKey> {
  return remember('p256', () => generate({ type: 'ecc', curve: 'nistP256', userIDs }));
}

/** A v4 key with the RFC 9580 algorithms Ed25519 (27) and X25519 (25), which GnuPG 2.2 cannot use. */
export function rfc9580Key(): Promise<TestKey> {
  return remember('rfc9580', () => generate({ type: 'curve25519', userIDs }));
}

/** An OpenPGP v6 key. */
export function v6Key(): Promise<TestKey> {
  return remember('v6', () => generate({ type: 'curve25519', userIDs, config: { v6Keys: true } }));
}

/** A key that expired a day ago. */
export function expiredKey(): Promise<TestKey> {
  return remember('expired', () => generate({ type: 'ecc', userIDs, date: new Date(Date.now() - 3 * DAY), keyExpirationTime: 86_400 }));
}

/** A key with a revocation signature. */
export function revokedKey(): Promise<TestKey> {
  return remember('revoked', async () => {
    const key = await generate({ type: 'ecc', userIDs });
    const { privateKey } = await revokeKey({ key, format: 'object' });
    return privateKey;
  });
}

/** A key without an encryption subkey. */
export function signOnlyKey(): Promise<TestKey> {
  return remember('sign-only', () => generate({ type: 'ecc', userIDs, subkeys: [] }));
}

/** A key created a day from now. */
export function futureKey(): Promise<TestKey> {
  return remember('future', () => generate({ type: 'ecc', userIDs, date: new Date(Date.now() + DAY) }));
}

/** A passphrase-protected private key, armored. */
export async function protectedPrivateKeyArmored(): Promise<string> {
  const { privateKey } = await generateKey({ type: 'ecc', userIDs, passphrase: 'test only', format: 'armored' });
  return privateKey;
}
