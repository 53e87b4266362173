/**
 * Every corpus message goes outbound then inbound and must come back byte-identical (after CRLF
 * canonicalisation) with the same protected and content fields; sign-only must verify and keep
 * the decoded content. Messages named `already-*` must pass outbound untouched.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyHeaderEdits } from '../../src/engine/header-edits.ts';
import { openInbound } from '../../src/engine/inbound.ts';
import { protectOutbound } from '../../src/engine/outbound.ts';
import { contentTypeOf, multipartBoundary, transferEncodingOf } from '../../src/mime/content-fields.ts';
import { toCrlf } from '../../src/mime/crlf.ts';
import { parseEntity } from '../../src/mime/entity.ts';
import { isContentField, sameHeaderName, type HeaderEncoding, type HeaderField } from '../../src/mime/header-fields.ts';
import { DEFAULT_PROTECTED_FIELDS } from '../../src/mime/inner-entity.ts';
import { splitMultipart } from '../../src/mime/multipart.ts';
import { decodeBase64, decodeQuotedPrintable } from '../../src/mime/transfer-encoding.ts';
import { corpusNames, countingBoundary, FIXED_NOW, readCorpusMessage, testKeys, type RawMessage } from './fixtures.ts';

type Mode = 'encrypt' | 'sign';

async function roundTrip(message: RawMessage, mode: Mode, encoding: HeaderEncoding) {
  const keys = await testKeys();
  const outbound = await protectOutbound({
    headers: message.headers,
    body: message.body,
    siteKey: keys.senderSite.secret,
    recipientKeys: mode === 'encrypt' ? [keys.receiverSite.public] : [],
    headerEncoding: encoding,
    now: () => FIXED_NOW,
    boundary: countingBoundary(),
  });
  if (outbound.kind !== 'protected') assert.fail(`outbound: ${outbound.kind}`);
  const wire: RawMessage = { headers: applyHeaderEdits(message.headers, outbound.headerEdits), body: await outbound.body.toBuffer() };
  const inbound = await openInbound({
    headers: wire.headers,
    body: wire.body,
    siteKeys: [keys.receiverSite.secret],
    senderKeys: async (domain) => (domain === 'sender.test' ? { keys: [keys.senderSite.public], dnssec: true } : null),
    authservId: 'mx.receiver.test',
    localDomains: ['receiver.test'],
    unwrapSigned: true,
    headerEncoding: encoding,
    now: () => FIXED_NOW,
  });
  if (inbound.kind !== 'opened') assert.fail(`inbound: ${inbound.kind}`);
  assert.equal(inbound.verdict.result, 'pass');
  const back: RawMessage = { headers: applyHeaderEdits(wire.headers, inbound.headerEdits), body: await inbound.body.toBuffer() };
  return { wire, back, reencoded: outbound.reencoded };
}

const valuesOf = (headers: readonly HeaderField[], name: string): string[] => headers.filter((h) => sameHeaderName(h.name, name)).map((h) => h.value);

function assertSameFields(original: readonly HeaderField[], back: readonly HeaderField[], names: readonly string[]): void {
  for (const name of names) assert.deepEqual(valuesOf(back, name), valuesOf(original, name), name);
}

/** The decoded leaves of an entity: media type and content with the transfer encoding undone. */
function leaves(fields: readonly HeaderField[], body: Buffer): { type: string; data: string }[] {
  const type = contentTypeOf(fields);
  const encoding = transferEncodingOf(fields);
  const boundary = multipartBoundary(type);
  const layout = boundary === undefined ? null : splitMultipart(body, boundary);
  if (layout !== null) {
    return layout.parts.flatMap((range) => {
      const part = body.subarray(range.start, range.end);
      const parsed = parseEntity(part, 'latin1');
      return leaves(parsed.fields, part.subarray(parsed.bodyOffset));
    });
  }
  if (type.mediaType === 'message/rfc822') {
    const parsed = parseEntity(body, 'latin1');
    return leaves(parsed.fields, body.subarray(parsed.bodyOffset));
  }
  const data = encoding === 'base64' ? decodeBase64(body) : encoding === 'quoted-printable' ? decodeQuotedPrintable(body) : body;
  return [{ type: type.mediaType, data: data.toString('latin1') }];
}

const names = await corpusNames();
const roundTripNames = names.filter((n) => !n.includes('already-'));

test('the corpus has at least 40 messages to round-trip', () => {
  assert.ok(roundTripNames.length >= 40, `${roundTripNames.length}`);
});

for (const encoding of ['latin1', 'utf8'] as const) {
  test(`encrypt round trip, header encoding ${encoding}: body and protected fields come back identical`, async () => {
    for (const name of roundTripNames) {
      const original = await readCorpusMessage(name, encoding);
      const { wire, back } = await roundTrip(original, 'encrypt', encoding);
      assert.deepEqual(back.body, toCrlf(original.body), name);
      assertSameFields(original.headers, back.headers, DEFAULT_PROTECTED_FIELDS);
      const contentNames = [...new Set(original.headers.filter((h) => isContentField(h.name)).map((h) => h.name.toLowerCase()))];
      if (contentNames.includes('content-type')) assertSameFields(original.headers, back.headers, contentNames);
      else assert.deepEqual(valuesOf(back.headers, 'Content-Type'), [' text/plain; charset=us-ascii'], name);
      if (valuesOf(original.headers, 'Subject').length > 0) assert.deepEqual(new Set(valuesOf(wire.headers, 'Subject')), new Set([' [...]']), name);
      // Everything not protected and not a content field is untouched on the way.
      const untouched = (h: HeaderField) => !isContentField(h.name) && !DEFAULT_PROTECTED_FIELDS.some((p) => sameHeaderName(p, h.name)) && !sameHeaderName(h.name, 'MIME-Version');
      assert.deepEqual(back.headers.filter(untouched).slice(1), original.headers.filter(untouched), name);
    }
  });
}

test('sign-only round trip: verifies; unchanged entities come back identical, re-encoded ones decode to the same content', async () => {
  let reencodedCount = 0;
  for (const name of roundTripNames) {
    const original = await readCorpusMessage(name, 'latin1');
    const { back, reencoded } = await roundTrip(original, 'sign', 'latin1');
    assertSameFields(original.headers, back.headers, DEFAULT_PROTECTED_FIELDS);
    const canonical = toCrlf(original.body);
    if (!reencoded) {
      assert.deepEqual(back.body, canonical, name);
      continue;
    }
    reencodedCount++;
    assert.deepEqual(leaves(back.headers, back.body), leaves(original.headers, canonical), name);
  }
  assert.ok(reencodedCount > 10, `${reencodedCount} re-encoded`);
});

test('already encrypted messages pass outbound unchanged', async () => {
  const keys = await testKeys();
  const formats: string[] = [];
  for (const name of names.filter((n) => n.includes('already-'))) {
    const message = await readCorpusMessage(name);
    const result = await protectOutbound({ headers: message.headers, body: message.body, siteKey: keys.senderSite.secret, recipientKeys: [keys.receiverSite.public] });
    assert.equal(result.kind, 'unchanged', name);
    if (result.kind === 'unchanged') formats.push(result.format);
  }
  assert.deepEqual(formats.sort(), ['pgp-inline', 'pgp-mime', 'smime']);
});
