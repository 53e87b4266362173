/**
 * The lane an inbound message is opened in: a sender's account of CPU (decaying over ACCOUNT_SECONDS) against its
 * share, with the way back at half of it, and large bodies in the background whoever sends them. A fake clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ACCOUNT_SECONDS, FOREGROUND_IN_FLIGHT, SENDER_ACCOUNTS, SenderCosts } from '../../src/lanes/sender-costs.ts';

const MIB = 1024 * 1024;

/** One message of `sender`, opened at `costMs`. */
function charge(c: SenderCosts, sender: string, costMs: number): void {
  c.begin(sender);
  c.end(sender, costMs);
}

function costs(share = 0.2): { costs: SenderCosts; advance: (ms: number) => void } {
  let now = 0;
  return { costs: new SenderCosts(share, MIB, () => now), advance: (ms) => (now += ms) };
}

describe('sender costs', () => {
  it('opens a new sender in the foreground, and a sender whose messages took more than its share in the background', () => {
    const { costs: c } = costs(0.2);
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'foreground');
    // 0.2 of a core over 2 s is 400 ms: just below it stays in the foreground, just above it does not.
    charge(c, 'address 192.0.2.1', 399);
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'foreground');
    charge(c, 'address 192.0.2.1', 2);
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'background');
    assert.equal(c.laneFor('address 192.0.2.2', 4096), 'foreground', 'another sender is not affected');
  });

  it('counts CPU per second, not per message: many cheap messages weigh as much as one costly one', () => {
    const { costs: c, advance } = costs(0.2);
    for (let i = 0; i < 100; i++) {
      charge(c, 'address 192.0.2.1', 6);
      advance(10);
    }
    // 6 ms every 10 ms is 0.6 of a core, less what decayed during the second.
    assert.ok(c.shareOf('address 192.0.2.1') > 0.2, String(c.shareOf('address 192.0.2.1')));
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'background');
  });

  it('brings a sender back once its share has decayed below half of the limit, not before', () => {
    const { costs: c, advance } = costs(0.2);
    charge(c, 'address 192.0.2.1', 1000); // a share of 0.5
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'background');
    // After ln(0.5 / 0.15) time constants the share is 0.15: below the limit, above half of it.
    advance(Math.log(0.5 / 0.15) * ACCOUNT_SECONDS * 1000);
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'background');
    // At 0.09 it is below half.
    advance(Math.log(0.15 / 0.09) * ACCOUNT_SECONDS * 1000);
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'foreground');
  });

  it('sends a body over the large-message threshold to the background, whoever sends it', () => {
    const { costs: c } = costs(0.2);
    assert.equal(c.laneFor('address 192.0.2.9', MIB), 'foreground');
    assert.equal(c.laneFor('address 192.0.2.9', MIB + 1), 'background');
  });

  it('follows a changed share (a reload)', () => {
    const { costs: c } = costs(0.2);
    charge(c, 'address 192.0.2.1', 500); // 0.25
    assert.equal(c.laneFor('address 192.0.2.1', 10), 'background');
    c.share = 1;
    assert.equal(c.laneFor('address 192.0.2.1', 10), 'foreground');
  });

  it(`remembers at most ${SENDER_ACCOUNTS} senders, forgetting the least recently seen`, () => {
    const { costs: c } = costs(0.2);
    charge(c, 'address 192.0.2.1', 1000);
    for (let i = 0; i < SENDER_ACCOUNTS; i++) charge(c, `connection ${i}`, 1);
    assert.equal(c.shareOf('address 192.0.2.1'), 0);
    assert.equal(c.laneFor('address 192.0.2.1', 10), 'foreground');
  });

  it(`sends a sender's message to the background while ${FOREGROUND_IN_FLIGHT} of its messages are being opened: a burst of parallel sessions from a new sender cannot fill the foreground`, () => {
    const { costs: c } = costs(0.2);
    const lanes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const lane = c.laneFor('address 192.0.2.1', 4096);
      lanes.push(lane);
      c.begin('address 192.0.2.1');
    }
    assert.deepEqual(lanes, ['foreground', 'foreground', 'background', 'background']);
    assert.equal(c.laneFor('address 192.0.2.2', 4096), 'foreground', 'another sender is not affected');
    c.end('address 192.0.2.1', 1);
    c.end('address 192.0.2.1', 1);
    c.end('address 192.0.2.1', 1);
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'foreground', 'one left in flight');
  });

  it('charges a sender whose message stopped the thread twice its share, and sends its next to the background', () => {
    const { costs: c } = costs(0.2);
    c.begin('address 192.0.2.1');
    c.crashed('address 192.0.2.1');
    assert.equal(c.shareOf('address 192.0.2.1'), 0.4);
    assert.equal(c.laneFor('address 192.0.2.1', 4096), 'background');
  });
});
