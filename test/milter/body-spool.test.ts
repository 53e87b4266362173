/** The body store: exact bytes in memory and spilled, whatever the chunking, and nothing left after dispose. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BodySpool } from '../../milter/src/index.ts';
import { withFileSizeLimit } from '../support/file-size-limit.ts';

/** Deterministic, position-dependent bytes, so a chunk out of place or written twice shows. */
function pattern(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + (i >> 11)) & 0xff;
  return out;
}

const MiB = 1024 * 1024;

test('spilled bodies read back byte for byte for every chunking, the writer reusing its buffer after each write', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spool-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const body = pattern(3 * MiB + 12345);
  for (const chunkSize of [1, 4093, 65535, MiB, MiB + 1, 2 * MiB + 3]) {
    // Chunk size 1 is slow byte by byte: a shorter body says the same.
    const data = chunkSize === 1 ? body.subarray(0, 70_000) : body;
    const spool = new BodySpool({ maxMemory: 64 * 1024, directory: dir });
    const scratch = Buffer.allocUnsafe(chunkSize);
    for (let at = 0; at < data.length; at += chunkSize) {
      const n = data.copy(scratch, 0, at, at + chunkSize);
      await spool.write(scratch.subarray(0, n));
      scratch.fill(0xee); // the caller's buffer is reused at once
    }
    assert.equal(spool.spilled, true);
    assert.equal(spool.size, data.length);
    const parts: Buffer[] = [];
    for await (const chunk of spool.chunks()) parts.push(chunk);
    const first = Buffer.concat(parts);
    assert.ok(first.equals(data), `chunk size ${chunkSize}`);
    const again = await spool.toBuffer();
    assert.ok(again.equals(data), `read twice, chunk size ${chunkSize}`);
    for await (const chunk of spool.chunks(4096)) assert.ok(chunk.length <= 4096);
    await spool.dispose();
    await spool.dispose();
    assert.deepEqual(await readdir(dir), [], 'the spill file and its directory are gone');
  }
});

test('bodies within maxMemory stay in memory and are never written to a file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spool-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const spool = new BodySpool({ maxMemory: 1000, directory: dir });
  const chunk = Buffer.from('a'.repeat(500));
  await spool.write(chunk);
  chunk.fill(0x62);
  await spool.write(Buffer.from('c'.repeat(500)));
  await spool.flush();
  assert.equal(spool.spilled, false);
  assert.deepEqual(await readdir(dir), []);
  assert.equal((await spool.toBuffer()).toString(), 'a'.repeat(500) + 'c'.repeat(500));
  await spool.dispose();
  await assert.rejects(spool.write(Buffer.from('x')), /already disposed/);
});

test('overlapping readers and flushes see the whole body, and a failed write fails every later flush (EFBIG)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spool-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const body = pattern(3 * MiB + 777);
  const spool = new BodySpool({ maxMemory: 1024, directory: dir });
  // Writes not awaited one by one: they are queued in order all the same.
  await Promise.all(Array.from({ length: Math.ceil(body.length / 65536) }, (_, k) => spool.write(body.subarray(k * 65536, (k + 1) * 65536))));
  const read = async (): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const chunk of spool.chunks()) parts.push(chunk);
    return Buffer.concat(parts);
  };
  const [a, b] = await Promise.all([read(), read(), spool.flush(), spool.flush()]);
  assert.ok(a?.equals(body) && b?.equals(body), 'both readers got the whole body');
  await spool.dispose();

  const limited = new BodySpool({ maxMemory: 1024, directory: dir });
  const failure = await withFileSizeLimit(MiB + 100, async () => {
    for (let k = 0; k < 40; k++) await limited.write(body.subarray(k * 65536, (k + 1) * 65536));
    return limited.flush().then(
      () => undefined,
      (error: NodeJS.ErrnoException) => error.code,
    );
  }).catch((error: NodeJS.ErrnoException) => error.code);
  assert.equal(failure, 'EFBIG');
  await assert.rejects(limited.flush(), { code: 'EFBIG' });
  await assert.rejects(limited.write(Buffer.from('more')), { code: 'EFBIG' });
  await limited.dispose();
  assert.deepEqual(await readdir(dir), []);
});

test('names its spill file once everything is in it, and none while in memory; a tag goes into the directory name', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spool-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const spool = new BodySpool({ maxMemory: 1000, directory: dir, tag: 'lane-background-3' });
  await spool.write(Buffer.alloc(600, 'a'));
  assert.equal(await spool.filePath(), undefined);
  await spool.write(Buffer.alloc(600, 'b'));
  const path = await spool.filePath();
  assert.ok(path !== undefined);
  assert.deepEqual(await readFile(path), Buffer.concat([Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b')]), 'the file holds the whole body');
  const [name] = await readdir(dir);
  assert.ok(name?.startsWith(`milter-body-${process.pid}-lane-background-3-`), name);
  await spool.dispose();
  assert.deepEqual(await readdir(dir), []);
});
