/**
 * The collection pacer (src/stream/collection-pacer.ts): a full collection is asked for once the bytes read
 * reach the threshold (observed as a major GC entry, waited for, not timed), chunks pass through unchanged, and
 * no code sees a global `gc` afterwards. Its effect on memory is measured by test/security/inbound-memory.test.ts
 * and `npm run bench`.
 */
import assert from 'node:assert/strict';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { COLLECT_EVERY_BYTES, countRead, pacedChunks } from '../../src/stream/collection-pacer.ts';

/** Resolves at the next major (mark-compact) collection; the process is kept alive until then (the collection is a task of the event loop). */
function nextMajorCollection(): Promise<void> {
  return new Promise((resolve) => {
    const alive = setInterval(() => undefined, 60_000);
    const observer = new PerformanceObserver((list) => {
      const major = list.getEntries().some((entry) => ((entry as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
      if (!major) return;
      observer.disconnect();
      clearInterval(alive);
      resolve();
    });
    observer.observe({ entryTypes: ['gc'] });
  });
}

test('a full collection follows once the bytes read reach the threshold', { timeout: 30_000 }, async () => {
  const collected = nextMajorCollection();
  countRead(COLLECT_EVERY_BYTES - 1);
  countRead(1);
  await collected;
});

test('chunks pass through as they are, counted', { timeout: 30_000 }, async () => {
  const chunks = [Buffer.from('one'), Buffer.alloc(COLLECT_EVERY_BYTES), Buffer.from('three')];
  const collected = nextMajorCollection();
  const seen: Buffer[] = [];
  for await (const chunk of pacedChunks((async function* () { yield* chunks; })())) seen.push(chunk);
  assert.equal(seen.length, 3);
  for (const [i, chunk] of seen.entries()) assert.equal(chunk, chunks[i], 'the same buffer, not a copy');
  await collected;
});

test('no global gc is left behind, here or in new contexts', () => {
  countRead(COLLECT_EVERY_BYTES);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  assert.equal(runInNewContext('typeof gc'), 'undefined');
});
