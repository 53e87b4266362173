/** The pace of large bodies: a token bucket of one second's worth, shared, in order (a fake clock). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteRate, CONTENDED_MS } from '../../src/stream/byte-rate.ts';

const MIB = 1024 * 1024;

describe('byte rate', () => {
  it('lets one second\'s worth go at once, then makes the next taker wait', () => {
    let now = 0;
    const rate = new ByteRate(4 * MIB, MIB, () => now);
    assert.equal(rate.take(4 * MIB), undefined);
    const wait = rate.take(1);
    assert.ok(wait instanceof Promise);
    void wait;
    now += 1000;
    // A second later the debt of one byte is paid and the rest earned again, up to one second's worth.
    assert.equal(rate.take(4 * MIB - 1), undefined);
  });

  it('does not save more than one second\'s worth however long it was idle', () => {
    let now = 0;
    const rate = new ByteRate(MIB, MIB, () => now);
    now += 60_000;
    assert.equal(rate.take(MIB), undefined);
    assert.ok(rate.take(1) instanceof Promise);
  });

  it('never waits when the rate is 0 (unlimited), and follows a changed rate', () => {
    let now = 0;
    const rate = new ByteRate(0, MIB, () => now);
    assert.equal(rate.take(1024 * MIB), undefined);
    rate.bytesPerSecond = MIB;
    now += 1000;
    assert.equal(rate.take(MIB), undefined);
    assert.ok(rate.take(1) instanceof Promise);
  });

  it('lets a large body go at full speed while nothing else is in flight, and paces it at once when something is, for a second after', () => {
    let now = 0;
    let others = false;
    const rate = new ByteRate(MIB, MIB, () => now);
    rate.contended = () => others;
    assert.equal(rate.take(100 * MIB), undefined, 'alone: full speed, and the bucket is empty after it, not in debt');
    others = true;
    assert.ok(rate.take(1) instanceof Promise, 'another message in flight: the next bytes wait');
    others = false;
    now += CONTENDED_MS - 1;
    // The debt of that byte is paid; what was earned since goes, then the next taker waits: still paced.
    assert.equal(rate.take(MIB - 2048), undefined);
    assert.ok(rate.take(4096) instanceof Promise, 'still paced just under a second after the last sight of another message');
    now += 1;
    assert.equal(rate.take(10 * MIB), undefined, 'a second after it: full speed again');
  });

  it('paces only the bytes of a body past its threshold', async () => {
    let now = 0;
    const rate = new ByteRate(MIB, MIB, () => now);
    const taken: number[] = [];
    const take = rate.take.bind(rate);
    rate.take = (bytes) => {
      taken.push(bytes);
      return take(bytes);
    };
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(300 * 1024);
    }
    let total = 0;
    for await (const chunk of rate.paced(body())) total += chunk.length;
    // 1 500 KiB in all: the first 1 024 KiB go free; the 176 KiB of the fourth chunk past them, and the fifth, are taken.
    assert.equal(total, 1500 * 1024);
    assert.deepEqual(taken, [1200 * 1024 - MIB, 300 * 1024]);
  });

  it('hands a chunk on before its wait, and reads the next only after it: no chunk is held while the body waits', async () => {
    const rate = new ByteRate(MIB, 0, () => 0);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    rate.take = () => held;
    const pulled: number[] = [];
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 1; i <= 2; i++) {
        pulled.push(i);
        yield Buffer.alloc(1024, i);
      }
    }
    const chunks = rate.paced(body());
    const first = await chunks.next();
    assert.equal(first.value?.[0], 1, 'the first chunk is handed on while its bytes are still owed');
    let settled = false;
    const next = chunks.next().finally(() => (settled = true));
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(pulled, [1], 'the next chunk is not read while the wait holds');
    assert.equal(settled, false);
    release();
    const second = await next;
    assert.equal(second.value?.[0], 2);
    assert.deepEqual(pulled, [1, 2]);
  });
});
