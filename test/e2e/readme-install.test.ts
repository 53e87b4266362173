/**
 * README.md's Install and Configure sections, followed step by step as root, with the paths moved under a test
 * directory and a test-unique account name: useradd, install -d, genkey --owner, the template configuration with
 * site.domain set, check-config, then `muse-milter run` started as root, switching to the account. Then what the
 * administrator who first met these problems did: a 2 MiB message encrypted to the site arrives (its body goes to
 * the spool, which the account must be able to write), SIGHUP reloads (the account re-reads configuration, keys
 * and marker secret), and the message arrives again. And `lookup --config` tells what the milter then does for a
 * domain under policy.domains.
 *
 * The MTA side is the milter protocol client over the daemon's real socket; DNS is a fake server on an ephemeral
 * port publishing the sending site's key.
 * Ports: the block at 13300 (test/e2e/topology.ts): +0 milter, +1 metrics, +2 re-injection (never connected).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { editConfigText, readConfigTemplate } from '../../src/config/index.ts';
import { applyHeaderEdits, protectOutbound } from '../../src/engine/index.ts';
import { lookupUser } from '../../src/daemon/privileges.ts';
import { loadSitePrivateKey } from '../../src/keys/index.ts';
import { MuseZone } from '../daemon/support/muse-zone.ts';
import { LOCAL_CLIENT, makeSite, REMOTE_CLIENT, sendOne, type TestSite } from '../daemon/support/harness.ts';
import { makeInstanceDir, removeInstanceDir } from '../support/instance-dir.ts';
import { runCommand, waitFor, type CommandResult } from '../support/processes.ts';
import { MuseDaemon } from './muse-daemon.ts';
import { freePort } from '../support/free-port.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Picked free by the kernel, so parallel test files and a developer's own daemon never collide. */
const PORTS = { milter: await freePort(), metrics: await freePort(), reinject: await freePort() };
/** Unique per run, so parallel runs and leftovers never collide; at most 32 characters (useradd). */
const ACCOUNT = `muse-t${process.pid}`;
const DOMAIN = 'site.test';

let base = '';
let dataDir = '';
let keyDir = '';
let configPath = '';
let zone: MuseZone;
let siteA: TestSite;
let daemon: MuseDaemon | undefined;
let accountCreated = false;

/** `muse-milter ARGS` as the administrator types it (from the checkout, through tsx). */
function museMilter(...args: string[]): Promise<CommandResult> {
  return runCommand(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, timeoutMs: 60_000 });
}

async function must(command: string, args: string[]): Promise<void> {
  const result = await runCommand(command, args);
  assert.equal(result.code, 0, `${command} ${args.join(' ')}: ${result.stderr}`);
}

before(async () => {
  assert.equal(process.geteuid?.(), 0, 'this test follows README.md as root');
  base = makeInstanceDir('readme-install');
  dataDir = join(base, 'var/lib/muse-milter');
  keyDir = join(base, 'etc/muse-milter/keys');
  configPath = join(base, 'etc/muse-milter/muse.yaml');
  zone = await MuseZone.start();
  siteA = await makeSite('a.test');
  zone.publish('a.test', [siteA.bytes]);
});

after(async () => {
  await daemon?.kill();
  await zone?.close();
  if (accountCreated) await runCommand('userdel', [ACCOUNT]);
  if (base !== '') removeInstanceDir(base);
});

describe('README.md, Install and Configure, followed as written', () => {
  let ourKey: Awaited<ReturnType<typeof loadSitePrivateKey>>;

  it('installs: account, directories, site key owned by the account', async () => {
    // useradd --system --home-dir /var/lib/muse-milter --shell /usr/sbin/nologin muse-milter
    await must('useradd', ['--system', '--home-dir', dataDir, '--shell', '/usr/sbin/nologin', ACCOUNT]);
    accountCreated = true;
    // install -d -o muse-milter -m 0700 /var/lib/muse-milter /etc/muse-milter/keys
    await must('install', ['-d', '-o', ACCOUNT, '-m', '0700', dataDir, keyDir]);
    // muse-milter genkey --domain example.org --key-dir /etc/muse-milter/keys --policy testing --owner muse-milter
    const made = await museMilter('genkey', '--domain', DOMAIN, '--key-dir', keyDir, '--policy', 'testing', '--owner', ACCOUNT);
    assert.equal(made.code, 0, made.stderr);
    const keyFile = join(keyDir, `${DOMAIN}.private.asc`);
    const info = statSync(keyFile);
    const account = await lookupUser(ACCOUNT);
    assert.deepEqual([info.uid, info.gid, info.mode & 0o777], [account?.uid, account?.gid, 0o600]);
    ourKey = await loadSitePrivateKey(keyFile, 'refuse');
  });

  it('configures from the template and check-config, run as root, checks as the account', async () => {
    // Copy examples/muse.yaml, set site.domain; here also the paths moved under the test directory, the test's
    // ports and resolver, the account, and one policy.domains entry for the lookup below.
    const config = editConfigText(await readConfigTemplate(), [
      { path: ['dataDirectory'], value: dataDir },
      { path: ['site', 'domain'], value: DOMAIN },
      { path: ['site', 'keyFile'], value: join(keyDir, `${DOMAIN}.private.asc`) },
      { path: ['milter', 'listen'], value: `inet:127.0.0.1:${PORTS.milter}` },
      { path: ['dns', 'servers'], value: [zone.address] },
      { path: ['policy', 'domains'], value: { 'partner.test': 'required' } },
      { path: ['mixedRecipients', 'reinject', 'port'], value: PORTS.reinject },
      { path: ['metrics', 'listen'], value: `127.0.0.1:${PORTS.metrics}` },
      { path: ['user'], value: ACCOUNT },
      { path: ['group'], value: ACCOUNT },
      { path: ['pidFile'], value: join(base, 'muse-milter.pid') },
    ]);
    writeFileSync(configPath, config, { mode: 0o644 });
    const checked = await museMilter('check-config', '--config', configPath);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, new RegExp(`\\n {2}runs as ${ACCOUNT} \\(\\d+:\\d+\\), which can use every file it needs\\n$`));
  });

  it('runs as root, switches to the account, takes a 2 MiB encrypted message, reloads on SIGHUP and takes it again', async () => {
    daemon = new MuseDaemon({ configPath, logPath: join(base, 'milter.log'), milterPort: PORTS.milter, name: 'muse-milter (README install)' });
    await daemon.start();
    // What the daemon created as root now belongs to the account.
    const account = statSync(dataDir);
    for (const path of [join(dataDir, 'marker-secret'), join(dataDir, 'spool'), join(dataDir, 'reinjected')]) {
      assert.equal(statSync(path).uid, account.uid, `${path} belongs to ${ACCOUNT}`);
    }
    const original = [
      { name: 'From', value: ' Alice <alice@a.test>' },
      { name: 'To', value: ` Bob <bob@${DOMAIN}>` },
      { name: 'Subject', value: ' Large' },
      { name: 'Message-ID', value: ' <large@a.test>' },
      { name: 'MIME-Version', value: ' 1.0' },
      { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
    ];
    const line = `${'x'.repeat(76)}\r\n`;
    const body = Buffer.from(line.repeat(Math.ceil((2 * 1024 * 1024) / line.length)));
    const protectedMessage = await protectOutbound({ headers: original, body, siteKey: siteA.privateKey, recipientKeys: [ourKey.publicKey], subjectPlaceholder: '...', headerEncoding: 'latin1' });
    if (protectedMessage.kind !== 'protected') throw new Error('not protected');
    const encrypted = { headers: applyHeaderEdits(original, protectedMessage.headerEdits), body: await protectedMessage.body.toBuffer() };
    assert.ok(encrypted.body.length > 2 * 1024 * 1024);
    const send = async (queueId: string) => {
      const outcome = await sendOne(
        `inet:127.0.0.1:${PORTS.milter}`,
        { sender: '<alice@a.test>', recipients: [`<bob@${DOMAIN}>`], headers: encrypted.headers, body: encrypted.body, macros: { i: queueId, '{daemon_name}': 'INBOUND' } },
        REMOTE_CLIENT,
      );
      assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' }, `${queueId}: ${JSON.stringify(outcome.eom)}`);
      assert.ok(outcome.delivered?.body.equals(body), `${queueId}: the original body, byte for byte`);
    };
    await send('Q-BEFORE');

    const pid = daemon.pid;
    assert.ok(pid !== undefined);
    // Written as root before the switch, for init scripts (README.md, "Without systemd").
    assert.equal(readFileSync(join(base, 'muse-milter.pid'), 'utf8'), `${pid}\n`);
    process.kill(pid, 'SIGHUP');
    const log = join(base, 'milter.log');
    const reloaded = await waitFor(
      () => {
        const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
        return lines.find((l) => l['message'] === 'configuration reloaded' || l['message'] === 'reload failed; the previous configuration stays in force');
      },
      { timeoutMs: 30_000, what: 'the reload to be logged' },
    );
    assert.equal(reloaded['message'], 'configuration reloaded', JSON.stringify(reloaded));
    await send('Q-AFTER');
    const summaries = daemon.messageLines().map((l) => [l['queueId'], l['direction'], l['action']]);
    assert.deepEqual(summaries, [
      ['Q-BEFORE', 'inbound', 'decrypted'],
      ['Q-AFTER', 'inbound', 'decrypted'],
    ]);
  });

  it('lookup --config tells what the daemon does for a domain under policy.domains', async () => {
    const looked = await museMilter('lookup', 'partner.test', '--config', configPath);
    assert.equal(looked.code, 0, looked.stderr);
    const said = /\nmilter: +(.*) \[/.exec(looked.stdout)?.[1];
    assert.equal(said, 'defer 451 4.7.1 Encryption to partner.test is required and no key was found (no usable site key published)');
    const outcome = await sendOne(
      `inet:127.0.0.1:${PORTS.milter}`,
      { sender: `<carol@${DOMAIN}>`, recipients: ['<dave@partner.test>'], headers: [{ name: 'From', value: ` <carol@${DOMAIN}>` }, { name: 'Subject', value: ' hi' }], body: Buffer.from('hi\r\n'), macros: { i: 'Q-PARTNER', '{daemon_name}': 'ORIGINATING' } },
      LOCAL_CLIENT,
    );
    const refused = [...outcome.rcpt, ...(outcome.eom === undefined ? [] : [outcome.eom.verdict])].find((r) => r.kind !== 'continue');
    assert.deepEqual(refused, { kind: 'replyCode', reply: '451 4.7.1 Encryption to partner.test is required and no key was found' });
  });
});
