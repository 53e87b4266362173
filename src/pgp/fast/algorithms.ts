/**
 * The algorithms the native path implements, with the node:crypto names behind each OpenPGP
 * number. Anything not listed here is left to openpgp.js.
 */
import { enums } from 'openpgp';

/** A hash the native path signs with or derives keys with (RFC 4880 §9.4). */
export interface HashAlgorithm {
  readonly id: enums.hash;
  /** The node:crypto digest name. */
  readonly node: string;
  /** Salt length of openpgp.js's salt notation for this hash (its `saltLengthForHash`). */
  readonly saltBytes: number;
}

/** A symmetric cipher the native path encrypts with (RFC 4880 §9.2): AES only. */
export interface SymmetricAlgorithm {
  readonly id: enums.symmetric;
  readonly keyBytes: number;
  /** node:crypto name of the full-block CFB mode (SEIPD v1 uses CFB without resynchronisation). */
  readonly cfb: string;
  /** node:crypto name of the RFC 3394 key wrap with this key size (RFC 6637 §8). */
  readonly wrap: string;
}

/** AES block size; SEIPD v1 puts one block of random prefix plus two check bytes in front. */
export const AES_BLOCK_BYTES = 16;

const HASHES: readonly HashAlgorithm[] = [
  { id: enums.hash.sha256, node: 'sha256', saltBytes: 16 },
  { id: enums.hash.sha384, node: 'sha384', saltBytes: 24 },
  { id: enums.hash.sha512, node: 'sha512', saltBytes: 32 },
];

const SYMMETRIC: readonly SymmetricAlgorithm[] = [
  { id: enums.symmetric.aes128, keyBytes: 16, cfb: 'aes-128-cfb', wrap: 'id-aes128-wrap' },
  { id: enums.symmetric.aes192, keyBytes: 24, cfb: 'aes-192-cfb', wrap: 'id-aes192-wrap' },
  { id: enums.symmetric.aes256, keyBytes: 32, cfb: 'aes-256-cfb', wrap: 'id-aes256-wrap' },
];

/** The hash with OpenPGP number `id`, or null when the native path does not implement it. */
export function hashAlgorithm(id: number): HashAlgorithm | null {
  return HASHES.find((h) => h.id === id) ?? null;
}

/** The cipher with OpenPGP number `id`, or null when the native path does not implement it. */
export function symmetricAlgorithm(id: number): SymmetricAlgorithm | null {
  return SYMMETRIC.find((s) => s.id === id) ?? null;
}

/** The cipher openpgp.js names `name` in a `SessionKey`, or null. */
export function symmetricByName(name: string): SymmetricAlgorithm | null {
  const id = (enums.symmetric as Record<string, number | string>)[name];
  return typeof id === 'number' ? symmetricAlgorithm(id) : null;
}
