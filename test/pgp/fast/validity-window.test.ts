import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKey } from 'openpgp';
import { normalizeTime, validityWindow } from '../../../src/pgp/fast/validity-window.ts';
import { testKeys } from '../../engine/fixtures.ts';

test('a key without expiry is stable from its last creation time on', async () => {
  const keys = await testKeys();
  assert.deepEqual(validityWindow(keys.senderSite.public), { from: Date.parse('2025-01-01T00:00:00Z'), until: Infinity });
});

test('an expiring key is stable only until it expires, counted from its earliest creation time', async () => {
  const created = new Date('2025-03-01T00:00:00Z');
  const userIDs = [{ email: 'a@b.test' }];
  const { publicKey } = await generateKey({ type: 'ecc', userIDs, date: created, keyExpirationTime: 3600, format: 'object' });
  assert.deepEqual(validityWindow(publicKey), { from: created.getTime(), until: created.getTime() + 3600_000 });
});

test('times are compared in whole seconds, as openpgp.js does', () => {
  assert.equal(normalizeTime(new Date('2025-01-01T00:00:00.999Z')), Date.parse('2025-01-01T00:00:00Z'));
});
