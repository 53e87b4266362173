/**
 * Attack: many connections at once, each ending with a large message encrypted to our (public) key, so that every
 * one of them decrypts (CPU, and plaintext held in memory) at the same time. The bound: decryptions share a set of
 * slots (limits.maxConcurrentDecryptions per process, default 2); beyond it messages wait their turn, in order of
 * arrival, and none is refused. Observed through a counter inside the slots, never through timing.
 *
 * Variant: a stream of large encrypted messages keeping every slot busy, so that ordinary small messages wait behind
 * them for as long as each large one takes. Small and large encrypted data have a queue each (DecryptionQueues):
 * a small message waits only behind small ones.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { DecryptionQueues } from '../../src/engine/decryption-queues.ts';
import { Slots } from '../../src/engine/slots.ts';
import { encryptedToUs, openAsReceiver, type HostileMessage } from './support/hostile-mail.ts';

/** Slots that record how many tasks are inside at once, at the highest, and in which order they entered. */
class ObservedSlots extends Slots {
  inside = 0;
  peak = 0;
  readonly entered: string[] = [];

  runLabelled<T>(label: string, task: () => Promise<T>): Promise<T> {
    return this.run(async () => {
      this.enter(label);
      try {
        return await task();
      } finally {
        this.inside--;
      }
    });
  }

  enter(label: string): void {
    this.inside++;
    this.peak = Math.max(this.peak, this.inside);
    this.entered.push(label);
  }
}

/** Slots whose every task is counted while it holds a slot (the engine's decryptions, here). */
class CountingSlots extends ObservedSlots {
  override run<T>(task: () => Promise<T>): Promise<T> {
    return super.run(async () => {
      this.enter(String(this.entered.length));
      try {
        return await task();
      } finally {
        this.inside--;
      }
    });
  }
}

const MESSAGES = 8;
const PAYLOAD = 2 * 1024 * 1024;
let messages: HostileMessage[];

before(async () => {
  messages = await Promise.all(
    Array.from({ length: MESSAGES }, (_, i) => encryptedToUs(Buffer.concat([Buffer.from(`Content-Type: text/plain\r\nX-N: ${i}\r\n\r\n`), Buffer.alloc(PAYLOAD, 0x61 + i)]))),
  );
});

test('8 large decryptions at once: never more than 2 in flight, all of them opened', async () => {
  const slots = new CountingSlots(2);
  const results = await Promise.all(messages.map((message) => openAsReceiver(message, { decryptionSlots: slots })));
  assert.equal(slots.peak, 2);
  assert.equal(slots.entered.length, MESSAGES);
  assert.equal(slots.inside, 0);
  assert.equal(slots.active, 0);
  assert.equal(slots.queued, 0);
  for (const [i, result] of results.entries()) {
    assert.ok(result.kind === 'opened', JSON.stringify(result).slice(0, 200));
    assert.deepEqual(await result.body.toBuffer(), Buffer.alloc(PAYLOAD, 0x61 + i));
  }
});

test('a limit of 1 serialises them; a limit of 3 is used up to 3', async () => {
  for (const size of [1, 3]) {
    const slots = new CountingSlots(size);
    const results = await Promise.all(messages.map((message) => openAsReceiver(message, { decryptionSlots: slots })));
    assert.equal(slots.peak, size);
    assert.deepEqual(results.map((r) => r.kind), Array(MESSAGES).fill('opened'));
  }
});

test('a small message is opened while large decryptions hold every large slot and more wait', { timeout: 60_000 }, async () => {
  const queues = new DecryptionQueues(1, 1024 * 1024);
  const running = held();
  const waiting = held();
  const large = [queues.large.run(running.task), queues.large.run(waiting.task)];
  assert.deepEqual([queues.large.active, queues.large.queued], [1, 1]);
  const small = await encryptedToUs(Buffer.from('Content-Type: text/plain\r\n\r\nordinary\r\n'));
  const result = await openAsReceiver(small, { decryptionSlots: queues });
  assert.ok(result.kind === 'opened', JSON.stringify(result).slice(0, 200));
  assert.deepEqual(await result.body.toBuffer(), Buffer.from('ordinary\r\n'));
  // The large ones were still there all along: the small one did not wait for them.
  assert.deepEqual([queues.large.active, queues.large.queued, queues.small.active], [1, 1, 0]);
  running.release('a');
  waiting.release('b');
  assert.deepEqual(await Promise.all(large), ['a', 'b']);
  assert.deepEqual([queues.active, queues.queued], [0, 0]);
});

test('a large message waits in the large queue only: it is opened while small decryptions hold every small slot', { timeout: 60_000 }, async () => {
  const queues = new DecryptionQueues(1, 1024 * 1024);
  const running = held();
  const small = queues.small.run(running.task);
  assert.deepEqual([queues.active, queues.queued], [1, 0]);
  const result = await openAsReceiver(messages[0] as HostileMessage, { decryptionSlots: queues });
  assert.ok(result.kind === 'opened', JSON.stringify(result).slice(0, 200));
  assert.deepEqual(await result.body.toBuffer(), Buffer.alloc(PAYLOAD, 0x61));
  assert.deepEqual([queues.small.active, queues.large.active], [1, 0]);
  running.release('done');
  assert.equal(await small, 'done');
  queues.resize(3);
  assert.deepEqual([queues.small.size, queues.large.size], [3, 3]);
});

/** A task that runs until `release` is called. */
function held(): { task: () => Promise<string>; release: (value: string) => void; fail: (error: Error) => void } {
  let release!: (value: string) => void;
  let fail!: (error: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    release = resolve;
    fail = reject;
  });
  return { task: () => done, release, fail };
}

test('slots: first come, first served; queued, never refused; a failed task frees its slot', async () => {
  const slots = new ObservedSlots(2);
  const tasks = Array.from({ length: 6 }, held);
  const runs = tasks.map((t, i) => slots.runLabelled(`t${i}`, t.task));
  const settled = runs.map((run) => run.then((value) => value, (error: Error) => `failed: ${error.message}`));
  await Promise.resolve();
  assert.deepEqual([slots.active, slots.queued, slots.entered], [2, 4, ['t0', 't1']]);
  tasks[1]?.fail(new Error('broken'));
  assert.equal(await settled[1], 'failed: broken');
  assert.deepEqual(slots.entered, ['t0', 't1', 't2']);
  tasks[0]?.release('zero');
  assert.equal(await settled[0], 'zero');
  assert.deepEqual(slots.entered, ['t0', 't1', 't2', 't3']);
  assert.deepEqual([slots.active, slots.queued], [2, 2]);
  // Growing lets waiting tasks in at once, in order; shrinking lets the running ones finish.
  slots.resize(4);
  assert.deepEqual(slots.entered.slice(4), []);
  await Promise.resolve();
  assert.deepEqual([slots.active, slots.queued, slots.entered.slice(4)], [4, 0, ['t4', 't5']]);
  slots.resize(1);
  for (const [i, t] of tasks.entries()) if (i >= 2) t.release(`v${i}`);
  assert.deepEqual(await Promise.all(settled.slice(2)), ['v2', 'v3', 'v4', 'v5']);
  assert.equal(slots.peak, 4);
  assert.deepEqual([slots.active, slots.queued, slots.inside], [0, 0, 0]);
  assert.throws(() => new Slots(0), RangeError);
  assert.throws(() => slots.resize(1.5), RangeError);
});
