/** The body handed from the milter's body step to the engine while it arrives: order, bound, end, failure. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BodyFeed } from '../../src/daemon/body-feed.ts';
import { settled } from '../support/settled.ts';

describe('BodyFeed', () => {
  it('hands over copies of the chunks, in order, then ends', async () => {
    const feed = new BodyFeed(1024);
    const source = Buffer.from('first');
    await feed.push(source);
    source.fill(0x21); // the milter reuses its frame buffers: the feed must have copied
    await feed.push(Buffer.from('second'));
    await feed.push(Buffer.alloc(0));
    feed.end();
    await feed.push(Buffer.from('after the end'));
    const read: string[] = [];
    for await (const chunk of feed) read.push(chunk.toString());
    assert.deepEqual(read, ['first', 'second']);
  });

  it('makes a push wait while the reader is more than the limit behind, and lets it go as the reader catches up', async () => {
    const feed = new BodyFeed(10);
    assert.equal(await settled(feed.push(Buffer.alloc(8))), true, 'within the limit');
    const blocked = feed.push(Buffer.alloc(8));
    assert.equal(await settled(blocked), false, '16 bytes waiting: over the limit of 10');
    const reader = feed[Symbol.asyncIterator]();
    assert.equal((await reader.next()).value?.length, 8);
    assert.equal(await settled(blocked), true, '8 bytes waiting again');
    feed.end();
    assert.equal((await reader.next()).value?.length, 8);
    assert.equal((await reader.next()).done, true);
  });

  it('a reader waiting for the next chunk gets it as soon as it is pushed', async () => {
    const feed = new BodyFeed(1024);
    const reader = feed[Symbol.asyncIterator]();
    const next = reader.next();
    assert.equal(await settled(next), false);
    await feed.push(Buffer.from('late'));
    assert.equal((await next).value?.toString(), 'late');
  });

  it('fail: the reader gets the error instead of what was waiting, and a waiting push returns', async () => {
    const feed = new BodyFeed(4);
    await feed.push(Buffer.from('abcd'));
    const blocked = feed.push(Buffer.from('efgh'));
    assert.equal(await settled(blocked), false);
    feed.fail(new Error('aborted by the MTA'));
    assert.equal(await settled(blocked), true);
    await assert.rejects(
      (async () => {
        for await (const chunk of feed) assert.fail(`got ${chunk.toString()} after the failure`);
      })(),
      /aborted by the MTA/,
    );
  });

  it('a reader that stops early releases a waiting push and drops what follows', async () => {
    const feed = new BodyFeed(4);
    await feed.push(Buffer.from('abcd'));
    const blocked = feed.push(Buffer.from('efgh'));
    for await (const chunk of feed) {
      assert.equal(chunk.toString(), 'abcd');
      break;
    }
    assert.equal(await settled(blocked), true);
    assert.equal(await settled(feed.push(Buffer.alloc(100))), true, 'nothing is kept for a reader that is gone');
  });

  it('readerDone without ever reading: a waiting push returns, and nothing more is kept', async () => {
    const feed = new BodyFeed(4);
    await feed.push(Buffer.from('abcd'));
    const blocked = feed.push(Buffer.from('efgh'));
    assert.equal(await settled(blocked), false);
    feed.readerDone();
    assert.equal(await settled(blocked), true);
    assert.equal(await settled(feed.push(Buffer.alloc(100))), true);
  });

  it('can be read only once', async () => {
    const feed = new BodyFeed();
    feed.end();
    for await (const chunk of feed) assert.fail(`unexpected ${chunk.length} bytes`);
    await assert.rejects(feed[Symbol.asyncIterator]().next(), /read only once/);
  });
});
