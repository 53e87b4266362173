/**
 * Attack: a local user connects to the milter socket, plays MTA, and has captured mail decrypted with the site
 * key (or any text signed with it). The default socket is a unix socket in the data directory, mode 0660, group
 * postfix: a local account outside that group is refused by the kernel before the milter reads a byte, while a
 * member of the group (Postfix's processes) negotiates. Runs as root, and drops to `nobody` with setpriv.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, stat } from 'node:fs/promises';
import { lookupGroup, lookupUser } from '../../src/daemon/privileges.ts';
import { runCommand } from '../support/processes.ts';
import { MuseZone } from '../daemon/support/muse-zone.ts';
import { makeSite, startMuse, type RunningMuse } from '../daemon/support/harness.ts';

/**
 * Connects to the unix socket given as argument and sends the milter option negotiation an MTA opens with;
 * prints the reply's command letter (`O` when the milter answered), or the connection error's code.
 */
const PLAY_MTA = `
const socket = require('node:net').connect(process.argv[1]);
socket.on('connect', () => socket.write(Buffer.from([0, 0, 0, 13, 0x4f, 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff])));
socket.on('data', (reply) => { process.stdout.write('reply ' + String.fromCharCode(reply[4])); socket.destroy(); });
socket.on('error', (error) => process.stdout.write('error ' + error.code));
`;

let zone: MuseZone;
let muse: RunningMuse;
let socketPath: string;
let nobody: { uid: number; gid: number };
let postfixGid: number;

before(async () => {
  assert.equal(process.geteuid?.(), 0, 'this test drops to another account and must run as root');
  const user = await lookupUser('nobody');
  const group = await lookupGroup('postfix');
  assert.ok(user !== undefined && group !== undefined, 'the nobody account and the postfix group exist');
  nobody = user;
  postfixGid = group;
  zone = await MuseZone.start();
  // No milter.listen: the schema's default, a unix socket in the data directory.
  muse = await startMuse({ site: await makeSite('site.test'), dnsServer: zone.address, settings: { milter: { listen: undefined } } });
  socketPath = `${muse.dataDir}/milter.sock`;
  // Let every account pass the data directory, so that the socket's own mode and group are what is tested.
  await chmod(muse.dataDir, 0o711);
});
after(async () => {
  await muse?.stop();
  await zone?.close();
});

/** Runs the fake MTA as `nobody`, with the supplementary groups given. */
async function playMta(groups: readonly number[]): Promise<string> {
  const groupArgs = groups.length === 0 ? ['--clear-groups'] : [`--groups=${groups.join(',')}`];
  const result = await runCommand('setpriv', [`--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, ...groupArgs, process.execPath, '-e', PLAY_MTA, socketPath], {
    timeoutMs: 30_000,
  });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

describe('a local user playing MTA on the default milter socket', () => {
  it('the default socket is unix:<dataDirectory>/milter.sock, mode 0660, group postfix', async () => {
    assert.equal(muse.address, `unix:${socketPath}`);
    const info = await stat(socketPath);
    assert.deepEqual([info.isSocket(), info.mode & 0o777, info.gid], [true, 0o660, postfixGid]);
  });

  it('is refused (EACCES) for an account outside the postfix group', async () => {
    assert.equal(await playMta([]), 'error EACCES');
    assert.equal(await playMta([nobody.gid]), 'error EACCES');
  });

  it('is answered for a member of the postfix group, as Postfix is', async () => {
    assert.equal(await playMta([postfixGid]), 'reply O');
  });
});
