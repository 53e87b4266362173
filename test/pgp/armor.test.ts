import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { armor as libraryArmor, enums } from 'openpgp';
import { armorBytes, armorChunks, dearmor } from '../../src/pgp/armor.ts';
import { PgpError } from '../../src/pgp/errors.ts';

async function armorOf(chunks: Uint8Array[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of armorChunks('MESSAGE', (async function* () { yield* chunks; })())) out.push(piece);
  return Buffer.concat(out);
}

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
