/**
 * The pool of body frames the server writes back: each frame is the SMFIR_REPLBODY frame of its chunk, byte for
 * byte; a buffer is handed out again only once released (written), never while a frame in it is in flight; and
 * beyond the buffers it keeps, frames are made one-off and left to the collector.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeResponse, FramePool, MAX_BODY_CHUNK, POOLED_FRAME_BYTES, ResponseCode } from '../../milter/src/index.ts';

const frameOf = (chunk: Buffer): Buffer => encodeResponse({ kind: 'replaceBody', chunk });

describe('frame pool', () => {
  test('a pooled frame is the replace-body frame of its chunk, byte for byte, at every size', () => {
    const pool = new FramePool(4);
    for (const size of [0, 1, 4096, MAX_BODY_CHUNK, MAX_BODY_CHUNK + 1]) {
      const chunk = Buffer.alloc(size, size % 251);
      const { frame, release } = pool.frame(ResponseCode.ReplaceBody, chunk);
      assert.deepEqual(frame, frameOf(chunk), `chunk of ${size} bytes`);
      release();
    }
  });

  test('a buffer in flight is not handed out again; once released it is, and the frame in it was intact until then', () => {
    const pool = new FramePool(4);
    const first = pool.frame(ResponseCode.ReplaceBody, Buffer.from('first chunk'));
    const second = pool.frame(ResponseCode.ReplaceBody, Buffer.from('second chunk, longer'));
    assert.notEqual(second.frame.buffer, first.frame.buffer);
    assert.deepEqual(first.frame, frameOf(Buffer.from('first chunk')));
    assert.equal(first.frame.buffer.byteLength, POOLED_FRAME_BYTES);
    first.release();
    assert.equal(pool.idle, 1);
    const third = pool.frame(ResponseCode.ReplaceBody, Buffer.from('third'));
    assert.equal(third.frame.buffer, first.frame.buffer, 'the released buffer is reused');
    assert.deepEqual(second.frame, frameOf(Buffer.from('second chunk, longer')));
    assert.equal(pool.idle, 0);
  });

  test('a release counts once, and beyond the buffers kept, frames are one-off', () => {
    const pool = new FramePool(2);
    const a = pool.frame(ResponseCode.ReplaceBody, Buffer.from('a'));
    const b = pool.frame(ResponseCode.ReplaceBody, Buffer.from('b'));
    const c = pool.frame(ResponseCode.ReplaceBody, Buffer.from('c'));
    assert.deepEqual(c.frame, frameOf(Buffer.from('c')));
    assert.notEqual(c.frame.buffer.byteLength, POOLED_FRAME_BYTES, 'the third frame has a buffer of its own');
    a.release();
    a.release();
    b.release();
    c.release();
    assert.equal(pool.idle, 2);
    const d = pool.frame(ResponseCode.ReplaceBody, Buffer.from('d'));
    const e = pool.frame(ResponseCode.ReplaceBody, Buffer.from('e'));
    assert.notEqual(d.frame.buffer, e.frame.buffer, 'a buffer released twice is not handed out twice');
  });
});
