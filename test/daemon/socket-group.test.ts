/**
 * The milter socket's group (`milter.socketGroup` and its default) from account files the test writes, for root and
 * non-root processes; and the directory checks on the way to the socket, on directories the test creates as root.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseSocketGroup, socketPathProblems, type ProcessIds } from '../../src/daemon/socket-group.ts';

const dir = mkdtempSync(join(tmpdir(), 'muse-socket-group-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Account files: users muse (1001:1001); groups muse (1001), mail (8), and postfix (105) when `postfix`. */
function accounts(postfix: boolean): { passwd: string; group: string } {
  const name = postfix ? 'with-postfix' : 'without-postfix';
  const passwd = join(dir, `${name}.passwd`);
  const group = join(dir, `${name}.group`);
  writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/sh\nmuse:x:1001:1001::/var/lib/muse:/usr/sbin/nologin\n');
  writeFileSync(group, `root:x:0:\nmail:x:8:\nmuse:x:1001:\n${postfix ? 'postfix:x:105:\n' : ''}`);
  return { passwd, group };
}

const ROOT: ProcessIds = { euid: 0, gid: 0, groups: [0] };
const MEMBER: ProcessIds = { euid: 1001, gid: 1001, groups: [1001, 105] };
const OUTSIDER: ProcessIds = { euid: 1001, gid: 1001, groups: [1001] };

describe('chooseSocketGroup', () => {
  it('takes a configured group that exists, and refuses one that does not', async () => {
    assert.deepEqual(await chooseSocketGroup('mail', {}, accounts(true), ROOT), { gid: 8, description: 'mail (8)' });
    const files = accounts(false);
    await assert.rejects(chooseSocketGroup('postfix', {}, files, ROOT), {
      name: 'PrivilegeError',
      code: 'PRIV_UNKNOWN_GROUP',
      message: `milter.socketGroup "postfix" is not in ${files.group}`,
    });
  });

  it('defaults to postfix when the group exists and the process is root or a member', async () => {
    assert.deepEqual(await chooseSocketGroup(undefined, { user: 'muse' }, accounts(true), ROOT), { gid: 105, description: 'postfix (105)' });
    assert.deepEqual(await chooseSocketGroup(undefined, {}, accounts(true), MEMBER), { gid: 105, description: 'postfix (105)' });
  });

  it('leaves the group to the bind, with a warning, when postfix exists but the process may not use it', async () => {
    assert.deepEqual(await chooseSocketGroup(undefined, {}, accounts(true), OUTSIDER), {
      gid: undefined,
      wanted: 105,
      description: "the socket directory's or the daemon's own group",
      warning:
        'cannot give the milter socket to group postfix (not root and not a member): Postfix can connect only if the socket\'s directory ' +
        'is set-group-id postfix (chgrp postfix DIR; chmod 2750 DIR), or set milter.socketGroup',
    });
  });

  it("without a postfix group, uses the daemon's own group: the one it switches to, or its current one", async () => {
    const files = accounts(false);
    assert.deepEqual(await chooseSocketGroup(undefined, { user: 'muse' }, files, ROOT), { gid: 1001, description: "the daemon's own group (1001)" });
    assert.deepEqual(await chooseSocketGroup(undefined, { user: 'muse', group: 'mail' }, files, ROOT), { gid: 8, description: "the daemon's own group (8)" });
    assert.deepEqual(await chooseSocketGroup(undefined, {}, files, ROOT), { gid: 0, description: "the daemon's own group (0)" });
    assert.deepEqual(await chooseSocketGroup(undefined, { user: 'muse' }, files, OUTSIDER), { gid: 1001, description: "the daemon's own group (1001)" });
  });
});

describe('socketPathProblems', () => {
  it('names each directory the group cannot pass, and a directory everyone may write to', async () => {
    assert.equal(process.geteuid?.(), 0, 'this test sets directory owners and must run as root');
    const top = join(dir, 'top');
    const middle = join(top, 'middle');
    const shared = join(middle, 'shared');
    mkdirSync(shared, { recursive: true });
    chmodSync(dir, 0o711);
    chmodSync(top, 0o700);
    chownSync(middle, 0, 105);
    chmodSync(middle, 0o710);
    chmodSync(shared, 0o777);
    assert.deepEqual(await socketPathProblems(join(shared, 'milter.sock'), 105), [
      `group 105 cannot reach the socket: ${top} is mode 0700 with group 0 (give it group 105 and g+x, or o+x)`,
      `${shared} is writable by everyone: anyone could replace the socket with their own and read the mail; use a directory of its own (mode 0750)`,
    ]);
    // The group's own g+x counts only for that group.
    assert.deepEqual(await socketPathProblems(join(middle, 'milter.sock'), 8), [
      `group 8 cannot reach the socket: ${top} is mode 0700 with group 0 (give it group 8 and g+x, or o+x)`,
      `group 8 cannot reach the socket: ${middle} is mode 0710 with group 105 (give it group 8 and g+x, or o+x)`,
    ]);
    chmodSync(top, 0o711);
    chmodSync(shared, 0o1777);
    assert.deepEqual(await socketPathProblems(join(shared, 'milter.sock'), 105), []);
    assert.deepEqual(await socketPathProblems(join(dir, 'missing', 'milter.sock'), 105), [`cannot examine ${join(dir, 'missing')} (ENOENT)`]);
  });
});
