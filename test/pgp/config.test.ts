import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enums } from 'openpgp';
import { pgpConfig } from '../../src/pgp/config.ts';

test('settings GnuPG 2.2 reads and that never release unauthenticated plaintext', () => {
  const config = pgpConfig();
  assert.equal(config.aeadProtect, false);
  assert.equal(config.v6Keys, false);
  assert.equal(config.allowUnauthenticatedStream, false);
  assert.equal(config.allowUnauthenticatedMessages, false);
  assert.equal(config.preferredCompressionAlgorithm, enums.compression.uncompressed);
  assert.equal(config.nonDeterministicSignaturesViaNotation, true);
});

test('per-call choices', () => {
  assert.equal(pgpConfig({ deterministicSignatures: true }).nonDeterministicSignaturesViaNotation, false);
  assert.equal(pgpConfig({ maxDecompressedBytes: 1234 }).maxDecompressedMessageSize, 1234);
  assert.equal(pgpConfig({ compression: 'zlib' }).preferredCompressionAlgorithm, enums.compression.zlib);
});
