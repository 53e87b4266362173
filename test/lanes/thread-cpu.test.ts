/** Sharing a thread's CPU time among the jobs it runs at once (a fake clock), and the thread clock itself. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuLedger, threadCpuMs } from '../../src/lanes/thread-cpu.ts';

describe('CPU ledger', () => {
  it('charges a job alone with all the time between its start and its end', () => {
    let now = 100;
    const ledger = new CpuLedger(() => now);
    ledger.start(1);
    now += 30;
    assert.equal(ledger.end(1), 30);
  });

  it('splits the time equally among the jobs running together', () => {
    let now = 0;
    const ledger = new CpuLedger(() => now);
    ledger.start(1);
    now += 10; // 1 alone
    ledger.start(2);
    now += 20; // 1 and 2
    assert.equal(ledger.end(1), 20);
    now += 5; // 2 alone
    assert.equal(ledger.end(2), 15);
  });

  it('does not charge a job while it waits outside the thread (a DNS answer)', () => {
    let now = 0;
    const ledger = new CpuLedger(() => now);
    ledger.start(1);
    ledger.start(2);
    now += 10; // both: 5 each
    ledger.pause(2);
    now += 10; // 1 alone
    ledger.resume(2);
    now += 4; // both: 2 each
    assert.equal(ledger.end(1), 17);
    assert.equal(ledger.end(2), 7);
  });

  it('keeps a job paused until its last wait is over (it may wait for two things at once)', async () => {
    let now = 0;
    const ledger = new CpuLedger(() => now);
    ledger.start(1);
    ledger.start(2);
    ledger.pause(2);
    ledger.pause(2);
    now += 10; // 1 alone
    ledger.resume(2);
    now += 10; // still 1 alone
    const waited = ledger.waiting(1, async () => {
      now += 6; // nobody runs: 1 waits, and 2 still has a wait
    });
    await waited;
    ledger.resume(2);
    now += 4; // both
    assert.equal(ledger.end(1), 22);
    assert.equal(ledger.end(2), 2);
  });

  it('charges nobody for time when no job runs, and forgets a job once ended', () => {
    let now = 0;
    const ledger = new CpuLedger(() => now);
    now += 50;
    ledger.start(1);
    now += 1;
    assert.equal(ledger.end(1), 1);
    assert.equal(ledger.end(1), 0);
  });

  it('reads this thread\'s CPU clock: it advances with work, not with waiting', async () => {
    const before = threadCpuMs();
    let x = 0;
    for (let i = 0; i < 3e7; i++) x += i % 7;
    const worked = threadCpuMs();
    assert.ok(x > 0 && worked > before, `${before} → ${worked}`);
  });
});
