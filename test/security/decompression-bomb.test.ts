/**
 * Attack: a compressed payload encrypted to our (public) key that expands hundreds of times: 30 MiB of one byte
 * compresses to about 40 KB, 740 times. Decompression was capped only at the message size limit (64 MiB), so each
 * such message cost that much memory and time. The bound: decompressed data may be limits.maxDecompressionRatio
 * (default 20) times the encrypted message and never more than limits.maxMessageBytes; beyond that the message is
 * a limit-exceeded result, and expansion stops there (observed through the bytes the decompressor hands out).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { dearmor } from '../../src/pgp/armor.ts';
import { readPgpMime } from '../../src/mime/pgp-mime-read.ts';
import { parseContentType } from '../../src/mime/content-fields.ts';
import { bombEntity } from '../support/hostile-messages.ts';
import { encryptedToUs, openAsReceiver, type HostileMessage } from './support/hostile-mail.ts';

const BOMB_BYTES = 30 * 1024 * 1024;
const INNER_HEADER = Buffer.from('Content-Type: text/plain\r\n\r\n');

/** Bytes every decompressor of this process handed out since `reset`. */
const decompressed = { bytes: 0, reset(): void { this.bytes = 0; } };
const NativeDecompressionStream = globalThis.DecompressionStream;

before(() => {
  // openpgp.js decompresses zlib and zip through the platform's DecompressionStream: count what comes out of it.
  class CountingDecompressionStream extends NativeDecompressionStream {
    constructor(format: ConstructorParameters<typeof DecompressionStream>[0]) {
      super(format);
      const counted = super.readable.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            decompressed.bytes += chunk.byteLength;
            controller.enqueue(chunk);
          },
        }),
      );
      Object.defineProperty(this, 'readable', { value: counted });
    }
  }
  globalThis.DecompressionStream = CountingDecompressionStream;
});

after(() => {
  globalThis.DecompressionStream = NativeDecompressionStream;
});

/** Bytes of the dearmored OpenPGP message inside a PGP/MIME body. */
function encryptedBytes(message: HostileMessage): number {
  const type = parseContentType(message.headers.find((f) => f.name === 'Content-Type')?.value ?? '');
  const container = readPgpMime(type, message.body);
  assert.ok(container?.kind === 'encrypted');
  return dearmor('MESSAGE', container.armoredMessage).length;
}

let bomb: HostileMessage;
let zipBomb: HostileMessage;

before(async () => {
  const inner = bombEntity(BOMB_BYTES);
  [bomb, zipBomb] = await Promise.all([encryptedToUs(inner, 'zlib'), encryptedToUs(inner, 'zip')]);
});

test('a 740x zlib bomb is refused at 20 times its size, having expanded no further', async () => {
  const size = encryptedBytes(bomb);
  assert.ok(BOMB_BYTES / size > 700, `expands ${BOMB_BYTES / size} times`);
  decompressed.reset();
  const result = await openAsReceiver(bomb);
  assert.deepEqual(result, { kind: 'limit-exceeded', limit: 'decompressed-bytes', max: size * 20 });
  // Expansion stops at the first chunk past the cap (chunks are at most 64 KiB); 1 MiB of slack is generous.
  assert.ok(decompressed.bytes > 0, 'the decompressor was observed');
  assert.ok(decompressed.bytes <= size * 20 + 1024 * 1024, `${decompressed.bytes} bytes decompressed, cap ${size * 20}`);
});

test('zip (raw deflate) is capped alike', async () => {
  const size = encryptedBytes(zipBomb);
  decompressed.reset();
  assert.deepEqual(await openAsReceiver(zipBomb), { kind: 'limit-exceeded', limit: 'decompressed-bytes', max: size * 20 });
  assert.ok(decompressed.bytes <= size * 20 + 1024 * 1024, `${decompressed.bytes} bytes decompressed`);
});

test('the absolute cap is the message size limit, whatever the ratio', async () => {
  decompressed.reset();
  const limits = { maxDecompressionRatio: 1e6, maxMessageBytes: 4 * 1024 * 1024 };
  assert.deepEqual(await openAsReceiver(bomb, { limits }), { kind: 'limit-exceeded', limit: 'decompressed-bytes', max: 4 * 1024 * 1024 });
  assert.ok(decompressed.bytes <= 5 * 1024 * 1024, `${decompressed.bytes} bytes decompressed`);
});

test('ordinary compressed mail (well under the ratio) still opens, byte for byte', async () => {
  const text = Buffer.from(Array.from({ length: 2000 }, (_, i) => `Line ${i}: the quarterly figures, as discussed.\r\n`).join(''));
  const message = await encryptedToUs(Buffer.concat([INNER_HEADER, text]), 'zlib');
  const ratio = (INNER_HEADER.length + text.length) / encryptedBytes(message);
  assert.ok(ratio > 1 && ratio < 20, `ratio ${ratio}`);
  const result = await openAsReceiver(message);
  assert.ok(result.kind === 'opened', JSON.stringify(result).slice(0, 200));
  assert.deepEqual(await result.body.toBuffer(), text);
});
