/**
 * Attack: an encrypted message (no key needed but ours, which is public) whose inner header has thousands of
 * fields, each a distinct Content-* or user-facing name, so that building the delivered header, if it looked
 * through the whole header once per name, took time quadratic in the field count (8,000 fields held the daemon
 * about 13 s). The bound: header edits are linear in the fields, and a header with more fields than
 * limits.maxHeaderFields (default 1000), inside or outside, is a limit-exceeded result without further work.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyHeaderEdits, syncGroupEdits, type HeaderEdit } from '../../src/engine/header-edits.ts';
import { contentFieldEdits, signedHeaderEdits, unverifiedFieldAdditions } from '../../src/engine/delivered-header.ts';
import { forgedFieldDeletions } from '../../src/engine/authentication-results.ts';
import { distinctContentFields, entityOf as entity, headerFloodEntity } from '../support/hostile-messages.ts';
import { encryptedToUs, openAsReceiver, OUTER } from './support/hostile-mail.ts';

const FIELDS = 8000;

test('8,000 inner fields are refused by the field limit before any edit is computed', async () => {
  const message = await encryptedToUs(headerFloodEntity(FIELDS));
  const started = performance.now();
  const result = await openAsReceiver(message);
  const elapsed = performance.now() - started;
  assert.deepEqual(result, { kind: 'limit-exceeded', limit: 'header-fields', max: 1000 });
  // It took 13 s; decrypting and parsing 8,000 lines is milliseconds. Generous, so never flaky.
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
});

test('the inner header byte limit holds too', async () => {
  const message = await encryptedToUs(entity([{ name: 'Subject', value: ' ' + 'x'.repeat(3000) }]));
  assert.deepEqual(await openAsReceiver(message, { limits: { maxHeaderBytes: 2048 } }), { kind: 'limit-exceeded', limit: 'header-bytes', max: 2048 });
});

test('the outer header field limit holds for inbound mail', async () => {
  const message = await encryptedToUs(entity([{ name: 'From', value: ' a@attacker.test' }]));
  const headers = [...distinctContentFields(1001), ...OUTER];
  assert.deepEqual(await openAsReceiver({ headers, body: message.body }), { kind: 'limit-exceeded', limit: 'header-fields', max: 1000 });
  assert.deepEqual(await openAsReceiver({ headers: headers.slice(1), body: message.body }, { limits: { maxHeaderFields: 1004 } }), {
    kind: 'limit-exceeded',
    limit: 'header-fields',
    max: 1004,
  });
});

test('at a raised field limit, 8,000 inner fields are opened in linear time with exact edits', async () => {
  const inner = [{ name: 'Content-Type', value: ' text/plain' }, ...distinctContentFields(FIELDS), ...Array.from({ length: 100 }, () => ({ name: 'To', value: ' x@receiver.test' }))];
  const message = await encryptedToUs(entity(inner));
  const started = performance.now();
  const result = await openAsReceiver(message, { limits: { maxHeaderFields: 10_000 } });
  const elapsed = performance.now() - started;
  assert.ok(result.kind === 'opened', JSON.stringify(result).slice(0, 200));
  assert.equal(result.verdict.reason, 'unsigned');
  const delivered = applyHeaderEdits(message.headers, result.headerEdits);
  // The outer Content-Type replaced, every inner Content-* field added, the 100 To fields as unverified ones.
  assert.equal(delivered.length, 1 + OUTER.length + FIELDS + 100);
  assert.deepEqual(delivered.find((f) => f.name === 'Content-Type'), { name: 'Content-Type', value: ' text/plain' });
  assert.equal(delivered.filter((f) => f.name === 'Muse-Unverified-To').length, 100);
  assert.deepEqual(delivered.at(-101), { name: 'Content-X7999', value: ' v7999' });
  assert.deepEqual(delivered.at(-1), { name: 'Muse-Unverified-To', value: ' x@receiver.test' });
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
});

test('header edit helpers stay linear: 50,000 fields of distinct names in well under a second each', () => {
  const many = distinctContentFields(50_000);
  const manyUnverified = Array.from({ length: 50_000 }, (_, i) => ({ name: `Muse-Unverified-X${i}`, value: ' forged' }));
  const timed = <T>(what: string, run: () => T): T => {
    const started = performance.now();
    const out = run();
    const elapsed = performance.now() - started;
    // Quadratic, each of these is 2.5 billion name comparisons (minutes); linear, tens of milliseconds.
    assert.ok(elapsed < 1000, `${what} took ${elapsed} ms`);
    return out;
  };
  const content = timed('contentFieldEdits', () => contentFieldEdits(OUTER, many));
  assert.equal(content.length, 50_001);
  // Names in the order the inner header has them, then those only outside (the outer Content-Type goes).
  assert.deepEqual(content[0], { op: 'add', name: 'Content-X0', value: ' v0' });
  assert.deepEqual(content.at(-1), { op: 'change', name: 'Content-Type', index: 1, value: '' });
  const signed = timed('signedHeaderEdits', () => signedHeaderEdits(many, Array.from({ length: 50_000 }, (_, i) => ({ name: 'Cc', value: ` c${i}` }))));
  assert.equal(signed.length, 50_000);
  assert.equal(timed('unverifiedFieldAdditions', () => unverifiedFieldAdditions(many)).length, 0);
  const forged = timed('forgedFieldDeletions', () => forgedFieldDeletions(manyUnverified, 'mx.receiver.test'));
  assert.equal(forged.length, 50_000);
  assert.deepEqual(forged[0], { op: 'change', name: 'Muse-Unverified-X0', index: 1, value: '' });
  const applied = timed('applyHeaderEdits (deletions)', () => applyHeaderEdits(manyUnverified, forged));
  assert.deepEqual(applied, []);
  // Many fields of one name, deleted from the highest index down (as syncGroupEdits emits them), then changed.
  const same = Array.from({ length: 50_000 }, (_, i) => ({ name: 'Received', value: ` r${i}` }));
  const edits: HeaderEdit[] = [...syncGroupEdits(same, 'Received', [' kept']), { op: 'insert', index: 0, name: 'X-Top', value: ' t' }];
  assert.deepEqual(
    timed('applyHeaderEdits (one name)', () => applyHeaderEdits(same, edits)),
    [
      { name: 'X-Top', value: ' t' },
      { name: 'Received', value: ' kept' },
    ],
  );
});
