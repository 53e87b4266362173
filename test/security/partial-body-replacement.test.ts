/**
 * Attack: a half-replaced body delivered. A filter's new body can fail while it is being sent (its spool file
 * removed, the opening thread holding it stopped). Part of it is then with the MTA, and an MTA told to accept on a
 * milter failure (`milter_default_action = accept`) would keep the message with that part. The milter library
 * answers TEMPFAIL whatever `onError` says, so the MTA drops every change with the message and tries again; the
 * connection stays open for the next message.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACCEPT, addHeader, CONTINUE, defineMilter, MilterClient, MilterServer, replaceBody, TEMPFAIL, type MilterLogger } from '../../milter/src/index.ts';

/** A logger that keeps lines for assertions. */
function memoryLogger(): MilterLogger & { lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, fields: fields ?? {} });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('a new body that fails while it is sent', () => {
  // What filters hand over as a body can fail part-way (its spool file removed, the thread holding it gone). Part of
  // the new body is then with the MTA: the message must be tempfailed, never kept with half a body.
  /** A filter whose new body fails after yielding `sentBefore` bytes (none: at once). */
  const failingBody = (onError: 'accept' | 'tempfail', sentBefore = 100_000) =>
    defineMilter({
      name: 'failing-body',
      actions: ['addHeaders', 'changeBody'],
      onError: onError === 'accept' ? ACCEPT : TEMPFAIL,
      createHandler: () => ({
        async endOfMessage(ctx) {
          if (ctx.macro('i') === 'F2') return { verdict: CONTINUE, modifications: [replaceBody(Buffer.from('whole\r\n'))] };
          async function* broken(): AsyncGenerator<Buffer> {
            if (sentBefore > 0) yield Buffer.alloc(sentBefore, 'a');
            throw new Error('spool file vanished');
          }
          return { verdict: CONTINUE, modifications: [addHeader('X-Changed', ' yes'), replaceBody(broken())] };
        },
      }),
    });

  for (const onError of ['accept', 'tempfail'] as const) {
    test(`with onError ${onError}: the chunks sent, then TEMPFAIL; the error logged; the connection serves the next message`, async () => {
      const log = memoryLogger();
      const server = await MilterServer.start(failingBody(onError), { listen: 'inet:0@127.0.0.1', logger: log });
      const client = await MilterClient.connect(server.address);
      const send = (queueId: string) =>
        client.sendMessage({ sender: '<a@a.test>', recipients: ['<b@b.test>'], headers: [{ name: 'Subject', value: ' s' }], body: Buffer.from('x\r\n'), macros: { i: queueId } });
      const failed = await send('F1');
      assert.deepEqual(failed.endOfMessage?.verdict, { kind: 'tempfail' });
      assert.deepEqual(
        failed.endOfMessage?.modifications.map((m) => (m.kind === 'replaceBody' ? `replaceBody ${m.chunk.length}` : m.kind)),
        ['addHeader', 'replaceBody 65535', 'replaceBody 34465'],
      );
      const line = log.lines.find((l) => l.message === 'modifications failed while being sent');
      assert.ok(line, 'the failure is logged');
      assert.deepEqual([line.level, line.fields.code, line.fields.error, line.fields.verdict], ['error', 'modifications-failed', 'spool file vanished', 'tempfail']);
      const next = await send('F2');
      assert.deepEqual(next.endOfMessage?.verdict, { kind: 'continue' });
      assert.deepEqual(next.endOfMessage?.modifications, [{ kind: 'replaceBody', chunk: Buffer.from('whole\r\n') }]);
      await client.close();
      await server.close();
    });
  }
  test('next variant: the body fails before its first byte; still TEMPFAIL, the header change withdrawn with the message', async () => {
    const log = memoryLogger();
    const server = await MilterServer.start(failingBody('accept', 0), { listen: 'inet:0@127.0.0.1', logger: log });
    const client = await MilterClient.connect(server.address);
    const result = await client.sendMessage({ sender: '<a@a.test>', recipients: ['<b@b.test>'], headers: [{ name: 'Subject', value: ' s' }], body: Buffer.from('x\r\n'), macros: { i: 'F1' } });
    assert.deepEqual(result.endOfMessage?.verdict, { kind: 'tempfail' });
    assert.deepEqual(result.endOfMessage?.modifications, [{ kind: 'addHeader', name: 'X-Changed', value: ' yes' }]);
    assert.equal(log.lines.filter((l) => l.message === 'modifications failed while being sent').length, 1);
    await client.close();
    await server.close();
  });
});
