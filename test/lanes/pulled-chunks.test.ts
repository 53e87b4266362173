/**
 * Requests and pulled byte streams between two ends of a MessageChannel, as between the daemon's event loop and
 * an opening thread: a stream is read chunk by chunk at the reader's pace, a reader that stops early closes it,
 * and a failure on either side reaches the other as an error.
 */
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { describe, it } from 'node:test';
import { PortRpc, RemoteError } from '../../src/lanes/port-rpc.ts';
import { pullChunks, serveChunks, type StreamRef } from '../../src/lanes/pulled-chunks.ts';

function pair(t: { after: (fn: () => void) => void }): { a: PortRpc; b: PortRpc } {
  const { port1, port2 } = new MessageChannel();
  t.after(() => {
    port1.close();
    port2.close();
  });
  return { a: new PortRpc(port1), b: new PortRpc(port2) };
}

describe('port requests and pulled chunks', () => {
  it('answers a request with the handler\'s value, and a failed handler with its message', async (t) => {
    const { a, b } = pair(t);
    b.handle('double', (n) => ({ value: (n as number) * 2 }));
    b.handle('fail', () => {
      throw new Error('no such domain');
    });
    assert.equal(await a.request('double', 21), 42);
    await assert.rejects(a.request('fail', null), (error: Error) => error instanceof RemoteError && error.message === 'no such domain');
    await assert.rejects(a.request('unknown', null), /no handler for unknown/);
  });

  it('streams the chunks in order, each pulled when the reader asks, the bytes intact', async (t) => {
    const { a, b } = pair(t);
    let produced = 0;
    const opened: StreamRef[] = [];
    serveChunks(b, 'body', (ref) => {
      opened.push(ref);
      return (async function* () {
        for (let i = 0; i < 4; i++) {
          produced++;
          yield Buffer.alloc(1000, i);
        }
      })();
    });
    const reader = pullChunks(a, 'body', { job: 7, stream: 0 });
    const first = await reader.next();
    assert.equal(produced, 1, 'nothing is read ahead of the reader');
    const rest: Buffer[] = [];
    for await (const chunk of reader) rest.push(chunk);
    assert.deepEqual([first.value, ...rest], [0, 1, 2, 3].map((i) => Buffer.alloc(1000, i)));
    assert.deepEqual(opened, [{ job: 7, stream: 0 }]);
  });

  it('closes the stream on the serving side when the reader stops early', async (t) => {
    const { a, b } = pair(t);
    let closed!: () => void;
    const wasClosed = new Promise<void>((resolve) => (closed = resolve));
    serveChunks(b, 'body', () =>
      (async function* () {
        try {
          for (let i = 0; ; i++) yield Buffer.from([i]);
        } finally {
          closed();
        }
      })(),
    );
    for await (const chunk of pullChunks(a, 'body', { job: 1, stream: 0 })) if (chunk[0] === 2) break;
    await wasClosed;
  });

  it('gives the reader the source\'s failure as an error', async (t) => {
    const { a, b } = pair(t);
    serveChunks(b, 'body', () =>
      (async function* () {
        yield Buffer.from('one');
        throw new Error('cannot read the spool file');
      })(),
    );
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of pullChunks(a, 'body', { job: 1, stream: 0 })) got.push(chunk.toString());
      })(),
      /cannot read the spool file/,
    );
    assert.deepEqual(got, ['one']);
  });

  it('fails the requests still waiting when closed (the thread stopped)', async (t) => {
    const { a, b } = pair(t);
    b.handle('never', () => new Promise(() => {}));
    const waiting = a.request('never', null);
    a.close(new Error('the background opening thread stopped (exit code 1)'));
    await assert.rejects(waiting, /exit code 1/);
    // And every request after it, at once: a body still being read from a thread that stopped fails, never hangs.
    await assert.rejects(a.request('never', null), /exit code 1/);
    await assert.rejects(pullChunks(a, 'body', { job: 1, stream: 0 }).next(), /exit code 1/);
  });
});
