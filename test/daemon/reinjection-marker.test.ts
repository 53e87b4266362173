import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMarker, MARKER_LIFETIME_SECONDS, verifyMarker } from '../../src/daemon/reinjection-marker.ts';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const fields = { queueId: '4F2A1', group: 'clear', recipients: ['carol@c.test', 'Dave@d.test'], time: 1_800_000_000 };

test('a marker verifies for the same recipients in any order and case', () => {
  const value = createMarker(secret, fields);
  assert.match(value, /^ v=1; id=4F2A1; g=clear; t=1800000000; mac=[A-Za-z0-9_-]{43}$/);
  const check = verifyMarker(secret, value, ['dave@d.test', 'carol@c.test'], fields.time + 60);
  assert.deepEqual(check, { valid: true, fields: { ...fields, recipients: ['dave@d.test', 'carol@c.test'] } });
});

test('forged, altered, stale and malformed markers are refused with a reason', () => {
  const value = createMarker(secret, fields);
  assert.deepEqual(verifyMarker(Buffer.from('another secret of 32 bytes......'), value, fields.recipients, fields.time), {
    valid: false,
    reason: 'marker does not verify',
  });
  assert.deepEqual(verifyMarker(secret, value, [...fields.recipients, 'eve@e.test'], fields.time), { valid: false, reason: 'marker does not verify' });
  assert.deepEqual(verifyMarker(secret, value.replace('g=clear', 'g=encrypted'), fields.recipients, fields.time), {
    valid: false,
    reason: 'marker does not verify',
  });
  assert.deepEqual(verifyMarker(secret, value, fields.recipients, fields.time + MARKER_LIFETIME_SECONDS + 1), { valid: false, reason: 'marker expired' });
  assert.deepEqual(verifyMarker(secret, ' v=1; id=x', fields.recipients, fields.time), { valid: false, reason: 'malformed marker' });
});
