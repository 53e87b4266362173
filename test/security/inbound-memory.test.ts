/**
 * Memory exhaustion by a large inbound message: a 50 MiB message encrypted to our key used to be held three times
 * over while it was opened (the body, its dearmored copy, the plaintext). It is now opened as it streams, and the
 * daemon's peak RSS above idle stays within the stated budget (docs/security.md §7: 64 MiB above idle for a
 * 50 MiB message). The daemon runs as a process of its own (one worker,
 * started with the command's Node options) so that its memory is measured alone; the peak is the kernel's
 * high-water mark (VmHWM), reset once the daemon is idle, so no sampling and no timing is involved. The delivered
 * body is checked byte for byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { applyHeaderEdits, protectOutbound, type OutputBody } from '../../src/engine/index.ts';
import { ChildMuse } from '../daemon/support/child-muse.ts';
import { baseSettings, makeSite, mergeSettings, openSession, REMOTE_CLIENT, writeSiteKey, type TestSite } from '../daemon/support/harness.ts';
import { MuseZone } from '../daemon/support/muse-zone.ts';

const MIB = 1024 * 1024;
/** Content that makes a message of just under 50 MiB once encrypted and armored (limits.maxMessageSize: 50 MiB). */
const SIZE = 36 * MIB;
/** docs/security.md §7. */
const BUDGET_MIB = 64;
/**
 * The budget itself, about twice what is measured (23 to 34 MiB, also with both cores busy); three copies of the
 * message would be far above it, and so would the stream's garbage without paced collections (45 to 77 MiB).
 */
const ALLOWED_MIB = BUDGET_MIB;
const CHUNK = 65535;
const TIMEOUT = { timeout: 300_000 };

let zone: MuseZone;
let ours: TestSite;
let siteA: TestSite;
let dir: string;
let child: ChildMuse | undefined;

before(async () => {
  zone = await MuseZone.start();
  [ours, siteA] = await Promise.all([makeSite('site.test'), makeSite('a.test')]);
  zone.publish('a.test', [siteA.bytes]);
  dir = await mkdtemp(join(tmpdir(), 'muse-inbound-memory-'));
});

after(async () => {
  await child?.kill();
  await zone?.close();
  await rm(dir, { recursive: true, force: true });
});

const ORIGINAL = [
  { name: 'From', value: ' Alice <alice@a.test>' },
  { name: 'To', value: ' Bob <bob@site.test>' },
  { name: 'Subject', value: ' Big' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' application/octet-stream' },
  { name: 'Content-Transfer-Encoding', value: ' base64' },
];

/** Base64-like lines of digests (barely compressible), made chunk by chunk, hashed as they go. */
async function* bigBody(size: number, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  let counter = 0;
  for (let sent = 0; sent < size; ) {
    const lines: string[] = [];
    for (let i = 0; i < 1024; i++) lines.push(createHash('sha512').update(String(counter++)).digest('base64').slice(0, 76));
    const chunk = Buffer.from(lines.join('\r\n') + '\r\n').subarray(0, size - sent);
    hash.update(chunk);
    sent += chunk.length;
    yield chunk;
  }
}

/** Site A's milter output for `size` bytes: headers and the encrypted body (in a spool file). */
async function fromSiteA(size: number, hash: ReturnType<typeof createHash>): Promise<{ headers: Array<{ name: string; value: string }>; body: OutputBody }> {
  const result = await protectOutbound({ headers: ORIGINAL, body: bigBody(size, hash), siteKey: siteA.privateKey, recipientKeys: [ours.publicKey], headerEncoding: 'latin1', spool: { dir } });
  if (result.kind !== 'protected') assert.fail(result.kind);
  return { headers: applyHeaderEdits(ORIGINAL, result.headerEdits), body: result.body };
}

/** Sends one message from a remote MTA; returns the Authentication-Results value and the hash of the new body. */
async function send(address: string, message: { headers: Array<{ name: string; value: string }>; body: OutputBody }, queueId: string): Promise<{ results: string; bodyHash: string; bodyBytes: number }> {
  const mta = await openSession(address, REMOTE_CLIENT);
  try {
    assert.equal((await mta.mailFrom('<alice@a.test>', [], { i: queueId })).reply.kind, 'continue');
    assert.equal((await mta.rcptTo('<bob@site.test>')).reply.kind, 'continue');
    assert.equal((await mta.data()).reply.kind, 'continue');
    for (const h of message.headers) await mta.header(h.name, h.value);
    await mta.endOfHeaders();
    for await (const chunk of message.body.chunks()) {
      for (let at = 0; at < chunk.length; at += CHUNK) assert.equal((await mta.body(chunk.subarray(at, at + CHUNK))).reply.kind, 'continue');
    }
    const eom = await mta.endOfMessage({ i: queueId });
    mta.abort();
    assert.equal(eom.verdict.kind, 'continue', JSON.stringify(eom.verdict));
    const hash = createHash('sha256');
    let bodyBytes = 0;
    let results = '';
    for (const m of eom.modifications) {
      if (m.kind === 'replaceBody') {
        hash.update(m.chunk);
        bodyBytes += m.chunk.length;
      }
      if (m.kind === 'insertHeader' && m.name === 'Authentication-Results') results = m.value;
    }
    return { results, bodyHash: hash.digest('hex'), bodyBytes };
  } finally {
    await mta.close();
  }
}

/** A /proc/PID/status field in MiB. */
async function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (match === null) assert.fail(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

test('a 50 MiB inbound message (36 MiB of content) is opened with peak RSS growth within the budget', TIMEOUT, async () => {
  const dataDir = join(dir, 'data');
  await writeSiteKey(dataDir, ours);
  const configPath = join(dataDir, 'muse.yaml');
  await writeFile(configPath, stringify(mergeSettings(baseSettings(dataDir, ours, zone.address, 1), { milter: { spoolDirectory: join(dataDir, 'spool') } })));
  child = await ChildMuse.start(['run', '--config', configPath]);
  const address = await child.milterAddress();

  // Idle: after a small and a 2 MiB inbound message, so every code path is loaded, and both opening threads have
  // started (a large message is opened in the background lane, docs/security.md §7).
  for (const [size, queueId] of [[64 * 1024, 'Q-SMALL'], [2 * MIB, 'Q-WARM-LARGE']] as const) {
    const warmHash = createHash('sha256');
    const warmMessage = await fromSiteA(size, warmHash);
    const warm = await send(address, warmMessage, queueId);
    await warmMessage.body.dispose();
    assert.match(warm.results, /x-muse=pass/);
    assert.equal(warm.bodyHash, warmHash.digest('hex'));
  }

  const sentHash = createHash('sha256');
  const big = await fromSiteA(SIZE, sentHash);
  assert.ok(big.body.size > 48 * MIB && big.body.size < 50 * MIB, String(big.body.size));
  const idle = await statusMiB(child.pid, 'VmRSS');
  // Resets the peak to the current RSS (proc(5), clear_refs).
  await writeFile(`/proc/${child.pid}/clear_refs`, '5');
  const received = await send(address, big, 'Q-BIG');
  await big.body.dispose();
  const peak = await statusMiB(child.pid, 'VmHWM');

  assert.match(received.results, /x-muse=pass/);
  assert.equal(received.bodyBytes, SIZE);
  assert.equal(received.bodyHash, sentHash.digest('hex'));
  const growth = peak - idle;
  process.stdout.write(`# 50 MiB inbound: idle ${idle.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB, growth ${growth.toFixed(1)} MiB\n`);
  assert.ok(growth < ALLOWED_MIB, `peak RSS growth ${growth.toFixed(1)} MiB, budget ${BUDGET_MIB} MiB`);
});
