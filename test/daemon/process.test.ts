/**
 * The daemon as a process: configuration reload (in-process: a message keeps the rules it started with; as a
 * child: SIGHUP applies a changed file to the next message on a connection that stays open, and a broken file
 * keeps the old rules), SIGTERM while a message waits in end of message (it still gets its verdict, new
 * connections are refused, the process exits 0), the embedded default configuration (`npm start` on a fresh
 * machine: key created, DNS records and Postfix lines printed, milter served; a second start reuses the key), and
 * `check-config` exit codes.
 * Ports: ephemeral (the embedded-default test serves the milter on a unix socket in its temporary directory and
 * metrics on port 0; every Postfix instance gets a port picked free).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKey } from 'openpgp';
import { stringify } from 'yaml';
import { lookupGroup } from '../../src/daemon/privileges.ts';
import { formatZoneRecords, siteKeyZoneRecords } from '../../src/keys/index.ts';
import { MilterClient, type Response } from '../../milter/src/index.ts';
import { PostfixInstance } from '../support/postfix.ts';
import { freePort } from '../support/free-port.ts';
import { runCommand } from '../support/processes.ts';
import { sendMail } from '../support/smtp-client.ts';
import { SmtpSink } from '../support/smtp-sink.ts';
import { ChildMuse, CLI, REPO_ROOT, STARTUP_TIMEOUT_MS } from './support/child-muse.ts';
import { MuseZone } from './support/muse-zone.ts';
import {
  baseSettings,
  crlfBody,
  makeSite,
  mergeSettings,
  openSession,
  startMuse,
  transact,
  writeSiteKey,
  type Outcome,
  type Settings,
  type TestMessage,
  type TestSite,
} from './support/harness.ts';

const CONTINUE: Response = { kind: 'continue' };
const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' Bob <bob@b.test>' },
  { name: 'Subject', value: ' Status' },
  { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
];
const BODY = crlfBody('All systems nominal.');

function message(recipient: string, queueId: string): TestMessage {
  return { sender: '<alice@site.test>', recipients: [recipient], headers: HEADERS, body: BODY, macros: { i: queueId } };
}

/** The protection the message got, from the Muse-Protection field it gained. */
function protection(outcome: Outcome): string | undefined {
  const added = outcome.eom?.modifications.find((m) => m.kind === 'addHeader' && m.name === 'Muse-Protection');
  return added?.kind === 'addHeader' ? added.value.replace(/;.*$/, '').trim() : undefined;
}

let zone: MuseZone;
let ours: TestSite;
let bob: TestSite;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  zone = await MuseZone.start();
  [ours, bob] = await Promise.all([makeSite('site.test'), makeSite('b.test')]);
  zone.publish('b.test', [bob.bytes]);
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await zone?.close();
});

/** A data directory with the site key and a configuration file for a child daemon. */
async function childConfig(settings: Settings): Promise<{ dataDir: string; configPath: string; write: (settings: Settings | string) => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'muse-process-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  await writeSiteKey(dataDir, ours);
  const configPath = join(dataDir, 'muse.yaml');
  const base = baseSettings(dataDir, ours, zone.address, 1);
  const write = (next: Settings | string): Promise<void> => writeFile(configPath, typeof next === 'string' ? next : stringify(mergeSettings(base, next)));
  await write(settings);
  return { dataDir, configPath, write };
}

/** Starts `muse-milter run --config FILE` as a child; killed after the file if it still runs. */
async function runChild(configPath: string): Promise<ChildMuse> {
  const child = await ChildMuse.start(['run', '--config', configPath]);
  cleanups.push(() => child.kill());
  return child;
}

// The children are independent (own data directories, ports and zone domains): they run side by side.
/** SMTP port of the Postfix that uses the embedded default's printed lines. */

describe('muse-milter as a process', { concurrency: true }, () => {
  describe('reload in-process', () => {
    it('applies a new configuration to the next message; the message in progress keeps the rules it started with', async () => {
      const muse = await startMuse({ site: ours, dnsServer: zone.address });
      cleanups.push(() => muse.stop());
      const mta = await openSession(muse.address);
      try {
        // MAIL and RCPT happen before the reload, the rest after it.
        assert.equal((await mta.mailFrom('<alice@site.test>', [], { i: 'Q-HALF' })).reply.kind, 'continue');
        assert.equal((await mta.rcptTo('<bob@b.test>')).reply.kind, 'continue');
        await muse.rewriteConfig({ policy: { domains: { 'b.test': 'never' } } });
        assert.equal(await muse.daemon.reload(), true);
        assert.equal((await mta.data()).reply.kind, 'continue');
        for (const h of HEADERS) await mta.header(h.name, h.value);
        await mta.endOfHeaders();
        await mta.body(BODY);
        const eom = await mta.endOfMessage({ i: 'Q-HALF' });
        mta.abort();
        assert.equal(eom.verdict.kind, 'continue');
        assert.ok(eom.modifications.some((m) => m.kind === 'addHeader' && m.value.startsWith(' signed+encrypted;')), 'encrypted under the old rules');

        const next = await transact(mta, message('<bob@b.test>', 'Q-NEXT'));
        assert.equal(protection(next), 'signed', 'policy never from the new file');
      } finally {
        await mta.close();
      }
      const reloaded = muse.lines.find((l) => l.message === 'configuration reloaded');
      assert.deepEqual(reloaded && { level: reloaded.level, fingerprint: reloaded.fingerprint }, { level: 'info', fingerprint: ours.fingerprint });
    });
  });

  describe('signals', { concurrency: true }, () => {
    it('SIGHUP reloads the file for the next message on an open connection; a broken file keeps the old rules', async () => {
      const { configPath, write } = await childConfig({});
      const child = await runChild(configPath);
      const address = await child.milterAddress();
      const started = await child.waitForLog('muse-milter started');
      assert.equal(started.fingerprint, ours.fingerprint);

      const mta = await openSession(address);
      try {
        assert.equal(protection(await transact(mta, message('<bob@b.test>', 'Q-HUP1'))), 'signed+encrypted');

        await write({ policy: { domains: { 'b.test': 'never' } } });
        const seen = child.logLines().length;
        child.signal('SIGHUP');
        await child.waitForLog('configuration reloaded', 15_000, seen);
        assert.equal(protection(await transact(mta, message('<bob@b.test>', 'Q-HUP2'))), 'signed');

        const broken = `dataDirectory: /nonexistent\nsite:\n  domain: site.test\npolicy:\n  default: sometimes\n`;
        await write(broken);
        const before = child.logLines().length;
        child.signal('SIGHUP');
        const failed = await child.waitForLog('reload failed; the previous configuration stays in force', 15_000, before);
        assert.equal(failed.level, 'error');
        assert.match(String(failed.error), new RegExp(`^${configPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:5:12: policy\\.default: `));
        assert.equal(protection(await transact(mta, message('<bob@b.test>', 'Q-HUP3'))), 'signed', 'the previous (reloaded) rules stay');
      } finally {
        await mta.close();
      }
      child.signal('SIGTERM');
      assert.deepEqual(await child.exit(), { code: 0, signal: null });
      const summaries = child.logLines().filter((l) => l.message === 'message processed');
      assert.deepEqual(
        summaries.map((l) => [l.queueId, l.action]),
        [
          ['Q-HUP1', 'encrypted'],
          ['Q-HUP2', 'signed'],
          ['Q-HUP3', 'signed'],
        ],
      );
    });

    it('SIGTERM while a message waits in end of message: the message still gets its verdict, new connections are refused, exit 0', async () => {
      zone.publish('slow.test', [bob.bytes]);
      zone.misbehave('slow.test', 'stall');
      const { configPath } = await childConfig({
        dns: { timeout: '10s', overallTimeout: '12s' },
        milter: { progressInterval: '100ms', shutdownTimeout: '20s' },
      });
      const child = await runChild(configPath);
      const address = await child.milterAddress();
      await child.waitForLog('muse-milter started');

      const mta = await openSession(address);
      try {
        assert.equal((await mta.mailFrom('<alice@site.test>', [], { i: 'Q-TERM' })).reply.kind, 'continue');
        assert.equal((await mta.rcptTo('<sam@slow.test>')).reply.kind, 'continue');
        assert.equal((await mta.data()).reply.kind, 'continue');
        for (const h of HEADERS) await mta.header(h.name, h.value);
        await mta.endOfHeaders();
        await mta.body(BODY);
        let progressed: () => void = () => {};
        const firstProgress = new Promise<void>((resolve) => (progressed = resolve));
        const eom = mta.endOfMessage({ i: 'Q-TERM' }, { onProgress: () => progressed() });
        // The lookup started at RCPT is held by the DNS server, so end of message waits for it.
        await zone.stalledQuery('slow.test');
        const seen = child.logLines().length;
        child.signal('SIGTERM');
        const stopping = await child.waitForLog('stopping: draining in-flight messages', 15_000, seen);
        assert.equal(stopping.inFlight, 1);
        await assert.rejects(MilterClient.connect(address, { connectTimeout: 5_000 }), /ECONNREFUSED/);
        assert.equal(child.exitStatus, undefined);

        // The daemon reports that it is still working on the message (a progress reply) before the answer comes.
        await firstProgress;
        zone.release();
        const reply = await eom;
        assert.deepEqual(reply.verdict, CONTINUE);
        assert.ok(reply.progress > 0, 'the daemon was working on the message while it waited (progress replies)');
        assert.ok(reply.modifications.some((m) => m.kind === 'addHeader' && m.name === 'Muse-Protection' && m.value.startsWith(' signed+encrypted;')));
      } finally {
        zone.misbehave('slow.test', undefined);
        await mta.close();
      }
      assert.deepEqual(await child.exit(), { code: 0, signal: null });
      const lines = child.logLines();
      assert.deepEqual(
        lines.filter((l) => l.message === 'message processed').map((l) => [l.queueId, l.action]),
        [['Q-TERM', 'encrypted']],
      );
      assert.equal(lines.at(-1)?.message, 'muse-milter stopped');
    });
  });

  describe('embedded default configuration', () => {
    it('first run: creates the data directory (0710, group postfix), the key, prints the records, the Postfix lines and why a unix socket, serves on milter.sock (0660, group postfix); a second start reuses the key', async () => {
      const parent = await mkdtemp(join(tmpdir(), 'muse-default-'));
      cleanups.push(() => rm(parent, { recursive: true, force: true }));
      // Postfix's smtpd and cleanup (user postfix) pass through the temporary directory to reach the socket.
      await chmod(parent, 0o711);
      const dataDir = join(parent, 'data');
      const socket = join(dataDir, 'milter.sock');
      const env = { MUSE_DATA_DIR: dataDir, MUSE_DOMAIN: 'site.test', MUSE_METRICS_LISTEN: '127.0.0.1:0' };
      const keyFile = join(dataDir, 'keys', 'site.test.private.asc');
      const postfixGid = await lookupGroup('postfix');
      assert.ok(postfixGid !== undefined, 'the postfix group exists (Postfix is installed for this test)');

      const first = await ChildMuse.start(['run'], env);
      cleanups.push(() => first.kill());
      const listening = await first.waitForStderr(/run: milter listening on (\S+), metrics on http:\/\/127\.0\.0\.1:([1-9]\d*)\/metrics\n/, STARTUP_TIMEOUT_MS);
      assert.equal(listening[1], `unix:${socket}`);
      const socketInfo = await stat(socket);
      assert.deepEqual([socketInfo.isSocket(), socketInfo.mode & 0o777, socketInfo.gid], [true, 0o660, postfixGid]);
      const dataInfo = await stat(dataDir);
      assert.deepEqual([dataInfo.mode & 0o777, dataInfo.gid], [0o710, postfixGid]);
      const publicKey = await readKey({ armoredKey: await readFile(join(dataDir, 'keys', 'site.test.public.asc'), 'utf8') });
      const fingerprint = publicKey.getFingerprint().toUpperCase();
      const zoneText = formatZoneRecords(siteKeyZoneRecords(publicKey, { domain: 'site.test', policy: 'testing', maxAge: 604_800, ttl: 3600 }));
      assert.match(zoneText, /^_muse\.site\.test\. 3600 IN TXT \( "v=MUSE1; p=testing; ma=604800; k=/m);
      assert.match(zoneText, /^_muse\.site\.test\. 3600 IN KEY \( 512 2 253$/m);
      assert.match(zoneText, /^_muse\.site\.test\. 3600 IN OPENPGPKEY \($/m);
      const report =
        `First run: created the site key of site.test (${fingerprint})\n` +
        `  private key ${keyFile} (mode 0600)\n\n` +
        `Publish these records in the DNS zone of the site (also saved in ${join(dataDir, 'keys', 'site.test.zone')}):\n\n` +
        zoneText +
        '\nAttach Postfix with these lines in main.cf, then run "postfix reload":\n\n' +
        `smtpd_milters = unix:${socket}\n` +
        `non_smtpd_milters = unix:${socket}\n` +
        'milter_protocol = 6\n' +
        'milter_default_action = tempfail\n' +
        'milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}\n\n' +
        `This is a unix socket (mode 0660, group postfix (${postfixGid})) because whoever can connect to a milter can have mail decrypted ` +
        'and text signed with the site key, and a TCP socket lets every local user connect. Every directory above it must let that group ' +
        `through (g+x or o+x). Postfix reaches ${socket} only if smtpd and cleanup are not chrooted (chroot column "n" in master.cf). ` +
        'Debian chroots them in /var/spool/postfix: there, put the socket inside it (MUSE_DATA_DIR=/var/spool/postfix/muse-milter, ' +
        'or milter.listen: unix:/var/spool/postfix/muse-milter/milter.sock) and write unix:muse-milter/milter.sock instead.\n\n';
      assert.equal(first.stdout.slice(0, report.length), report);
      assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
      assert.equal(await readFile(join(dataDir, 'keys', 'site.test.zone'), 'utf8'), zoneText);

      const mta = await MilterClient.connect(`unix:${socket}`, { connectTimeout: 5_000, replyTimeout: 10_000 });
      assert.equal(mta.negotiation?.version, 6);
      await mta.close();
      const metrics = await fetch(`http://127.0.0.1:${listening[2]}/metrics`);
      assert.equal(metrics.status, 200);
      await metrics.body?.cancel();
      first.signal('SIGTERM');
      assert.deepEqual(await first.exit(), { code: 0, signal: null });

      const second = await ChildMuse.start(['run'], env);
      cleanups.push(() => second.kill());
      assert.equal((await second.waitForStderr(/run: milter listening on (\S+),/, STARTUP_TIMEOUT_MS))[1], `unix:${socket}`);
      assert.match(second.stderr, new RegExp(`^run: using the site key ${keyFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\n`));
      assert.doesNotMatch(second.stdout, /First run/);
      assert.equal((await second.waitForLog('muse-milter started')).fingerprint, fingerprint);
      const again = await MilterClient.connect(`unix:${socket}`, { connectTimeout: 5_000, replyTimeout: 10_000 });
      await again.close();

      // A real Postfix configured with exactly the lines the first run printed uses the milter: a message to
      // the site's own domain (local: never encrypted) goes through it and arrives unchanged.
      const printed = Object.fromEntries(
        report
          .slice(report.indexOf('"postfix reload":\n\n') + '"postfix reload":\n\n'.length, report.indexOf('\n\nThis is a unix socket'))
          .split('\n')
          .map((line) => line.split(' = ') as [string, string]),
      );
      assert.deepEqual(Object.keys(printed), ['smtpd_milters', 'non_smtpd_milters', 'milter_protocol', 'milter_default_action', 'milter_mail_macros']);
      const sink = await SmtpSink.start();
      cleanups.push(() => sink.close());
      const postfixPort = await freePort();
      const postfix = await PostfixInstance.start({
        smtpPort: postfixPort,
        settings: { ...printed, transport_maps: `inline:{ site.test=smtp:[127.0.0.1]:${sink.port} }` },
      });
      cleanups.push(() => postfix.stop());
      const message = Buffer.from('From: <alice@site.test>\r\nTo: <bob@site.test>\r\nSubject: through Postfix\r\nMessage-ID: <npm-start@site.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHello Bob\r\n');
      const sent = await sendMail({ port: postfixPort, from: 'alice@site.test', to: ['bob@site.test'], data: message });
      assert.equal(sent.final.code, 250);
      const [delivered] = await sink.waitForCount(1, 30_000);
      assert.ok(delivered?.data.subarray(delivered.data.indexOf('From: <alice@site.test>')).equals(message), 'delivered unchanged after the Received header');
      const line = await second.waitForLog('message processed');
      assert.equal(line.direction, 'outbound');
      assert.deepEqual(line.recipientDomains, ['site.test']);
      second.signal('SIGTERM');
      assert.deepEqual(await second.exit(), { code: 0, signal: null });
    });
  });

  describe('the socket line of examples/postfix/main.cf', () => {
    it('reaches the milter socket in the queue directory by its relative name, from smtpd (SMTP) and from cleanup (local submission)', async () => {
      const example = await readFile(join(REPO_ROOT, 'examples', 'postfix', 'main.cf'), 'utf8');
      const milters = example.split('\n').filter((line) => /^(non_)?smtpd_milters = /.test(line));
      assert.deepEqual(milters, ['smtpd_milters = unix:muse-milter/milter.sock', 'non_smtpd_milters = $smtpd_milters']);
      const sink = await SmtpSink.start();
      cleanups.push(() => sink.close());
      const examplePort = await freePort();
      const postfix = await PostfixInstance.start({
        smtpPort: examplePort,
        settings: {
          smtpd_milters: 'unix:muse-milter/milter.sock',
          non_smtpd_milters: '$smtpd_milters',
          milter_protocol: '6',
          milter_default_action: 'tempfail',
          transport_maps: `inline:{ site.test=smtp:[127.0.0.1]:${sink.port} }`,
        },
      });
      cleanups.push(() => postfix.stop());
      // As the README's install step makes it: muse-milter's own directory in the queue directory, group postfix.
      const socketDir = join(postfix.queueDir, 'muse-milter');
      await mkdir(socketDir);
      await chown(socketDir, 0, (await lookupGroup('postfix')) as number);
      await chmod(socketDir, 0o2750);
      const muse = await startMuse({ site: ours, dnsServer: zone.address, settings: { milter: { listen: `unix:${socketDir}/milter.sock` } } });
      cleanups.push(() => muse.stop());

      const smtp = Buffer.from('From: <alice@site.test>\r\nTo: <bob@site.test>\r\nSubject: over SMTP\r\nMessage-ID: <example-smtp@site.test>\r\n\r\nHello\r\n');
      assert.equal((await sendMail({ port: examplePort, from: 'alice@site.test', to: ['bob@site.test'], data: smtp })).final.code, 250);
      await sink.waitForCount(1, 30_000);
      const local = Buffer.from('From: <alice@site.test>\r\nTo: <bob@site.test>\r\nSubject: submitted locally\r\nMessage-ID: <example-local@site.test>\r\n\r\nHello\r\n');
      const submitted = await postfix.sendmailCommand(['-f', 'alice@site.test', 'bob@site.test'], local);
      assert.equal(submitted.code, 0, submitted.stderr);
      await sink.waitForCount(2, 30_000);
      // Both passed the milter: one summary each, in the order sent.
      assert.deepEqual(
        muse.summaries().map((line) => [line.direction, line.recipientDomains]),
        [
          ['outbound', ['site.test']],
          ['outbound', ['site.test']],
        ],
      );
    });
  });

  describe('check-config', { concurrency: true }, () => {
    const checkConfig = (path: string) => {
      const [node, ...nodeArgs] = CLI;
      return runCommand(node, [...nodeArgs, 'check-config', '--config', path], { cwd: REPO_ROOT, timeoutMs: STARTUP_TIMEOUT_MS });
    };

    it('exits 0 with the summary for a valid file', async () => {
      const { configPath } = await childConfig({});
      const result = await checkConfig(configPath);
      assert.deepEqual(result, {
        code: 0,
        signal: null,
        stdout: `${configPath}: valid\n  site site.test, key ${ours.fingerprint}\n  milter inet:0@127.0.0.1, policy default dns\n`,
        stderr:
          'check-config: warning: milter.listen inet:0@127.0.0.1 is a TCP socket: every local user can connect to it, play MTA, and have mail ' +
          'decrypted or text signed with the site key; prefer a unix socket (milter.listen: unix:PATH, mode 0660, group of the MTA)\n',
      });
    });

    it('exits 0 for a unix socket, warning while the postfix group cannot pass the directory above it', async () => {
      const { dataDir, configPath } = await childConfig({ milter: { listen: 'unix:SOCKET' } });
      const socket = join(dataDir, 'run', 'milter.sock');
      await writeFile(configPath, (await readFile(configPath, 'utf8')).replace('unix:SOCKET', `unix:${socket}`));
      const postfixGid = await lookupGroup('postfix');
      await mkdir(join(dataDir, 'run'), { mode: 0o700 });
      await chmod(dataDir, 0o700);
      const valid = `${configPath}: valid\n  site site.test, key ${ours.fingerprint}\n  milter unix:${socket}, policy default dns\n`;
      assert.deepEqual(await checkConfig(configPath), {
        code: 0,
        signal: null,
        stdout: valid,
        stderr:
          `check-config: warning: milter socket ${socket}: group ${postfixGid} cannot reach the socket: ${dataDir} is mode 0700 with group 0 (give it group ${postfixGid} and g+x, or o+x)\n` +
          `check-config: warning: milter socket ${socket}: group ${postfixGid} cannot reach the socket: ${join(dataDir, 'run')} is mode 0700 with group 0 (give it group ${postfixGid} and g+x, or o+x)\n`,
      });
      await chmod(dataDir, 0o711);
      await chown(join(dataDir, 'run'), 0, postfixGid as number);
      await chmod(join(dataDir, 'run'), 0o750);
      assert.deepEqual(await checkConfig(configPath), { code: 0, signal: null, stdout: valid, stderr: '' });
    });

    it('exits 1 for a key file group or others may read', async () => {
      const { dataDir, configPath } = await childConfig({});
      const keyFile = join(dataDir, 'keys', 'site.test.private.asc');
      await chmod(keyFile, 0o644);
      const result = await checkConfig(configPath);
      assert.deepEqual(result, {
        code: 1,
        signal: null,
        stdout: '',
        stderr: `muse-milter check-config: KEY_FILE_INSECURE: private key file ${keyFile} has mode 0644: group or others may read it; it should be 0600 (chmod 600 ${keyFile})\n`,
      });
    });

    it('exits 1 for a configuration error, with file, line and column', async () => {
      const { dataDir } = await childConfig({});
      const broken = join(dataDir, 'broken.yaml');
      await writeFile(broken, `dataDirectory: ${dataDir}\nsite:\n  domain: site.test\nmilter:\n  listen: tcp:8899\n`);
      const result = await checkConfig(broken);
      assert.deepEqual(result, {
        code: 1,
        signal: null,
        stdout: '',
        stderr: `muse-milter check-config: CONFIG_INVALID: ${broken}:5:11: milter.listen: socket specification 'tcp:8899' must start with unix:, local:, inet: or inet6:\n`,
      });
    });
  });
});
