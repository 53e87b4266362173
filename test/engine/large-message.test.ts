/**
 * A message of tens of MiB, fed in milter-sized chunks: outbound streams it through encryption
 * into a spool file, inbound opens the spooled result, and the body comes back identical.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { applyHeaderEdits } from '../../src/engine/header-edits.ts';
import { openInbound } from '../../src/engine/inbound.ts';
import { protectOutbound } from '../../src/engine/outbound.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { FIXED_NOW, testKeys } from './fixtures.ts';

const MIB = 1024 * 1024;
const SIZE = 24 * MIB;
/** The largest body chunk a milter receives (SMFIC_BODY is at most 64 KiB). */
const CHUNK = 65535;

/** Deterministic base64-like lines, generated chunk by chunk so the input never exists whole. */
async function* body(hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  const line = Buffer.from('QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n');
  const block = Buffer.alloc(CHUNK);
  for (let i = 0; i < block.length; i++) block[i] = line[i % line.length] as number;
  for (let sent = 0; sent < SIZE; sent += CHUNK) {
    const chunk = block.subarray(0, Math.min(CHUNK, SIZE - sent));
    hash.update(chunk);
    yield chunk;
  }
}

const spoolDir = await mkdtemp(join(tmpdir(), 'muse-large-test-'));
after(() => rm(spoolDir, { recursive: true, force: true }));

test('24 MiB streams through encryption into a spool file and opens identically', { timeout: 120_000 }, async () => {
  const keys = await testKeys();
  const headers: HeaderField[] = [
    { name: 'From', value: ' alice@sender.test' },
    { name: 'To', value: ' bob@receiver.test' },
    { name: 'Subject', value: ' big' },
    { name: 'Content-Type', value: ' application/octet-stream' },
    { name: 'Content-Transfer-Encoding', value: ' base64' },
  ];
  const sentHash = createHash('sha256');
  const outbound = await protectOutbound({
    headers,
    body: body(sentHash),
    siteKey: keys.senderSite.secret,
    recipientKeys: [keys.receiverSite.public],
    now: () => FIXED_NOW,
    spool: { dir: spoolDir },
  });
  if (outbound.kind !== 'protected') assert.fail(outbound.kind);
  assert.equal(outbound.body.spooled, true);
  assert.ok(outbound.body.size > SIZE);
  const inbound = await openInbound({
    headers: applyHeaderEdits(headers, outbound.headerEdits),
    body: outbound.body.chunks(),
    siteKeys: [keys.receiverSite.secret],
    senderKeys: async () => ({ keys: [keys.senderSite.public], dnssec: true }),
    authservId: 'mx.receiver.test',
    localDomains: ['receiver.test'],
    now: () => FIXED_NOW,
  });
  await outbound.body.dispose();
  assert.deepEqual(await readdir(spoolDir), []);
  if (inbound.kind !== 'opened') assert.fail(inbound.kind);
  assert.equal(inbound.verdict.result, 'pass');
  assert.equal(inbound.body.size, SIZE);
  const receivedHash = createHash('sha256');
  for await (const chunk of inbound.body.chunks()) receivedHash.update(chunk);
  assert.equal(receivedHash.digest('hex'), sentHash.digest('hex'));
});
