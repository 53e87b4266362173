/**
 * The openpgp.js settings every operation runs with. They keep output readable by GnuPG 2.2 and
 * deployed mail clients and keep decryption safe; see docs/pgp-mime.md.
 */
import { config as libraryDefaults, enums, type Config } from 'openpgp';

/** Per-call choices that change the configuration. */
export interface PgpConfigOptions {
  /**
   * Leave out the random salt notation openpgp.js adds to signatures, making EdDSA signatures
   * reproducible (for golden-file tests). Off by default: the salt hardens against fault attacks.
   */
  readonly deterministicSignatures?: boolean;
  /** Upper bound for decompressed data, so a compressed message cannot expand without limit. */
  readonly maxDecompressedBytes?: number;
  /** Compress before encrypting. Default `none`. */
  readonly compression?: Compression;
}

/** Compression of the signed data inside an encrypted message. */
export type Compression = 'none' | 'zlib';

/** A complete openpgp.js configuration for one operation. */
export function pgpConfig(options: PgpConfigOptions = {}): Config {
  return {
    ...libraryDefaults,
    // SEIPDv1 with MDC only: GnuPG 2.2 cannot read SEIPDv2 (AEAD) packets.
    aeadProtect: false,
    v6Keys: false,
    // Plaintext is never released before the integrity check has passed.
    allowUnauthenticatedStream: false,
    allowUnauthenticatedMessages: false,
    // Compression costs 40-70 % for small messages and ~12x at 10 MiB: off unless asked for.
    preferredCompressionAlgorithm: options.compression === 'zlib' ? enums.compression.zlib : enums.compression.uncompressed,
    nonDeterministicSignaturesViaNotation: !(options.deterministicSignatures ?? false),
    maxDecompressedMessageSize: options.maxDecompressedBytes ?? libraryDefaults.maxDecompressedMessageSize,
  };
}
