import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { BodyDigest, digestBody, encodeParts, messageIdValues } from '../../src/daemon/copy-identity.ts';
import { createMarker, MARKER_CLOCK_SKEW_SECONDS, MARKER_LIFETIME_SECONDS, parseMarker, verifyMarker, type MarkerFields } from '../../src/daemon/reinjection-marker.ts';
import { DotStuffer } from '../../src/smtp/dot-stuffing.ts';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const body = Buffer.from('Hello Carol,\r\n.leading dot\r\n\r\nbye\r\n');
const copy = {
  sender: 'alice@site.test',
  recipients: ['carol@c.test', 'Dave@d.test'],
  messageIds: ['<m1@site.test>'],
  bodyDigest: createHash('sha256').update(body).digest(),
};
const fields: MarkerFields = { queueId: '4F2A1', time: 1_800_000_000, ...copy };

describe('the marker', () => {
  it('has the documented form, and its MAC is HMAC-SHA256 over the length-prefixed fields', () => {
    const value = createMarker(secret, fields);
    const match = /^ v=2; id=4F2A1; t=1800000000; mac=([A-Za-z0-9_-]{43})$/.exec(value);
    assert.ok(match, value);
    const parts = ['muse-reinjected', '2', '4F2A1', '1800000000', 'alice@site.test', '2', 'Dave@d.test', 'carol@c.test', '1', '<m1@site.test>', copy.bodyDigest.toString('hex')];
    assert.equal(match[1], createHmac('sha256', secret).update(encodeParts(parts)).digest('base64url'));
    assert.deepEqual(encodeParts(['ab', '', 'é']), Buffer.from('2:ab0:2:é', 'utf8'));
  });

  it('verifies for the same copy, recipients in any order', () => {
    const value = createMarker(secret, fields);
    assert.deepEqual(verifyMarker(secret, value, { ...copy, recipients: ['Dave@d.test', 'carol@c.test'] }, fields.time + 60), { valid: true, queueId: '4F2A1', time: fields.time });
  });

  it('does not verify for any other sender, recipient set, Message-ID, body or secret', () => {
    const value = createMarker(secret, fields);
    const otherBody = createHash('sha256').update('Hello Carol!\r\n').digest();
    for (const [what, other, key] of [
      ['sender', { ...copy, sender: 'mallory@site.test' }, secret],
      ['null sender', { ...copy, sender: '' }, secret],
      ['recipient added', { ...copy, recipients: [...copy.recipients, 'eve@e.test'] }, secret],
      ['recipient removed', { ...copy, recipients: ['carol@c.test'] }, secret],
      ['recipient case', { ...copy, recipients: ['carol@c.test', 'dave@d.test'] }, secret],
      ['recipient repeated', { ...copy, recipients: [...copy.recipients, 'carol@c.test'] }, secret],
      ['Message-ID', { ...copy, messageIds: ['<m2@site.test>'] }, secret],
      ['no Message-ID', { ...copy, messageIds: [] }, secret],
      ['a second Message-ID', { ...copy, messageIds: ['<m1@site.test>', '<m1@site.test>'] }, secret],
      ['body', { ...copy, bodyDigest: otherBody }, secret],
      ['secret', copy, Buffer.from('another secret of 32 bytes......')],
    ] as const) {
      assert.deepEqual(verifyMarker(key, value, other, fields.time), { valid: false, reason: 'marker does not match this message' }, what);
    }
    // The MAC covers the stamp too: another queue id or time in the value breaks it.
    assert.deepEqual(verifyMarker(secret, value.replace('id=4F2A1', 'id=4F2A2'), copy, fields.time), { valid: false, reason: 'marker does not match this message' });
    assert.deepEqual(verifyMarker(secret, value.replace('t=1800000000', 't=1800000001'), copy, fields.time), { valid: false, reason: 'marker does not match this message' });
  });

  it('expires after its lifetime and is refused from the future beyond the clock skew', () => {
    const value = createMarker(secret, fields);
    assert.equal(verifyMarker(secret, value, copy, fields.time + MARKER_LIFETIME_SECONDS).valid, true);
    assert.deepEqual(verifyMarker(secret, value, copy, fields.time + MARKER_LIFETIME_SECONDS + 1), { valid: false, reason: 'marker expired' });
    assert.equal(verifyMarker(secret, value, copy, fields.time - MARKER_CLOCK_SKEW_SECONDS).valid, true);
    assert.deepEqual(verifyMarker(secret, value, copy, fields.time - MARKER_CLOCK_SKEW_SECONDS - 1), { valid: false, reason: 'marker from the future' });
  });

  it('writes a queue id the tag syntax cannot carry as "unknown"', () => {
    assert.match(createMarker(secret, { ...fields, queueId: 'a b;mac=x' }), /^ v=2; id=unknown; t=1800000000; mac=[A-Za-z0-9_-]{43}$/);
  });
});

describe('parseMarker', () => {
  const mac = 'A'.repeat(43);
  it('takes blanks and folding around tags and values, a trailing semicolon, any tag order', () => {
    assert.deepEqual(parseMarker(` v=2; id=Q1; t=5; mac=${mac}`), { queueId: 'Q1', time: 5, mac: Buffer.from(mac, 'base64url') });
    assert.deepEqual(parseMarker(`mac = ${mac} ;\r\n\tt=5;id=Q1 ; v=2;`), { queueId: 'Q1', time: 5, mac: Buffer.from(mac, 'base64url') });
  });

  it('refuses anything else, saying why', () => {
    for (const [value, reason] of [
      ['', 'malformed marker: no tag v'],
      [` v=2; id=Q1; t=5`, 'malformed marker: no tag mac'],
      [` v=2; id=Q1; t=5; mac=${mac}; g=clear`, 'malformed marker: unknown tag "g"'],
      [` v=2; id=Q1; t=5; mac=${mac}; constructor=x`, 'malformed marker: unknown tag "constructor"'],
      [` v=2; v=2; id=Q1; t=5; mac=${mac}`, 'malformed marker: tag v twice'],
      [` v=2; id=Q 1; t=5; mac=${mac}`, 'malformed marker'],
      [` v=2; id=Q1;; t=5; mac=${mac}`, 'malformed marker'],
      [` v=2; id=Q1; t=5; mac`, 'malformed marker'],
      [` v=2; id=Q1; t=-5; mac=${mac}`, 'malformed marker: bad value of t'],
      [` v=2; id=Q1; t=5; mac=${mac}A`, 'malformed marker: bad value of mac'],
      [` v=2; id=Q1; t=5; mac=${'A'.repeat(42)}=`, 'malformed marker: bad value of mac'],
      [` v=2; id=Q1;x; t=5; mac=${mac}`, 'malformed marker'],
      [` v=1; id=Q1; g=clear; t=5; mac=${mac}`, 'malformed marker: unknown tag "g"'],
      [` v=1; id=Q1; t=5; mac=${mac}`, 'unsupported marker version 1'],
      [` v=2; id=${'Q'.repeat(65)}; t=5; mac=${mac}`, 'malformed marker: bad value of id'],
    ] as const) {
      assert.equal(parseMarker(value), reason, value);
      assert.deepEqual(verifyMarker(secret, value, copy, 5), { valid: false, reason }, value);
    }
  });
});

describe('the body digest', () => {
  const sha = (text: string): Buffer => createHash('sha256').update(Buffer.from(text, 'latin1')).digest();

  it('digests the line form an MTA hands a milter: CRLF line ends, the last line ended', async () => {
    assert.deepEqual(await digestBody([Buffer.from('a\r\nb\r\n')]), sha('a\r\nb\r\n'));
    assert.deepEqual(await digestBody([Buffer.from('a\nb')]), sha('a\r\nb\r\n'));
    assert.deepEqual(await digestBody([Buffer.from('a\r\r\nb\r')]), sha('a\r\r\nb\r\r\n'));
    assert.deepEqual(await digestBody([Buffer.from('a\rb\n')]), sha('a\rb\r\n'));
    assert.deepEqual(await digestBody([]), sha(''));
    assert.deepEqual(await digestBody([Buffer.from('\r\n\r\n')]), sha('\r\n\r\n'));
  });

  it('gives the same digest whatever the chunking, CR and LF split across chunks included', async () => {
    const text = Buffer.from('one\r\ntwo\nthree\r\r\nfour\rfive\r\n\r\nsix\r');
    const whole = await digestBody([text]);
    assert.deepEqual(whole, sha('one\r\ntwo\r\nthree\r\r\nfour\rfive\r\n\r\nsix\r\r\n'));
    for (let size = 1; size <= text.length; size++) {
      const digest = new BodyDigest();
      for (let at = 0; at < text.length; at += size) digest.update(text.subarray(at, at + size));
      assert.deepEqual(digest.digest(), whole, `chunks of ${size}`);
    }
  });

  it('is the same for bytes sent and the bytes an SMTP server reads back (dot-stuffing undone, lines split at LF, one CR dropped)', async () => {
    const sent = Buffer.from('.dot\nbare LF\r\nx\r\r\n..two dots\r\nlast line');
    const stuffer = new DotStuffer();
    const wire = Buffer.concat([stuffer.push(sent), stuffer.end()]).toString('latin1');
    // What a server does: read lines up to each LF, drop one CR before it, undo the leading dot, stop at ".".
    const lines: string[] = [];
    for (const raw of wire.split('\n').slice(0, -1)) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line === '.') break;
      lines.push(line.startsWith('.') ? line.slice(1) : line);
    }
    const received = Buffer.from(lines.map((line) => `${line}\r\n`).join(''), 'latin1');
    assert.equal(received.toString('latin1'), '.dot\r\nbare LF\r\nx\r\r\n..two dots\r\nlast line\r\n');
    assert.deepEqual(await digestBody([sent]), await digestBody([received]));
  });
});

describe('messageIdValues', () => {
  it('takes every Message-ID field in order, unfolded and trimmed, by a case-blind name', () => {
    assert.deepEqual(
      messageIdValues([
        { name: 'Subject', value: ' x' },
        { name: 'Message-ID', value: ' <a@b>' },
        { name: 'message-id', value: '\r\n <c@d> ' },
        { name: 'Message-IDs', value: ' <e@f>' },
      ]),
      ['<a@b>', '<c@d>'],
    );
    assert.deepEqual(messageIdValues([{ name: 'Message-ID', value: ' <a@\n b>' }]), messageIdValues([{ name: 'Message-ID', value: '<a@\r\n b>' }]));
  });
});
