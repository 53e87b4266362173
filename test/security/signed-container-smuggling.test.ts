/**
 * Attack: content smuggled around a genuine multipart/signed in clear. victim.test signs a message to us (signature
 * only, RFC 3156 §5); on the way someone who cannot forge the signature changes what lies outside the signed part
 * and the signature, which nothing covers: a third body part after the signature, a second Content-Type field
 * (another boundary, for readers that take the last one), a Content-Transfer-Encoding that makes a reader decode the
 * body. The verdict is judged on the first two parts under the first Content-Type, and by default the message is
 * delivered as it came, so without care `x-muse=pass` would stand beside content nobody signed.
 * Outcomes: a container with other than two parts is not a site signature we can report (RFC 3156 §5 allows
 * exactly two): no verdict, left as it came; under `pass` the delivered Content-* fields are exactly one
 * Content-Type, written anew from the boundary and micalg the verdict was judged under (so a repeated parameter or
 * RFC 2231 continuations, which parsers resolve differently, cannot point a reader at another boundary).
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authResults, entity, field, innerFields, multipartSigned, startReceiver, transportFields, type ExpectedVerdict, type Field, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const SIGNED_FIELDS = innerFields('CEO <ceo@victim.test>', { subject: 'Board minutes', more: [field('Reply-To', 'ceo@victim.test')] });

const PASSED = (): ExpectedVerdict => ({ result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: false });

/** victim.test's signed message as it left victim.test: transport fields, MIME-Version, the multipart/signed type. */
async function fromVictim(): Promise<{ headers: Field[]; body: Buffer; contentType: Field }> {
  const signed = await multipartSigned(entity(SIGNED_FIELDS), rx.sites.victim.privateKey);
  const contentType = { name: 'Content-Type', value: signed.contentType };
  return { headers: [...transportFields('CEO <ceo@victim.test>'), field('MIME-Version', '1.0'), contentType], body: signed.body, contentType };
}

/** The header delivered under pass: the signed user-facing fields in place of the transport ones, then `content`. */
function passHeader(content: readonly Field[]): Field[] {
  return [
    authResults(PASSED()),
    field('From', 'CEO <ceo@victim.test>'),
    field('To', 'Bob <bob@site.test>'),
    field('Subject', 'Board minutes'),
    field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'),
    field('Message-ID', '<inner-1@victim.test>'),
    field('MIME-Version', '1.0'),
    ...content,
    field('Reply-To', 'ceo@victim.test'),
  ];
}

/** The body with `extra` inserted before the close delimiter of `boundary`. */
function beforeClose(body: Buffer, boundary: string, extra: string): Buffer {
  const close = Buffer.from(`--${boundary}--`, 'latin1');
  const at = body.lastIndexOf(close);
  assert.ok(at > 0, 'close delimiter found');
  return Buffer.concat([body.subarray(0, at), Buffer.from(extra, 'latin1'), body.subarray(at)]);
}

const THIRD_PART = '--sig-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nP.S. Our bank details changed: wire to IBAN XX00 ATTACKER.\r\n';

describe('signed container smuggling', () => {
  it('control: the message as signed passes and is delivered with its body unchanged', async () => {
    const sent = await fromVictim();
    const outcome = await rx.send(sent, 'Q-SC-CONTROL');
    assert.deepEqual(outcome.delivered?.headers, passHeader([sent.contentType]));
    assert.ok(outcome.delivered?.body.equals(sent.body));
  });

  it('a third body part after the signature: no verdict, delivered as it came', async () => {
    const sent = await fromVictim();
    const body = beforeClose(sent.body, 'sig-b', THIRD_PART);
    const outcome = await rx.send({ headers: sent.headers, body }, 'Q-SC-THIRD');
    assert.deepEqual(outcome.eom?.modifications, []);
    assert.deepEqual(outcome.delivered?.headers, sent.headers);
    assert.ok(outcome.delivered?.body.equals(body));
    assert.equal(rx.summary('Q-SC-THIRD').action, 'unchanged');
    assert.equal(rx.summary('Q-SC-THIRD').reason, 'not-site-signed');
  });

  it('a second Content-Type with another boundary: pass, delivered under the judged Content-Type only', async () => {
    const sent = await fromVictim();
    // For a reader that takes the last Content-Type, the preamble becomes the message.
    const body = Buffer.concat([Buffer.from('--evil\r\nContent-Type: text/plain\r\n\r\nNew bank details: IBAN XX00 ATTACKER.\r\n--evil--\r\n', 'latin1'), sent.body]);
    const headers = [...sent.headers, field('Content-Type', 'multipart/mixed; boundary="evil"')];
    const outcome = await rx.send({ headers, body }, 'Q-SC-TWO-TYPES');
    assert.deepEqual(outcome.delivered?.headers, passHeader([sent.contentType]));
    assert.ok(outcome.delivered?.body.equals(body));
  });

  for (const [what, params] of [
    ['a repeated boundary parameter', 'boundary="evil"; boundary="sig-b"'],
    ['RFC 2231 continuations beside a plain boundary', 'boundary*0="sig"; boundary*1="-b"; boundary="evil"'],
  ] as const) {
    it(`${what}, read differently by other parsers: pass, delivered under the Content-Type written anew`, async () => {
      const sent = await fromVictim();
      const micalg = /micalg=([^;]+);/.exec(sent.contentType.value)?.[1] as string;
      const body = Buffer.concat([Buffer.from('--evil\r\nContent-Type: text/plain\r\n\r\nNew bank details: IBAN XX00 ATTACKER.\r\n--evil--\r\n', 'latin1'), sent.body]);
      const rewritten = field('Content-Type', `multipart/signed; micalg=${micalg}; protocol="application/pgp-signature"; ${params}`);
      const headers = sent.headers.map((h) => (h.name === 'Content-Type' ? rewritten : h));
      const queueId = `Q-SC-PARAMS-${params.length}`;
      const outcome = await rx.send({ headers, body }, queueId);
      if (params.startsWith('boundary="evil"')) {
        // We split on the first boundary, as other parsers do: no two parts there, so no site signature to report.
        assert.deepEqual(outcome.delivered?.headers, headers);
        assert.equal(rx.summary(queueId).reason, 'not-site-signed');
        return;
      }
      // Written anew as our outbound writes it, folded with LF as the milter carries values.
      assert.deepEqual(outcome.delivered?.headers, passHeader([{ name: 'Content-Type', value: sent.contentType.value.replaceAll('\r\n', '\n') }]));
      assert.ok(outcome.delivered?.body.equals(body));
    });
  }

  it('a Content-Transfer-Encoding added to the multipart: pass, removed', async () => {
    const sent = await fromVictim();
    const headers = [...sent.headers, field('Content-Transfer-Encoding', 'quoted-printable')];
    const outcome = await rx.send({ headers, body: sent.body }, 'Q-SC-CTE');
    assert.deepEqual(outcome.delivered?.headers, passHeader([sent.contentType]));
    assert.ok(outcome.delivered?.body.equals(sent.body));
  });
});
