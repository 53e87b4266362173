/**
 * Attack: opening milter connections without end (an SMTP client flood makes the MTA open one per session), each
 * holding about 1 MiB, until the milter runs out of memory and every message fails. Beyond `maxConnections` a new
 * connection gets a negotiation, a tempfail at its first step (so the MTA answers 4xx whatever its own failure
 * setting) and is closed; the connections already open are served as before.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import {
  decodeResponse,
  encodeCommand,
  FrameDecoder,
  MilterClient,
  MilterServer,
  POSTFIX_OFFER,
  Protocol,
  type MilterLogger,
  type Response,
} from '../../milter/src/index.ts';
import { stampMilter, STAMP_FOOTER } from '../../examples/stamp-milter.ts';

const CLIENT = { hostname: 'client.test', family: 'inet' as const, port: 4000, address: '192.0.2.1' };

function memoryLogger(): MilterLogger & { lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, fields: fields ?? {} });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A raw MTA side: frames out, replies in, and whether the filter closed its side. */
class RawMta {
  private readonly decoder = new FrameDecoder({ maxFrameSize: 1 << 20 });
  private readonly replies: Response[] = [];
  private wake: (() => void) | undefined;
  readonly ended: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.replies.push(decodeResponse(frame));
      this.wake?.();
    });
    this.ended = once(socket, 'end').then(() => undefined);
  }

  static async open(address: string): Promise<RawMta> {
    const [, host, port] = /^inet:(.+):(\d+)$/.exec(address) ?? [];
    const socket = connect({ host: host as string, port: Number(port) });
    await once(socket, 'connect');
    return new RawMta(socket);
  }

  async ask(command: Parameters<typeof encodeCommand>[0]): Promise<Response> {
    this.socket.write(encodeCommand(command));
    while (this.replies.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.replies.shift() as Response;
  }

  close(): void {
    this.socket.destroy();
  }
}

const MESSAGE = {
  client: CLIENT,
  helo: 'client.test',
  sender: '<a@client.test>',
  recipients: ['<b@example.test>'],
  headers: [{ name: 'Subject', value: ' hi' }],
  body: Buffer.from('hello\r\n'),
};

describe('connection flood', () => {
  test('a connection beyond maxConnections is negotiated, answered tempfail at CONNECT and closed; open ones still work', async (t) => {
    const log = memoryLogger();
    const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', maxConnections: 2, logger: log });
    t.after(() => server.close(0));
    const first = await MilterClient.connect(server.address);
    const second = await MilterClient.connect(server.address);
    assert.equal(server.connectionCount, 2);

    const extra = await RawMta.open(server.address);
    const refused = once(server, 'connectionRefused');
    const negotiation = await extra.ask({ kind: 'optneg', ...POSTFIX_OFFER });
    assert.equal(negotiation.kind, 'optneg');
    // No step negotiated away and none without a reply: the first step after the negotiation carries the tempfail.
    const leftOut = Object.entries(Protocol)
      .filter(([name]) => name.startsWith('No'))
      .reduce((mask, [, flag]) => mask | flag, 0);
    assert.equal((negotiation as Extract<Response, { kind: 'optneg' }>).protocol & leftOut, 0);
    assert.deepEqual(await extra.ask({ kind: 'connect', ...CLIENT }), { kind: 'tempfail' });
    await extra.ended;
    const [id] = await refused;
    assert.equal(id, 'c3');
    assert.equal(server.connectionCount, 2);
    assert.deepEqual(
      log.lines.filter((l) => l.level === 'warn').map((l) => [l.message, l.fields.conn, l.fields.maxConnections]),
      [['connection limit reached, answering tempfail and closing', 'c3', 2]],
    );

    // The two connections admitted before are untouched by the refusal.
    for (const client of [first, second]) {
      const result = await client.sendMessage(MESSAGE);
      assert.equal(result.endOfMessage?.verdict.kind, 'continue');
      const body = result.endOfMessage?.modifications.find((m) => m.kind === 'replaceBody');
      assert.deepEqual(body?.kind === 'replaceBody' ? body.chunk : undefined, Buffer.concat([MESSAGE.body, STAMP_FOOTER]));
    }

    // Once one closes, a new connection is served normally.
    const closed = once(server, 'connectionClosed');
    await first.close();
    await closed;
    const third = await MilterClient.connect(server.address);
    assert.equal((await third.sendMessage(MESSAGE)).endOfMessage?.verdict.kind, 'continue');
    await third.close();
    await second.close();
  });

  test('a connection beyond the limit that skips CONNECT gets the tempfail at its first step (HELO)', async (t) => {
    const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', maxConnections: 1 });
    t.after(() => server.close(0));
    const held = await MilterClient.connect(server.address);
    const extra = await RawMta.open(server.address);
    await extra.ask({ kind: 'optneg', ...POSTFIX_OFFER });
    assert.deepEqual(await extra.ask({ kind: 'helo', name: 'client.test' }), { kind: 'tempfail' });
    await extra.ended;
    await held.close();
  });

  test('connections that never negotiate cannot pile up past twice the limit: the next is closed at once', async (t) => {
    const log = memoryLogger();
    const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', maxConnections: 1, logger: log });
    t.after(() => server.close(0));
    const held = await MilterClient.connect(server.address);
    const silent = await RawMta.open(server.address);
    const dropped = await RawMta.open(server.address);
    await dropped.ended;
    assert.deepEqual(
      log.lines.filter((l) => l.level === 'warn').map((l) => [l.message, l.fields.conn]),
      [
        ['connection limit reached, answering tempfail and closing', 'c2'],
        ['connection limit reached twice over, closing at once', 'c3'],
      ],
    );
    silent.close();
    await held.close();
  });
});
