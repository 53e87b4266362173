import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeLength, MAX_BODY_BYTES, mpi, openpgpTime, packetHeader } from '../../../src/pgp/fast/packet-framing.ts';

test('lengths take one, two or five octets at the RFC 4880 §4.2.2 edges', () => {
  const cases: [number, string][] = [
    [0, '00'],
    [191, 'bf'],
    [192, 'c000'],
    [8383, 'dfff'],
    [8384, 'ff000020c0'],
    [1024 * 1024, 'ff00100000'],
    [MAX_BODY_BYTES, 'ffffffffff'],
  ];
  for (const [length, hex] of cases) assert.equal(encodeLength(length).toString('hex'), hex, String(length));
  for (const bad of [-1, 0.5, MAX_BODY_BYTES + 1]) assert.throws(() => encodeLength(bad), RangeError);
});

test('new-format packet headers set bits 7 and 6 over the tag', () => {
  assert.equal(packetHeader(18, 300).toString('hex'), 'd2c06c');
  assert.equal(packetHeader(1, 94).toString('hex'), 'c15e');
});

test('MPIs count bits from the first set bit and drop leading zero octets', () => {
  assert.equal(mpi(Buffer.from('40' + '11'.repeat(32), 'hex')).subarray(0, 3).toString('hex'), '010740');
  assert.equal(mpi(Buffer.from('0001ff', 'hex')).toString('hex'), '000901ff');
  assert.equal(mpi(Buffer.from('80', 'hex')).toString('hex'), '000880');
  assert.equal(mpi(Buffer.from('0000', 'hex')).toString('hex'), '0000');
});

test('times are whole seconds since 1970 that fit four octets, or null', () => {
  assert.equal(openpgpTime(new Date('2025-06-02T12:00:00.999Z')), 1748865600);
  assert.equal(openpgpTime(new Date(0)), 0);
  assert.equal(openpgpTime(new Date(0xffffffff * 1000)), 0xffffffff);
  assert.equal(openpgpTime(new Date(0x100000000 * 1000)), null);
  assert.equal(openpgpTime(new Date(-1000)), null);
  assert.equal(openpgpTime(new Date(Number.NaN)), null);
});
