/**
 * `milter.workers: 2`: `muse-milter run --config` as a real process tree — a primary and two workers sharing
 * one unix socket. Messages over several connections are handled by both workers (their pids in the summary
 * lines), each is signed and encrypted, the primary serves the workers' summed metrics, and SIGTERM sent to
 * the primary alone lets a message in progress finish before everything exits with status 0.
 *
 * Ports: none fixed (unix socket, DNS and metrics on ephemeral ports).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MilterClient, type EndOfMessageReply, type Transaction } from '../../milter/src/index.ts';
import { YOUNG_GENERATION_FLAG } from '../../src/daemon/young-generation.ts';
import { RR_TYPE } from '../../src/dns/index.ts';
import { buildSiteTxt, generateSiteKey, splitCharacterStrings } from '../../src/keys/index.ts';
import { startFakeDns, zoneHandler, type FakeDnsServer } from '../support/dns-servers.ts';
import { MALLOC_ARENAS, MALLOC_ARENAS_ENV } from '../../src/daemon/malloc-arenas.ts';
import { startDaemon, waitFor, type DaemonProcess } from '../support/processes.ts';
import { eccKey } from '../keys/test-keys.ts';

const SITE = 'sender.example.test';
const RECIPIENT_DOMAIN = 'receiver.example.test';
const MESSAGES = 8;

let dir: string;
let dns: FakeDnsServer;
let muse: DaemonProcess;
let address: string;
let metrics: string;

/** The message lines of the log (JSON on stdout). */
function logLines(): Array<Record<string, unknown>> {
  return muse
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function transaction(n: number): Transaction {
  return {
    client: { hostname: 'client.example.test', family: 'inet', port: 40000 + n, address: '127.0.0.1' },
    helo: 'client.example.test',
    sender: `<alice@${SITE}>`,
    recipients: [`<bob@${RECIPIENT_DOMAIN}>`],
    headers: [
      { name: 'From', value: ` alice@${SITE}` },
      { name: 'To', value: ` bob@${RECIPIENT_DOMAIN}` },
      { name: 'Subject', value: ` message ${n}` },
    ],
    body: Buffer.from(`Hello ${n}\r\n`),
    macros: { i: `Q${n}` },
  };
}

function assertEncrypted(reply: EndOfMessageReply | undefined, n: number): void {
  assert.ok(reply, `message ${n}: no end-of-message reply`);
  assert.equal(reply.verdict.kind, 'continue', `message ${n}`);
  // The messages have no Content-Type of their own, so it is added rather than changed.
  const contentType = reply.modifications.find((m) => (m.kind === 'addHeader' || m.kind === 'insertHeader' || m.kind === 'changeHeader') && m.name === 'Content-Type');
  assert.match(contentType !== undefined && 'value' in contentType ? contentType.value : JSON.stringify(reply.modifications.map((m) => m.kind)), /multipart\/encrypted/, `message ${n}`);
  assert.ok(reply.modifications.some((m) => m.kind === 'replaceBody'), `message ${n}: body replaced`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muse-workers-'));
  const recipient = await eccKey();
  dns = await startFakeDns(
    zoneHandler([
      {
        name: `_muse.${RECIPIENT_DOMAIN}`,
        type: RR_TYPE.TXT,
        data: splitCharacterStrings(buildSiteTxt({ policy: 'opportunistic', maxAge: 0, key: recipient.bytes })),
      },
    ]),
  );
  await mkdir(join(dir, 'keys'), { mode: 0o700 });
  await writeFile(join(dir, 'keys', 'site.asc'), (await generateSiteKey(SITE)).armor(), { mode: 0o600 });
  const config = join(dir, 'muse.yaml');
  await writeFile(
    config,
    [
      `dataDirectory: ${dir}`,
      'site:',
      `  domain: ${SITE}`,
      '  keyFile: keys/site.asc',
      'milter:',
      `  listen: unix:${join(dir, 'muse.sock')}`,
      '  workers: 2',
      '  shutdownTimeout: 20s',
      'pidFile: muse.pid',
      'dns:',
      `  servers: [${dns.address}]`,
      'metrics:',
      '  listen: 127.0.0.1:0',
      '',
    ].join('\n'),
  );
  // Started as bare node, without the muse-milter command's Node option and allocator setting.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== MALLOC_ARENAS_ENV));
  muse = await startDaemon(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config', config], {
    cwd: join(import.meta.dirname, '..', '..'),
    env,
  });
  const ready = await waitFor(
    () => {
      if (muse.exitStatus() !== undefined) throw new Error(`muse-milter exited:\n${muse.output()}`);
      return /run: milter listening on (\S+) \(2 worker processes\), metrics on http:\/\/(\S+)\/metrics/.exec(muse.output()) ?? undefined;
    },
    { timeoutMs: 60_000, what: 'muse-milter with two workers listening' },
  );
  address = ready[1] as string;
  metrics = ready[2] as string;
});

after(async () => {
  await muse?.stop(30_000);
  await dns?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('milter.workers: 2', () => {
  it('spreads connections over both workers, which sign and encrypt', async () => {
    // A connection per message: the primary hands new connections to the workers in turn.
    for (let n = 1; n <= MESSAGES; n++) {
      const client = await MilterClient.connect(address, { replyTimeout: 30_000 });
      try {
        assertEncrypted((await client.sendMessage(transaction(n))).endOfMessage, n);
      } finally {
        await client.close();
      }
    }
    const summaries = await waitFor(
      () => {
        const lines = logLines().filter((line) => line.message === 'message processed');
        return lines.length === MESSAGES ? lines : undefined;
      },
      { timeoutMs: 10_000, what: `${MESSAGES} summary lines` },
    );
    assert.deepEqual(new Set(summaries.map((line) => line.action)), new Set(['encrypted']));
    const pids = new Set(summaries.map((line) => line.pid));
    const workers = new Set(summaries.map((line) => line.worker));
    assert.equal(pids.size, 2, `messages handled by ${[...pids].join(', ')}`);
    assert.deepEqual([...workers].sort(), [1, 2]);
    assert.ok(!pids.has(muse.pid), 'the primary handles no mail');
    // The primary was started without the young-generation cap and the arena cap: it says so, and gives both to
    // its workers.
    assert.match(muse.output(), new RegExp(`run: warning: Node was started without ${YOUNG_GENERATION_FLAG}: `));
    assert.match(muse.output(), new RegExp(`run: warning: ${MALLOC_ARENAS_ENV} is not set: `));
    for (const pid of pids) {
      const argv = (await readFile(`/proc/${String(pid)}/cmdline`, 'utf8')).split('\0');
      assert.equal(argv[1], YOUNG_GENERATION_FLAG, argv.join(' '));
      const environ = (await readFile(`/proc/${String(pid)}/environ`, 'utf8')).split('\0');
      assert.ok(environ.includes(`${MALLOC_ARENAS_ENV}=${MALLOC_ARENAS}`), `worker ${String(pid)} has ${MALLOC_ARENAS_ENV}=${MALLOC_ARENAS}`);
    }
    assert.ok(!(await readFile(`/proc/${muse.pid}/cmdline`, 'utf8')).split('\0').includes(YOUNG_GENERATION_FLAG));
  });

  it('serves the summed metrics of both workers from the primary', async () => {
    const text = await (await fetch(`http://${metrics}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('muse_messages_total{') && l.includes('action="encrypted"'));
    assert.equal(line?.split(' ').at(-1), String(MESSAGES), line);
  });

  it('writes the primary\'s pid to pidFile: the process that relays signals to the workers', async () => {
    assert.equal(await readFile(join(dir, 'muse.pid'), 'utf8'), `${muse.pid}\n`);
  });

  it('drains a message in progress on SIGTERM to the primary, then exits 0', async () => {
    const message = transaction(99);
    const client = await MilterClient.connect(address, { replyTimeout: 30_000 });
    await client.connect(message.client!, message.macros);
    await client.helo(message.helo!, message.macros);
    await client.mailFrom(message.sender, [], message.macros);
    await client.rcptTo(message.recipients[0] as string, [], message.macros);
    await client.data(message.macros);
    for (const header of message.headers) await client.header(header.name, header.value, message.macros);
    await client.endOfHeaders(message.macros);
    await client.body(message.body, message.macros);

    process.kill(muse.pid, 'SIGTERM');
    await waitFor(() => (logLines().filter((line) => line.message === 'stopping: draining in-flight messages').length === 2 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'both workers draining',
    });
    assert.equal(muse.exitStatus(), undefined, 'still running while a message is in progress');
    assertEncrypted(await client.endOfMessage(message.macros), 99);
    client.abort();
    await client.close();

    const status = await Promise.race([muse.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000))]);
    assert.deepEqual(status, { code: 0, signal: null }, muse.output());
    assert.equal(existsSync(join(dir, 'muse.pid')), false, 'pid file removed');
    const stopped = logLines().filter((line) => line.message === 'muse-milter stopped');
    assert.deepEqual(stopped.map((line) => line.role ?? `worker ${String(line.worker)}`).sort(), ['primary', 'worker 1', 'worker 2']);
  });
});

describe('milter.workers: 2, a worker that cannot start', () => {
  it('ends the whole daemon with exit status 1 and says why', async () => {
    const broken = join(dir, 'broken');
    await mkdir(broken);
    const config = join(broken, 'muse.yaml');
    await writeFile(
      config,
      [`dataDirectory: ${broken}`, 'site:', `  domain: ${SITE}`, `  keyFile: ${join(broken, 'missing.asc')}`, 'milter:', `  listen: unix:${join(broken, 'muse.sock')}`, '  workers: 2', 'metrics:', '  enabled: false', ''].join('\n'),
    );
    const child = await startDaemon(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config', config], { cwd: join(import.meta.dirname, '..', '..') });
    try {
      const status = await Promise.race([child.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 60_000))]);
      assert.deepEqual(status, { code: 1, signal: null }, child.output());
      assert.match(child.output(), /KEY_FILE_UNREADABLE: cannot read .*missing\.asc/);
      assert.match(child.output(), /muse-milter run: worker 1 exited during start-up \(exit status 1\)/);
    } finally {
      await child.stop(5_000);
    }
  });
});
