import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { armor as libraryArmor, enums } from 'openpgp';
import { armorBytes, armorChunks, dearmor, dearmorPieces, type ArmorType } from '../../src/pgp/armor.ts';
import { PgpError } from '../../src/pgp/errors.ts';

async function armorOf(chunks: Uint8Array[], type: ArmorType = 'MESSAGE'): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of armorChunks(type, (async function* () { yield* chunks; })())) out.push(piece);
  return Buffer.concat(out);
}

/** CRC-24 of RFC 4880 §6.1 computed bit by bit, with nothing shared with the code under test. */
function bitwiseCrc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const octet of data) {
    crc ^= octet << 16;
    for (let bit = 0; bit < 8; bit++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/**
 * The armor this project has always written, spelled out plainly: BEGIN line, blank line, base64
 * in 64-character lines, `=` and the CRC-24 in base64, END line, every line ending in CRLF.
 */
function referenceArmor(type: ArmorType, data: Uint8Array): Buffer {
  const base64 = Buffer.from(data).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  const crc = bitwiseCrc24(data);
  const checksum = Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64');
  return Buffer.from([`-----BEGIN PGP ${type}-----`, '', ...lines, `=${checksum}`, `-----END PGP ${type}-----`, ''].join('\r\n'), 'latin1');
}

/** `length` octets of noise (a linear congruential sequence), every octet value likely. */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** `data` cut into chunks of `sizes` (cycled). */
function chunked(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length] as number;
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

test('the reference CRC-24 gives the published check value of CRC-24/OPENPGP and the initial value for nothing', () => {
  assert.equal(bitwiseCrc24(Buffer.from('123456789')).toString(16), '21cf02');
  assert.equal(bitwiseCrc24(new Uint8Array(0)).toString(16), 'b704ce');
});

test('armor of every length 0..300 is byte-identical to the reference, whole and in many chunkings', async () => {
  const chunkings = [[1], [2], [3], [7], [47], [48], [49], [1, 47, 2], [95, 1], [300]];
  assert.deepEqual(await armorOf([]), referenceArmor('MESSAGE', new Uint8Array(0)), 'no chunks at all');
  for (let length = 0; length <= 300; length++) {
    const data = noise(length, length + 1);
    const expected = referenceArmor('MESSAGE', data);
    assert.deepEqual(armorBytes('MESSAGE', data), expected, `${length} octets whole`);
    assert.deepEqual(await armorOf([data]), expected, `${length} octets as one chunk`);
    for (const sizes of chunkings) assert.deepEqual(await armorOf(chunked(data, sizes)), expected, `${length} octets in chunks of ${sizes.join(',')}`);
    assert.deepEqual(await armorOf([Buffer.alloc(0), data, Buffer.alloc(0)]), expected, `${length} octets between empty chunks`);
  }
});

test('armor of larger blocks, around the 1024-line encoding batch and beyond, is byte-identical to the reference', async () => {
  const batch = 1024 * 48;
  for (const length of [batch - 1, batch, batch + 1, 2 * batch + 47, 3 * batch + 49, 1024 * 1024 + 5]) {
    const data = noise(length, length);
    const expected = referenceArmor('SIGNATURE', data);
    assert.deepEqual(armorBytes('SIGNATURE', data), expected, `${length} octets whole`);
    for (const sizes of [[65_536], [batch + 1, 7], [1000], [3 * batch + 100]]) {
      assert.deepEqual(await armorOf(chunked(data, sizes), 'SIGNATURE'), expected, `${length} octets in chunks of ${sizes.join(',')}`);
    }
  }
});

test('an input chunk reused by its producer after being armored does not change the armor', async () => {
  const data = noise(1000, 7);
  const buffer = Buffer.alloc(100);
  async function* reusing(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < data.length; at += 30) {
      const size = Math.min(30, data.length - at);
      data.copy(buffer, 0, at, at + size);
      yield buffer.subarray(0, size);
      buffer.fill(0);
    }
  }
  const out: Buffer[] = [];
  for await (const piece of armorChunks('MESSAGE', reusing())) out.push(piece);
  assert.deepEqual(Buffer.concat(out), referenceArmor('MESSAGE', data));
});

test('streamed armor equals whole-buffer armor for any chunking, and decodes back', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 500 }), fc.array(fc.nat(500), { maxLength: 5 }), async (data, cuts) => {
      const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
      const chunks: Uint8Array[] = [];
      let at = 0;
      for (const p of [...points, data.length]) {
        chunks.push(data.subarray(at, p));
        at = p;
      }
      const streamed = await armorOf(chunks);
      assert.deepEqual(streamed, armorBytes('MESSAGE', data));
      assert.deepEqual(new Uint8Array(dearmor('MESSAGE', streamed)), data);
    }),
    { numRuns: 150 },
  );
});

test('lines end in CRLF, are at most 64 characters, and the CRC matches the library', () => {
  const data = new Uint8Array(Array.from({ length: 100 }, (_, i) => i));
  const ours = armorBytes('MESSAGE', data).toString('latin1');
  assert.ok(ours.split('\r\n').every((line) => line.length <= 64 && !line.includes('\n')));
  const theirs = libraryArmor(enums.armor.message, data, undefined, undefined, undefined, true);
  const crc = (text: string) => text.split(/\r?\n/).find((l) => /^=[A-Za-z0-9+/]{4}$/.test(l));
  assert.equal(crc(ours), crc(theirs));
});

test('armor in the style of other implementations is read: LF line ends, headers, no checksum', () => {
  const text = '\n-----BEGIN PGP MESSAGE-----\nComment: made elsewhere\n\nAAEC\n-----END PGP MESSAGE-----\n\n';
  assert.deepEqual([...dearmor('MESSAGE', Buffer.from(text))], [0, 1, 2]);
});

test('malformed armor is refused', () => {
  const valid = armorBytes('MESSAGE', new Uint8Array([1, 2, 3, 4, 5])).toString('latin1');
  const bad = [
    valid.replace('MESSAGE-----\r\n\r\n', 'MESSAGE-----\r\n'),
    valid.replace('-----END PGP MESSAGE-----', ''),
    valid.replace('AQIDBAU=', 'AQIDBAV='),
    valid.replace('AQIDBAU=', 'AQID BAU='),
    valid.replace(/=[A-Za-z0-9+/]{4}\r\n/, '=AAAA\r\n'),
    valid + 'trailing text\r\n',
    valid.replace('MESSAGE', 'SIGNATURE'),
  ];
  for (const text of bad) assert.throws(() => dearmor('MESSAGE', Buffer.from(text)), (e: unknown) => e instanceof PgpError && e.code === 'ARMOR_INVALID', text);
});

test('changing any single character of the armor never decodes to the same bytes', () => {
  const data = new Uint8Array(Array.from({ length: 61 }, (_, i) => (i * 37) & 0xff));
  const armored = armorBytes('MESSAGE', data);
  for (let i = 0; i < armored.length; i++) {
    for (const replacement of [0x41, 0x2b, 0x3d, 0x0a, 0x20]) {
      if (armored[i] === replacement) continue;
      const changed = Buffer.from(armored);
      changed[i] = replacement;
      let decoded: Buffer | null = null;
      try {
        decoded = dearmor('MESSAGE', changed);
      } catch {
        continue;
      }
      // A change in the trailing line break after END is harmless; anything else must differ.
      assert.ok(i >= armored.length - 2 || !decoded.equals(Buffer.from(data)), `position ${i}`);
    }
  }
});

test('a large block is decoded in bounded pieces that join to the data', () => {
  const data = noise(1024 * 1024 + 1, 7);
  const pieces = [...dearmorPieces('MESSAGE', armorBytes('MESSAGE', data))];
  assert.deepEqual(pieces.map((p) => p.length), [196608, 196608, 196608, 196608, 196608, 65537]);
  assert.ok(Buffer.concat(pieces).equals(data));
});

test('pieces come before the verdict: damage after the first piece still throws', () => {
  const armored = armorBytes('MESSAGE', noise(400 * 1024, 3));
  armored[armored.length - 100] = 0x21;
  const seen: number[] = [];
  assert.throws(
    () => {
      for (const piece of dearmorPieces('MESSAGE', armored)) seen.push(piece.length);
    },
    (e: unknown) => e instanceof PgpError && e.code === 'ARMOR_INVALID' && e.message === 'armored message: invalid character in the base64 data',
  );
  assert.deepEqual(seen, [196608, 196608]);
});
