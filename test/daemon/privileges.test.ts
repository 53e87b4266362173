/**
 * Dropping root: a child process started as root switches to `nobody` and reports its ids; configured accounts
 * that do not exist are refused before anything changes; a non-root process changes nothing. The switching
 * tests need root (npm test runs as root in CI) and fail otherwise.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MilterLogger } from '../../milter/src/index.ts';
import { dropPrivileges, lookupGroup, lookupUser, PrivilegeError } from '../../src/daemon/privileges.ts';

const MODULE_URL = new URL('../../src/daemon/privileges.ts', import.meta.url).href;

/** Bound on the child process; it only loads one module and switches ids. */
const CHILD_TIMEOUT_MS = 20_000;

/** What the child reports. */
interface ChildReport {
  outcome: unknown;
  ids: number[];
  groups: number[];
  lines: string[];
}

/** Runs dropPrivileges(settings) in a fresh Node process (as `uid` when given) and returns what it reports. */
function runChild(settings: { user?: string; group?: string }, uid?: number): Promise<ChildReport> {
  const code = `
    const { dropPrivileges } = await import(${JSON.stringify(MODULE_URL)});
    const lines = [];
    const note = (level) => (message) => lines.push(level + ' ' + message);
    const log = { debug: note('debug'), info: note('info'), warn: note('warn'), error: note('error') };
    const outcome = await dropPrivileges(${JSON.stringify(settings)}, log);
    const ids = [process.getuid(), process.geteuid(), process.getgid(), process.getegid()];
    process.stdout.write(JSON.stringify({ outcome, ids, groups: process.getgroups(), lines }));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: CHILD_TIMEOUT_MS,
      ...(uid === undefined ? {} : { uid, gid: uid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      if (status !== 0) reject(new Error(`child exited with ${status ?? signal}: ${stderr}`));
      else resolve(JSON.parse(stdout) as ChildReport);
    });
  });
}

/** A logger that keeps its lines. */
function recordingLogger(): MilterLogger & { lines: string[] } {
  const lines: string[] = [];
  const note = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { lines, debug: note('debug'), info: note('info'), warn: note('warn'), error: note('error') };
}

function assertRoot(): void {
  assert.equal(process.getuid?.(), 0, 'this test switches user ids and must run as root (npm test runs as root in CI)');
}

describe('dropPrivileges as root', () => {
  it('switches a child process to nobody, its primary group and no other groups', async () => {
    assertRoot();
    const report = await runChild({ user: 'nobody' });
    assert.deepEqual(report, {
      outcome: { dropped: true, user: 'nobody', uid: 65534, gid: 65534 },
      ids: [65534, 65534, 65534, 65534],
      groups: [65534],
      lines: ['info running as an unprivileged account'],
    });
  });

  it('uses the configured group instead of the primary one', async () => {
    assertRoot();
    const report = await runChild({ user: 'nobody', group: 'daemon' });
    assert.deepEqual(report.outcome, { dropped: true, user: 'nobody', uid: 65534, gid: 1 });
    assert.deepEqual([report.ids, report.groups], [[65534, 65534, 1, 1], [1]]);
  });

  it('refuses a user that does not exist, and stays unchanged', async () => {
    assertRoot();
    const log = recordingLogger();
    await assert.rejects(dropPrivileges({ user: 'no-such-muse-user' }, log), (error: unknown) => {
      assert.ok(error instanceof PrivilegeError);
      assert.equal(error.code, 'PRIV_UNKNOWN_USER');
      assert.equal(error.message, 'user "no-such-muse-user" is not in /etc/passwd; refusing to run as root');
      return true;
    });
    assert.deepEqual([process.getuid?.(), log.lines], [0, []]);
  });

  it('refuses a group that does not exist, and stays unchanged', async () => {
    assertRoot();
    await assert.rejects(dropPrivileges({ user: 'nobody', group: 'no-such-muse-group' }, recordingLogger()), {
      name: 'PrivilegeError',
      code: 'PRIV_UNKNOWN_GROUP',
      message: 'group "no-such-muse-group" is not in /etc/group; refusing to run as root',
    });
    assert.equal(process.getuid?.(), 0);
  });

  it('stays root with a warning when no user is configured', async () => {
    assertRoot();
    const log = recordingLogger();
    assert.deepEqual(await dropPrivileges({}, log), { dropped: false, reason: 'no-user-configured' });
    assert.deepEqual(log.lines, ['warn running as root: set user in the configuration to run as an unprivileged account']);
  });
});

describe('dropPrivileges when not root', () => {
  it('changes nothing and says so', async () => {
    assertRoot();
    const report = await runChild({ user: 'daemon' }, 65534);
    assert.deepEqual(report, {
      outcome: { dropped: false, reason: 'not-root' },
      ids: [65534, 65534, 65534, 65534],
      groups: report.groups,
      lines: ['info not running as root: user and group settings are not applied'],
    });
  });
});

describe('account files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'muse-accounts-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const passwd = join(dir, 'passwd');
  const group = join(dir, 'group');
  writeFileSync(passwd, ['# comment:x:1:1', '+nis:x:2:2', 'root:x:0:0:root:/root:/bin/sh', 'muse:x:998:997::/var/lib/muse:/usr/sbin/nologin', 'broken:x:abc:1::/:/bin/false', ''].join('\n'));
  writeFileSync(group, ['root:x:0:', 'muse:x:997:', 'mail:x:8:muse', ''].join('\n'));

  it('finds users and groups by name', async () => {
    assert.deepEqual(await lookupUser('muse', passwd), { uid: 998, gid: 997 });
    assert.deepEqual(await lookupUser('root', passwd), { uid: 0, gid: 0 });
    assert.equal(await lookupGroup('mail', group), 8);
  });

  it('does not match comments, NIS entries, malformed entries or prefixes', async () => {
    for (const name of ['# comment', '+nis', 'nis', 'broken', 'mus', '']) assert.equal(await lookupUser(name, passwd), undefined, name);
    assert.equal(await lookupGroup('nobody', group), undefined);
  });

  it('uses the given files when dropping privileges', async () => {
    assertRoot();
    await assert.rejects(dropPrivileges({ user: 'nobody' }, recordingLogger(), { passwd, group }), {
      code: 'PRIV_UNKNOWN_USER',
      message: `user "nobody" is not in ${passwd}; refusing to run as root`,
    });
  });
});
