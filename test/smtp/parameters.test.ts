/** The ESMTP parameters a re-injected copy keeps, read by the RFC 5321 grammar, and sent only where announced. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { submitMessage } from '../../src/smtp/client.ts';
import { keptParameters } from '../../src/smtp/parameters.ts';
import { SmtpSink } from '../support/smtp-sink.ts';

describe('keptParameters', () => {
  it('keeps SMTPUTF8, ENVID, RET on MAIL and NOTIFY, ORCPT on RCPT; drops SIZE, BODY, AUTH', () => {
    assert.deepEqual(keptParameters('mail', ['SIZE=1234', 'BODY=8BITMIME', 'smtputf8', 'ENVID=QQ314159', 'RET=HDRS', 'AUTH=<>']), {
      kept: [
        { keyword: 'SMTPUTF8', value: undefined },
        { keyword: 'ENVID', value: 'QQ314159' },
        { keyword: 'RET', value: 'HDRS' },
      ],
      malformed: [],
    });
    assert.deepEqual(keptParameters('rcpt', ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;bob@b.test']), {
      kept: [
        { keyword: 'NOTIFY', value: 'SUCCESS,FAILURE' },
        { keyword: 'ORCPT', value: 'rfc822;bob@b.test' },
      ],
      malformed: [],
    });
  });

  it('leaves out what does not follow the grammar: line breaks, spaces, "=" in a value, bad UTF-8, empty values', () => {
    const utf8 = Buffer.from('ORCPT=utf-8;jöran@b.test', 'utf8').toString('latin1');
    const utf8Value = utf8.slice('ORCPT='.length);
    assert.deepEqual(keptParameters('rcpt', ['NOTIFY=NEVER\r\nRCPT TO:<x@evil.test>', 'ORCPT=a b', 'NOTIFY=a=b', 'ORCPT=\xff\xfe', 'NOTIFY=', '-X=1', utf8]), {
      kept: [{ keyword: 'ORCPT', value: utf8Value }],
      malformed: ['NOTIFY=NEVER\r\nRCPT TO:<x@evil.test>', 'ORCPT=a b', 'NOTIFY=a=b', 'ORCPT=\xff\xfe', 'NOTIFY=', '-X=1'],
    });
  });
});

describe('submitMessage with ESMTP parameters', () => {
  it('writes the kept parameters after each address, bytes as received', async () => {
    const sink = await SmtpSink.start({ dsn: true });
    try {
      const sender = Buffer.from('jöran@a.test', 'utf8').toString('latin1');
      await submitMessage({
        host: '127.0.0.1',
        port: sink.port,
        heloName: 'muse.test',
        timeout: 5000,
        sender,
        recipients: ['bob@b.test', 'carol@c.test'],
        mailParameters: keptParameters('mail', ['SMTPUTF8', 'ENVID=E1', 'RET=FULL']).kept,
        recipientParameters: [keptParameters('rcpt', ['NOTIFY=SUCCESS', 'ORCPT=rfc822;list@b.test']).kept, []],
        message: Buffer.from('Subject: x\r\n\r\nbody\r\n'),
      });
      const [message] = sink.messages;
      // The sink reads the command as UTF-8: one encoding, not two, so the bytes went out as the milter had them.
      assert.equal(message?.mailFrom, 'jöran@a.test');
      assert.equal(message?.mailParams, 'BODY=8BITMIME SMTPUTF8 ENVID=E1 RET=FULL');
      assert.deepEqual(message?.rcptParams, ['NOTIFY=SUCCESS ORCPT=rfc822;list@b.test', '']);
    } finally {
      await sink.close();
    }
  });

  it('fails, sending no message, when the server does not announce the extension a parameter needs', async () => {
    const sink = await SmtpSink.start();
    try {
      await assert.rejects(
        submitMessage({
          host: '127.0.0.1',
          port: sink.port,
          heloName: 'muse.test',
          timeout: 5000,
          sender: 'a@a.test',
          recipients: ['bob@b.test'],
          recipientParameters: [keptParameters('rcpt', ['NOTIFY=SUCCESS']).kept],
          message: Buffer.from('Subject: x\r\n\r\nbody\r\n'),
        }),
        { name: 'SmtpError', message: 'RCPT TO bob@b.test: the server does not announce DSN, needed for NOTIFY' },
      );
      assert.equal(sink.messages.length, 0);
    } finally {
      await sink.close();
    }
  });
});
