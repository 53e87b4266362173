/**
 * The milter server over real sockets: addresses, socket files, limits, malformed input, progress,
 * single-write replies and graceful shutdown. Ports: ephemeral (port 0) only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, Server, type Socket } from 'node:net';
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ACCEPT,
  addHeader,
  CONTINUE,
  defineMilter,
  encodeCommand,
  FrameDecoder,
  decodeResponse,
  MilterClient,
  MilterServer,
  type MilterLogger,
  type Response,
} from '../../milter/src/index.ts';
import { stampMilter, STAMP_FOOTER } from '../../examples/stamp-milter.ts';

/** A logger that keeps lines for assertions. */
function memoryLogger(): MilterLogger & { lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, fields: fields ?? {} });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function waitFor(predicate: () => boolean, what: string, timeout = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      if (predicate()) resolve();
      else if (Date.now() - started > timeout) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

function rawConnect(address: string): Promise<Socket> {
  const [, host, port] = /^inet:(.+):(\d+)$/.exec(address) ?? [];
  return new Promise((resolve, reject) => {
    const socket = connect({ host: host as string, port: Number(port) });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

const OFFER = encodeCommand({ kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff });

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'milter-server-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('listening', () => {
  test('unix socket gets mode 0660 by default and the configured mode otherwise', async () => {
    const path = join(dir, 'default.sock');
    const server = await MilterServer.start(stampMilter(), { listen: `unix:${path}` });
    assert.equal((await stat(path)).mode & 0o777, 0o660);
    assert.equal(server.address, `unix:${path}`);
    await server.close();
    await assert.rejects(stat(path), { code: 'ENOENT' });

    const strict = join(dir, 'strict.sock');
    const server2 = await MilterServer.start(stampMilter(), { listen: `unix:${strict}`, socketMode: 0o600 });
    assert.equal((await stat(strict)).mode & 0o777, 0o600);
    await server2.close();
  });

  test('unix socket gets the configured group; it is bound owner-only whatever the umask, which is restored', async () => {
    const path = join(dir, 'group.sock');
    const group = 4242;
    // The umask in force when the socket file is created by the bind decides who can connect before the chmod.
    const masks: number[] = [];
    const listen = Server.prototype.listen;
    Server.prototype.listen = function (this: Server, ...args: unknown[]) {
      const mask = process.umask(0o777);
      process.umask(mask);
      masks.push(mask);
      return (listen as (...a: unknown[]) => Server).apply(this, args);
    } as typeof listen;
    const previous = process.umask(0);
    let server: MilterServer;
    try {
      server = await MilterServer.start(stampMilter(), { listen: `unix:${path}`, socketGroup: group });
    } finally {
      Server.prototype.listen = listen;
      assert.equal(process.umask(previous), 0, 'the process umask is restored after the bind');
    }
    assert.deepEqual(masks, [0o177]);
    const info = await stat(path);
    assert.deepEqual([info.mode & 0o777, info.gid, info.uid], [0o660, group, process.getuid?.()]);
    await server.close();
  });

  test('a stale socket file is replaced, a live one and a regular file are refused', async () => {
    const path = join(dir, 'stale.sock');
    // Leave a socket file behind with nobody listening: a process killed with SIGKILL cannot clean up.
    const child = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(child.signal, 'SIGKILL');
    assert.ok((await stat(path)).isSocket());
    const server = await MilterServer.start(stampMilter(), { listen: `unix:${path}` });
    const client = await MilterClient.connect(`unix:${path}`);
    await client.close();

    await assert.rejects(MilterServer.start(stampMilter(), { listen: `unix:${path}` }), /another process is listening/);
    await server.close();

    const file = join(dir, 'regular-file');
    await writeFile(file, 'keep me');
    await assert.rejects(MilterServer.start(stampMilter(), { listen: `unix:${file}` }), /is not a socket; not removing it/);
    assert.equal(await readFile(file, 'utf8'), 'keep me');
  });

  test('inet with port 0 reports the real port; inet6 listens on ::1', async () => {
    const v4 = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1' });
    assert.match(v4.address, /^inet:127\.0\.0\.1:[1-9]\d*$/);
    const v6 = await MilterServer.start(stampMilter(), { listen: 'inet6:0@::1' });
    assert.match(v6.address, /^inet:\[::1\]:[1-9]\d*$/);
    const port = /:(\d+)$/.exec(v6.address)?.[1];
    const client = await MilterClient.connect(`inet6:[::1]:${port}`);
    assert.equal(client.negotiation?.version, 6);
    await client.close();
    await v4.close();
    await v6.close();
  });

  test('malformed socket specifications are refused with the reason', async () => {
    await assert.rejects(MilterServer.start(stampMilter(), { listen: 'tcp:1234' }), /must start with unix:, local:, inet: or inet6:/);
    await assert.rejects(MilterServer.start(stampMilter(), { listen: 'inet:99999@127.0.0.1' }), /invalid port/);
    await assert.rejects(MilterServer.start(stampMilter(), { listen: 'inet:25@::1' }), /is not an IPv4 address/);
    await assert.rejects(MilterServer.start(stampMilter(), { listen: 'unix:relative.sock' }), /must be absolute/);
  });
});

describe('a whole transaction over TCP', () => {
  test('the stamp milter changes a 200 KB body through a spilled spool, exact bytes', async () => {
    const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', maxBufferedBody: 4096, spoolDirectory: dir });
    const client = await MilterClient.connect(server.address);
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = i % 97 === 95 ? 13 : i % 97 === 96 ? 10 : 33 + (i % 90);
    const result = await client.sendMessage({
      sender: '<alice@a.test>',
      recipients: ['<bob@b.test>'],
      headers: [{ name: 'Subject', value: ' big' }],
      body,
      macros: { i: 'ABC123' },
    });
    const eom = result.endOfMessage;
    assert.ok(eom);
    assert.deepEqual(eom.verdict, { kind: 'continue' });
    assert.deepEqual(eom.modifications[0], { kind: 'addHeader', name: 'X-Stamp', value: ' stamped queue-id=ABC123' });
    const chunks = eom.modifications.slice(1).map((m) => (m as Extract<Response, { kind: 'replaceBody' }>).chunk);
    assert.deepEqual(chunks.map((c) => c.length), [65535, 65535, 65535, 200_000 + 2 + STAMP_FOOTER.length - 3 * 65535]);
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat([body, Buffer.from('\r\n'), STAMP_FOOTER]));
    await client.close();
    await server.close();
  });

  test('a body pacer is asked for every body byte past its threshold, and the body waits while it holds', async () => {
    const taken: number[] = [];
    let release!: () => void;
    let held = false;
    const pacer = {
      aboveBytes: 100_000,
      take(bytes: number): Promise<void> | undefined {
        taken.push(bytes);
        if (held) return undefined;
        held = true;
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', maxBufferedBody: 4096, spoolDirectory: dir, bodyPacer: pacer });
    const client = await MilterClient.connect(server.address);
    const body = Buffer.alloc(200_000, 'a');
    const sent = client.sendMessage({ sender: '<alice@a.test>', recipients: ['<bob@b.test>'], headers: [{ name: 'Subject', value: ' big' }], body, macros: { i: 'P1' } });
    let done = false;
    void sent.then(() => (done = true));
    // Chunks of 65 535: the second passes 100 000 (31 070 bytes over), and the pacer holds it.
    while (taken.length === 0) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(taken, [131_070 - 100_000]);
    assert.equal(done, false, 'the message waits while the pacer holds the body');
    assert.deepEqual([server.transactionsInFlight, server.largeBodiesInFlight], [1, 1]);
    release();
    const result = await sent;
    assert.deepEqual(taken, [31_070, 65_535, 200_000 - 3 * 65_535]);
    assert.deepEqual(result.endOfMessage?.verdict, { kind: 'continue' });
    const chunks = result.endOfMessage?.modifications.slice(1).map((m) => (m as Extract<Response, { kind: 'replaceBody' }>).chunk) ?? [];
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat([body, Buffer.from('\r\n'), STAMP_FOOTER]), 'the body arrives whole');
    // The next message starts again from zero: its first 100 000 bytes are not paced.
    taken.length = 0;
    await client.sendMessage({ sender: '<alice@a.test>', recipients: ['<bob@b.test>'], headers: [{ name: 'Subject', value: ' small' }], body: Buffer.alloc(90_000, 'b'), macros: { i: 'P2' } });
    assert.deepEqual(taken, []);
    assert.deepEqual([server.transactionsInFlight, server.largeBodiesInFlight], [0, 0]);
    await client.close();
    await server.close();
  });

  test('every end-of-message reply leaves in one write: one segment carries modifications and verdict', async () => {
    const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1' });
    const socket = await rawConnect(server.address);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write(OFFER);
    await waitFor(() => chunks.length === 1, 'negotiation reply');
    chunks.length = 0;
    socket.write(
      Buffer.concat([
        encodeCommand({ kind: 'macro', forCommand: 'E', macros: [['i', 'Q1']] }),
        encodeCommand({ kind: 'body', chunk: Buffer.from('hi\r\n') }),
      ]),
    );
    await waitFor(() => chunks.length === 1, 'body reply');
    chunks.length = 0;
    socket.write(encodeCommand({ kind: 'eom', chunk: Buffer.alloc(0) }));
    // Wait for the final reply, however many segments it takes, then count the segments.
    const decoder = new FrameDecoder({ maxFrameSize: 1 << 20 });
    const replies: Response[] = [];
    let read = 0;
    await waitFor(() => {
      for (; read < chunks.length; read++) replies.push(...decoder.push(chunks[read] as Buffer).map(decodeResponse));
      return replies.some((r) => r.kind === 'continue');
    }, 'the final end-of-message reply');
    assert.equal(chunks.length, 1, 'all replies arrived in one segment');
    assert.deepEqual(
      replies.map((r) => r.kind),
      ['addHeader', 'replaceBody', 'continue'],
    );
    socket.destroy();
    await server.close();
  });
});

describe('malformed input ends only the connection it came on', () => {
  const cases: Array<{ name: string; bytes: () => Buffer; code: string }> = [
    {
      name: 'oversize frame',
      bytes: () => {
        const header = Buffer.alloc(5);
        header.writeUInt32BE(64 * 1024 * 1024, 0);
        header.write('B', 4);
        return header;
      },
      code: 'frame-too-large',
    },
    { name: 'unknown command', bytes: () => Buffer.from([0, 0, 0, 1, 0x5a]), code: 'unknown-command' },
    { name: 'frame out of phase (body before negotiation)', bytes: () => encodeCommand({ kind: 'body', chunk: Buffer.from('x') }), code: 'out-of-phase' },
    { name: 'truncated frame', bytes: () => encodeCommand({ kind: 'helo', name: 'client.test' }).subarray(0, 7), code: 'truncated-frame' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const log = memoryLogger();
      const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', logger: log, maxFrameSize: 1024 * 1024 });
      const healthy = await MilterClient.connect(server.address);
      const bad = await rawConnect(server.address);
      bad.on('data', () => {});
      bad.on('error', () => {});
      if (c.code === 'truncated-frame') {
        bad.write(OFFER);
        bad.end(c.bytes());
      } else bad.write(c.bytes());
      await closed(bad);
      await waitFor(() => log.lines.some((l) => l.message === 'protocol error, closing connection'), 'the log line');
      const line = log.lines.find((l) => l.message === 'protocol error, closing connection');
      assert.equal(line?.level, 'warn');
      assert.equal(line?.fields.code, c.code);
      assert.equal(typeof line?.fields.conn, 'string');
      // The other connection still works.
      const result = await healthy.sendMessage({ sender: '<a@a.test>', recipients: ['<b@b.test>'], headers: [], body: Buffer.from('x\r\n') });
      assert.equal(result.endOfMessage?.verdict.kind, 'continue');
      await healthy.close();
      await server.close();
    });
  }

  test('an idle connection is closed after the idle timeout, with the reason logged', async () => {
    const log = memoryLogger();
    const server = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', idleTimeout: 200, logger: log });
    const reasons: string[] = [];
    server.on('connectionClosed', (_id: string, reason: string) => reasons.push(reason));
    const socket = await rawConnect(server.address);
    socket.on('data', () => {});
    socket.write(OFFER);
    await closed(socket);
    await waitFor(() => reasons.length === 1, 'the close event');
    assert.deepEqual(reasons, ['idle timeout']);
    await server.close();
  });
});

describe('slow filters and shutdown', () => {
  test('progress replies keep flowing while a slow end-of-message handler runs', async () => {
    // The handler finishes only once the MTA side has seen a progress reply: no race with the clock.
    let progressSeen: () => void = () => {};
    const seen = new Promise<void>((resolve) => (progressSeen = resolve));
    const slow = defineMilter({
      name: 'slow',
      actions: ['addHeaders'],
      createHandler: () => ({
        async endOfMessage() {
          await seen;
          return { verdict: ACCEPT, modifications: [addHeader('X-Slow', ' yes')] };
        },
      }),
    });
    const server = await MilterServer.start(slow, { listen: 'inet:0@127.0.0.1', progressInterval: 50 });
    const client = await MilterClient.connect(server.address);
    await client.mailFrom('<a@a.test>');
    await client.rcptTo('<b@b.test>');
    await client.body(Buffer.from('x\r\n'));
    const eom = await client.endOfMessage({}, { onProgress: () => progressSeen() });
    assert.ok(eom.progress >= 1, `progress replies: ${eom.progress}`);
    assert.deepEqual(eom.modifications, [{ kind: 'addHeader', name: 'X-Slow', value: ' yes' }]);
    assert.deepEqual(eom.verdict, { kind: 'accept' });
    await client.close();
    await server.close();
  });

  test('close() stops accepting, closes idle connections, lets an in-flight message finish', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inEndOfMessage = false;
    const gated = defineMilter({
      name: 'gated',
      actions: ['addHeaders'],
      createHandler: () => ({
        rcptTo: () => CONTINUE,
        async endOfMessage() {
          inEndOfMessage = true;
          await gate;
          return { verdict: ACCEPT, modifications: [addHeader('X-Finished', ' yes')] };
        },
      }),
    });
    const server = await MilterServer.start(gated, { listen: 'inet:0@127.0.0.1' });
    const address = server.address;
    const idle = await rawConnect(address);
    idle.on('data', () => {});
    idle.write(OFFER);
    const busy = await MilterClient.connect(address);
    const inFlight = busy.sendMessage({ sender: '<a@a.test>', recipients: ['<b@b.test>'], headers: [], body: Buffer.from('x\r\n') });
    await waitFor(() => inEndOfMessage, 'the handler to start');
    assert.equal(server.transactionsInFlight, 1);

    const closing = server.close(10_000);
    await closed(idle);
    await assert.rejects(MilterClient.connect(address, { connectTimeout: 2000 }));
    release();
    const result = await inFlight;
    assert.deepEqual(result.endOfMessage?.modifications, [{ kind: 'addHeader', name: 'X-Finished', value: ' yes' }]);
    assert.deepEqual(result.endOfMessage?.verdict, { kind: 'accept' });
    await closing;
    assert.equal(server.connectionCount, 0);
  });
});
