/**
 * Attack: one endless message. The body used to be written to the spool until its end of message, and only then
 * compared with limits.maxMessageSize, so a sender could fill the spool's disk (and with it every other message's
 * spool) with a single transaction. Now the chunk that takes the message past the limit ends its storing: the
 * spill file is removed at once, no later chunk is written, and end of message gets the oversize action.
 *
 * The daemon's milter is driven through the protocol session directly (no socket), so that each body chunk,
 * which gets no reply, is known to be fully handled when the spool directory is looked at.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { MilterSession, POSTFIX_OFFER, type Response } from '../../milter/src/index.ts';
import type { Command } from '../../milter/src/codec/commands.ts';
import { parseConfig } from '../../src/config/index.ts';
import { buildRuntime } from '../../src/daemon/build-runtime.ts';
import { museMilter } from '../../src/daemon/filter.ts';
import { createLogger } from '../../src/log/index.ts';
import { baseSettings, makeSite, mergeSettings, replyCode, writeSiteKey, type TestSite } from '../daemon/support/harness.ts';

const LIMIT = 64 * 1024;
const CHUNK = Buffer.alloc(16 * 1024, 'x\r\n'.repeat(4) + 'abcdefghij');
const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'Subject', value: ' flood' },
];
const HEADER_BYTES = HEADERS.reduce((sum, h) => sum + h.name.length + h.value.length + 3, 0);

let site: TestSite;
let dataDir: string;

before(async () => {
  site = await makeSite('site.test');
});
after(async () => {
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** The daemon's milter on a fresh data directory, with its log lines. */
async function museSession(action: string): Promise<{ session: MilterSession; spool: string; lines: Array<Record<string, unknown>> }> {
  dataDir = await mkdtemp(join(tmpdir(), 'muse-spool-flood-'));
  await writeSiteKey(dataDir, site);
  const settings = mergeSettings(baseSettings(dataDir, site, '127.0.0.1:1', 1), {
    limits: { maxMessageSize: LIMIT },
    actions: { oversize: action },
    policy: { domains: { 'clear.test': 'never' } },
    milter: { maxBufferedBody: '4KiB' },
  });
  const config = parseConfig(stringify(settings), 'muse.yaml');
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger(config.logging, { stream });
  const runtime = await buildRuntime(config, { metrics: undefined, log });
  const spool = config.milter.spoolDirectory as string;
  const session = new MilterSession(museMilter(() => runtime), { connectionId: 't1', logger: log, maxBufferedBody: config.milter.maxBufferedBody, spoolDirectory: spool });
  return { session, spool, lines };
}

async function send(session: MilterSession, command: Command): Promise<Response[]> {
  const replies: Response[] = [];
  for await (const reply of session.handle(command)) replies.push(reply);
  return replies;
}

async function upToBody(session: MilterSession, client: { address: string }, sender: string, recipient: string): Promise<void> {
  await send(session, { kind: 'optneg', ...POSTFIX_OFFER });
  await send(session, { kind: 'connect', hostname: 'client.test', family: 'inet', port: 4000, address: client.address });
  await send(session, { kind: 'helo', name: 'client.test' });
  await send(session, { kind: 'macro', forCommand: 'M', macros: [['i', 'Q-FLOOD']] });
  assert.deepEqual(await send(session, { kind: 'mail', sender, parameters: [] }), [{ kind: 'continue' }]);
  assert.deepEqual(await send(session, { kind: 'rcpt', recipient, parameters: [] }), [{ kind: 'continue' }]);
  await send(session, { kind: 'data' });
  for (const header of HEADERS) await send(session, { kind: 'header', ...header });
  await send(session, { kind: 'eoh' });
}

for (const [direction, client, sender, recipient] of [
  ['outbound', { address: '127.0.0.1' }, '<alice@site.test>', '<bob@clear.test>'],
  ['inbound', { address: '192.0.2.25' }, '<mallory@remote.test>', '<alice@site.test>'],
] as const) {
  describe(`spool flood (${direction})`, () => {
    test('storing stops at the chunk that passes limits.maxMessageSize; end of message gets the oversize action', async (t) => {
      const { session, spool, lines } = await museSession('tempfail');
      t.after(() => session.dispose());
      await upToBody(session, client, sender, recipient);
      // Three chunks (48 KiB and the headers) stay under the limit; the fourth passes it.
      for (let i = 0; i < 3; i++) assert.deepEqual(await send(session, { kind: 'body', chunk: CHUNK }), []);
      const spilled = await readdir(spool);
      assert.equal(spilled.length, 1);
      assert.match(spilled[0] as string, /^milter-body-/);
      assert.deepEqual(await readdir(join(spool, spilled[0] as string)), ['body']);

      assert.deepEqual(await send(session, { kind: 'body', chunk: CHUNK }), []);
      assert.deepEqual(await readdir(spool), [], 'the spill file is removed as soon as the limit is passed');
      // A sender who keeps sending gets nothing stored.
      for (let i = 0; i < 20; i++) {
        await send(session, { kind: 'body', chunk: CHUNK });
        assert.deepEqual(await readdir(spool), []);
      }
      const size = HEADER_BYTES + 24 * CHUNK.length;
      assert.deepEqual(await send(session, { kind: 'eom', chunk: Buffer.alloc(0) }), [
        replyCode(451, '4.3.4', 'Message too large to protect'),
      ]);
      const summary = lines.find((l) => l.message === 'message processed');
      assert.deepEqual([summary?.queueId, summary?.direction, summary?.action, summary?.reason], ['Q-FLOOD', direction, 'tempfail', `message of ${size} bytes exceeds limits.maxMessageSize`]);
      assert.deepEqual(await readdir(spool), []);
    });
  });
}

describe('spool flood, oversize action accept', () => {
  test('the message passes unchanged, without its body ever being stored whole', async (t) => {
    const { session, spool } = await museSession('accept');
    t.after(() => session.dispose());
    await upToBody(session, { address: '127.0.0.1' }, '<alice@site.test>', '<bob@clear.test>');
    for (let i = 0; i < 8; i++) await send(session, { kind: 'body', chunk: CHUNK });
    assert.deepEqual(await readdir(spool), []);
    assert.deepEqual(await send(session, { kind: 'eom', chunk: Buffer.alloc(0) }), [{ kind: 'continue' }]);
  });
});
