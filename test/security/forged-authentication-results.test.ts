/**
 * Attack: a sender writes our verdict itself. `Authentication-Results: site.test; x-muse=pass` on plain mail (or
 * beside our genuine fail) would be shown by a mail client that trusts results under our authserv-id (RFC 8601
 * §5). Every such field is removed from every inbound message, however it is spelled: quoted authserv-id, comments
 * anywhere (nested, holding `;`), other letter case, a method version, folding; a field that cannot be read is
 * removed too (a lenient reader might still find our method in it). Results of other methods under our id
 * (OpenDKIM earlier in the milter chain) and results under other ids stay. A forged Muse-Protection (the sender's
 * own claim of protection) is removed as well. Mail a local user sends (outbound) loses our results and
 * Muse-Unverified-* fields too, whether it is delivered to a local mailbox or leaves encrypted.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LOCAL_CLIENT, sendOne } from '../daemon/support/harness.ts';
import { authResults, entity, field, innerFields, pgpMime, signedAndEncrypted, startReceiver, transportFields, type Field, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const PLAIN: Field[] = [...transportFields('CEO <ceo@victim.test>'), field('MIME-Version', '1.0'), field('Content-Type', 'text/plain; charset=utf-8')];
const BODY = Buffer.from('Plain text, no PGP/MIME.\r\n');

/** Sends plain mail with `added` before its header; returns the delivered header. */
async function deliveredPlain(added: readonly Field[], queueId: string): Promise<Field[] | undefined> {
  const outcome = await rx.send({ headers: [...added, ...PLAIN], body: BODY }, queueId);
  assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
  assert.ok(outcome.delivered?.body.equals(BODY), 'body untouched');
  return outcome.delivered?.headers;
}

const FORGED: Array<[string, string]> = [
  ['the plain claim', 'site.test; x-muse=pass'],
  ['a full claim as we write it', 'site.test;\n\tx-muse=pass reason="signature-verified"\n\theader.from=victim.test\n\tpolicy.dnssec=yes'],
  ['a quoted authserv-id', '"site.test"; x-muse=pass'],
  ['a quoted authserv-id with a version', '"site.test" 1; x-muse=pass'],
  ['upper case', 'SITE.TEST; X-MUSE=PASS'],
  ['mixed case', 'Site.Test; X-Muse=pass'],
  ['a comment before the id', '(our MX) site.test; x-muse=pass'],
  ['comments everywhere', '(a) site.test (b) ; (c) x-muse (d) = (e) pass (f)'],
  ['a nested comment holding a semicolon', 'site.test ((x; y) z); x-muse=pass'],
  ['a comment holding a quote', 'site.test (")"; x-muse=pass'],
  ['a method version', 'site.test; x-muse/1=pass'],
  ['no blank after the semicolon', 'site.test;x-muse=pass'],
  ['our method after another one', 'site.test; dkim=pass header.d=victim.test; x-muse=pass'],
  ['our method first, then another', 'site.test; x-muse=pass; dkim=pass header.d=victim.test'],
  ['an authres version and a comment', 'site.test 1 (v1); x-muse=pass'],
  ['whitespace inside the dotted id', 'site . test; x-muse=pass'],
  ['an unterminated comment after our id', 'site.test; dkim=pass (x-muse=pass'],
  ['an unterminated quoted string after our id', 'site.test; dkim=pass reason="x; x-muse=pass'],
  ['a stray closing parenthesis', 'site.test; dkim=pass ) x-muse=pass'],
  ['an unreadable value', ';;; x-muse=pass'],
  ['an empty value', ''],
  ['a quoted id that never ends', '"site.test; x-muse=pass'],
];

describe('forged authentication results', () => {
  for (const [what, value] of FORGED) {
    it(`removes, on plain mail: ${what}`, async () => {
      const queueId = `Q-F${FORGED.findIndex((f) => f[0] === what)}`;
      assert.deepEqual(await deliveredPlain([field('Authentication-Results', value)], queueId), PLAIN);
    });
  }

  it('removes a forged field whatever the case of its name', async () => {
    assert.deepEqual(await deliveredPlain([field('authentication-results', 'site.test; x-muse=pass'), field('AUTHENTICATION-RESULTS', '"site.test"; x-muse=pass')], 'Q-NAMECASE'), PLAIN);
  });

  const KEPT: Array<[string, string]> = [
    ['OpenDKIM under our id', 'site.test; dkim=pass header.d=victim.test header.s=s1'],
    ['OpenDMARC and SPF under our id', 'site.test; dmarc=pass header.from=victim.test; spf=pass smtp.mailfrom=victim.test'],
    ['no result under our id', 'site.test; none'],
    ['x-muse under another id', 'mx.victim.test; x-muse=pass header.from=victim.test'],
    ['an id that only starts like ours', 'site.test.example; x-muse=pass'],
    ['a method that only starts like ours', 'site.test; x-musement=pass'],
  ];
  for (const [what, value] of KEPT) {
    it(`keeps ${what}`, async () => {
      const queueId = `Q-K${KEPT.findIndex((f) => f[0] === what)}`;
      const kept = field('Authentication-Results', value);
      assert.deepEqual(await deliveredPlain([kept], queueId), [kept, ...PLAIN]);
    });
  }

  it('removes only the forged ones among several, keeping the order of the rest', async () => {
    const dkim = field('Authentication-Results', 'site.test; dkim=pass header.d=victim.test');
    const other = field('Authentication-Results', 'mx.victim.test; spf=pass');
    const added = [field('Authentication-Results', 'site.test; x-muse=pass'), dkim, field('Authentication-Results', '"site.test"; x-muse=pass'), other, field('Authentication-Results', 'SITE.TEST; x-muse=pass')];
    assert.deepEqual(await deliveredPlain(added, 'Q-SEVERAL'), [dkim, other, ...PLAIN]);
  });

  it('removes a forged Muse-Protection and forged Muse-Unverified-* fields from plain mail', async () => {
    const added = [field('Muse-Protection', 'signed; encrypted; by=victim.test'), field('muse-unverified-from', 'ceo@victim.test'), field('MUSE-UNVERIFIED-SUBJECT', 'x')];
    assert.deepEqual(await deliveredPlain(added, 'Q-PROTECTION'), PLAIN);
  });

  it('removes them from mail a local user submits to a local mailbox (outbound direction, delivered here)', async () => {
    // A user of this host (or of the site's submission service) writes our verdict on a message to a colleague:
    // the milter sees it as outbound, and the colleague's mailbox is where a reader trusts site.test's results.
    const added = [
      field('Authentication-Results', 'site.test; x-muse=pass header.from=victim.test policy.dnssec=yes'),
      field('Muse-Unverified-From', 'ceo@victim.test'),
    ];
    const message = { sender: '<mallory@site.test>', recipients: ['<bob@site.test>'], headers: [...added, ...PLAIN], body: BODY, macros: { i: 'Q-LOCAL' } };
    const outcome = await sendOne(rx.daemon.address, message, LOCAL_CLIENT);
    assert.equal(rx.summary('Q-LOCAL').direction, 'outbound');
    assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
    assert.deepEqual(outcome.delivered?.headers, PLAIN);
  });

  it('removes them from mail a local user sends out encrypted, and still writes exactly our own Muse-Protection', async () => {
    const added = [
      field('Authentication-Results', 'site.test; x-muse=pass header.from=victim.test'),
      field('Muse-Unverified-From', 'ceo@victim.test'),
      field('Muse-Protection', 'forged'),
    ];
    const message = { sender: '<mallory@site.test>', recipients: ['<carol@third.test>'], headers: [...added, ...PLAIN], body: BODY, macros: { i: 'Q-LOCAL-OUT' } };
    const outcome = await sendOne(rx.daemon.address, message, LOCAL_CLIENT);
    assert.equal(rx.summary('Q-LOCAL-OUT').action, 'encrypted');
    const names = (outcome.delivered?.headers ?? []).map((h) => h.name.toLowerCase());
    assert.deepEqual(names.filter((n) => n === 'authentication-results' || n.startsWith('muse-unverified-')), []);
    const protection = outcome.delivered?.headers.filter((h) => h.name.toLowerCase() === 'muse-protection') ?? [];
    assert.equal(protection.length, 1);
    assert.notEqual(protection[0]?.value, ' forged');
  });

  it('beside our genuine fail: the quoted forged pass is removed, only our verdict is delivered', async () => {
    // attacker.test signs a From of victim.test: our verdict is fail.
    const armored = await signedAndEncrypted(entity(innerFields('CEO <ceo@victim.test>')), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime(transportFields('<x@attacker.test>'), armored);
    const forged = [field('Authentication-Results', '"site.test"; x-muse=pass header.from=victim.test'), field('Authentication-Results', 'site.test (ours); X-Muse=pass')];
    const outcome = await rx.send({ headers: [...forged, ...message.headers], body: message.body }, 'Q-BESIDE');
    assert.deepEqual(outcome.delivered?.headers, [
      authResults({ result: 'fail', reason: 'signer-not-published', from: 'victim.test', dnssec: false, encrypted: true }),
      ...message.headers,
    ]);
  });

  it('beside our genuine pass: a forged fail or pass for another domain is removed as well', async () => {
    const armored = await signedAndEncrypted(entity(innerFields('Mallory <x@attacker.test>')), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime(transportFields('<x@attacker.test>'), armored);
    const forged = [field('Authentication-Results', 'site.test; x-muse=pass header.from=victim.test')];
    const outcome = await rx.send({ headers: [...forged, ...message.headers], body: message.body }, 'Q-BESIDE-PASS');
    const results = outcome.delivered?.headers.filter((h) => h.name.toLowerCase() === 'authentication-results');
    assert.deepEqual(results, [authResults({ result: 'pass', reason: 'signature-verified', from: 'attacker.test', fingerprint: rx.sites.attacker.fingerprint, dnssec: false, encrypted: true })]);
  });
});
