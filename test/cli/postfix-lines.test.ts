/** How the first run names the milter socket for Postfix's main.cf, and what it says about the socket. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { postfixMilterName, postfixSocketNotes } from '../../src/cli/verbs/run.ts';

describe('postfixMilterName', () => {
  it('names a unix socket inside the queue directory relative to it, any other socket as it is', () => {
    assert.equal(postfixMilterName('unix:/var/spool/postfix/muse-milter/milter.sock'), 'unix:muse-milter/milter.sock');
    assert.equal(postfixMilterName('unix:/var/spool/postfix/milter.sock'), 'unix:milter.sock');
    assert.equal(postfixMilterName('unix:/var/spool/postfix-other/milter.sock'), 'unix:/var/spool/postfix-other/milter.sock');
    assert.equal(postfixMilterName('unix:/var/spool/postfix/../milter.sock'), 'unix:/var/spool/postfix/../milter.sock');
    assert.equal(postfixMilterName('unix:/var/lib/muse-milter/milter.sock'), 'unix:/var/lib/muse-milter/milter.sock');
    assert.equal(postfixMilterName('unix:/srv/spool/muse.sock', '/srv/spool'), 'unix:muse.sock');
    assert.equal(postfixMilterName('inet:8899@127.0.0.1'), 'inet:127.0.0.1:8899');
  });
});

describe('postfixSocketNotes', () => {
  it('explains a socket in the jail, one outside it, and a TCP socket', () => {
    const risk = 'whoever can connect to a milter can have mail decrypted and text signed with the site key, and a TCP socket lets every local user connect';
    assert.equal(
      postfixSocketNotes('unix:/var/spool/postfix/muse-milter/milter.sock', 'postfix (105)'),
      `This is a unix socket (mode 0660, group postfix (105)) because ${risk}. Every directory above it must let that group through (g+x or o+x). ` +
        "The name is relative to Postfix's queue directory /var/spool/postfix, so it works whether smtpd and cleanup are chrooted there (Debian's default) or not.\n",
    );
    assert.equal(
      postfixSocketNotes('unix:/srv/muse/milter.sock', 'postfix (105)'),
      `This is a unix socket (mode 0660, group postfix (105)) because ${risk}. Every directory above it must let that group through (g+x or o+x). ` +
        'Postfix reaches /srv/muse/milter.sock only if smtpd and cleanup are not chrooted (chroot column "n" in master.cf). Debian chroots them in ' +
        '/var/spool/postfix: there, put the socket inside it (MUSE_DATA_DIR=/var/spool/postfix/muse-milter, or milter.listen: ' +
        'unix:/var/spool/postfix/muse-milter/milter.sock) and write unix:muse-milter/milter.sock instead.\n',
    );
    assert.equal(postfixSocketNotes('inet:127.0.0.1:8899', 'unused'), `This is a TCP socket: ${risk}. Prefer a unix socket (milter.listen: unix:PATH).\n`);
  });
});
