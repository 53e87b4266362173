/** The record codecs of docs/dns-records.md: the TXT tag list (§2) and the KEY RR layout (§3). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_AGE_LIMIT,
  MAX_KEY_BYTES,
  buildKeyRdata,
  buildSiteTxt,
  parseKeyRdata,
  parseSiteTxt,
  splitCharacterStrings,
  strongerPolicy,
} from '../../src/keys/index.ts';

const KEY = new Uint8Array(Array.from({ length: 600 }, (_, i) => i % 256));
const KEY_B64 = Buffer.from(KEY).toString('base64');

describe('TXT record', () => {
  it('builds the tag list in the documented order', () => {
    assert.equal(buildSiteTxt({ policy: 'enforce', maxAge: 604800, key: new Uint8Array([1, 2, 3]) }), 'v=MUSE1; p=enforce; ma=604800; k=AQID');
  });

  it('splits into character-strings of at most 255 octets, and parses back across the boundaries', () => {
    const text = buildSiteTxt({ policy: 'testing', maxAge: 86400, key: KEY });
    const strings = splitCharacterStrings(text);
    assert.deepEqual(
      strings.map((s) => s.length),
      [255, 255, 255, text.length - 765],
    );
    assert.equal(strings.join(''), text);
    assert.deepEqual(parseSiteTxt(strings), { kind: 'ok', record: { policy: 'testing', maxAge: 86400, key: KEY } });
  });

  it('splits exactly at 255 and 256 octets', () => {
    assert.deepEqual(splitCharacterStrings('a'.repeat(255)), ['a'.repeat(255)]);
    assert.deepEqual(splitCharacterStrings('a'.repeat(256)), ['a'.repeat(255), 'a']);
    assert.deepEqual(splitCharacterStrings(''), ['']);
  });

  it('accepts a string boundary inside a tag, whitespace around tags, a trailing ";" and unknown tags', () => {
    const result = parseSiteTxt(['v=MU', `SE1 ;p = opportunistic;\tma=0 ; x=future; k=${KEY_B64.slice(0, 100)}`, ` ${KEY_B64.slice(100)} ;`]);
    assert.deepEqual(result, { kind: 'ok', record: { policy: 'opportunistic', maxAge: 0, key: KEY } });
  });

  it('clamps ma= to one year', () => {
    const result = parseSiteTxt([`v=MUSE1; p=enforce; ma=9999999999; k=${KEY_B64}`]);
    assert.equal(result.kind === 'ok' && result.record.maxAge, MAX_AGE_LIMIT);
  });

  it('ignores records that are not MUSE records', () => {
    for (const text of ['v=spf1 -all', 'hello', '', 'p=enforce; v=MUSE1; ma=1; k=AA==', 'v=DKIM1; k=rsa']) {
      assert.deepEqual(parseSiteTxt([text]), { kind: 'foreign' }, text);
    }
  });

  it('reports other MUSE versions as unsupported', () => {
    assert.deepEqual(parseSiteTxt(['v=MUSE2; p=enforce']), { kind: 'unsupported-version', version: 'MUSE2' });
  });

  const malformed: [string, RegExp][] = [
    [`v=MUSE1; p=enforce; ma=60`, /missing k=/],
    [`v=MUSE1; ma=60; k=${KEY_B64}`, /missing p=/],
    [`v=MUSE1; p=enforce; k=${KEY_B64}`, /missing ma=/],
    [`v=MUSE1; p=reject; ma=60; k=${KEY_B64}`, /unknown policy p=reject/],
    [`v=MUSE1; p=Enforce; ma=60; k=${KEY_B64}`, /unknown policy/],
    [`v=MUSE1; p=enforce; ma=-1; k=${KEY_B64}`, /ma= is not a number/],
    [`v=MUSE1; p=enforce; ma=12345678901; k=${KEY_B64}`, /ma= is not a number/],
    [`v=MUSE1; p=enforce; ma=1h; k=${KEY_B64}`, /ma= is not a number/],
    [`v=MUSE1; p=enforce; ma=60; k=abc`, /not base64/],
    [`v=MUSE1; p=enforce; ma=60; k=ab!d`, /not base64/],
    [`v=MUSE1; p=enforce; ma=60; k=`, /not base64/],
    [`v=MUSE1; p=enforce; p=testing; ma=60; k=${KEY_B64}`, /p= appears twice/],
    [`v=MUSE1; p=enforce;; ma=60; k=${KEY_B64}`, /empty tag/],
    [`v=MUSE1; p=enforce; ma=60; junk; k=${KEY_B64}`, /without "="/],
    [`v=MUSE1; p=enforce; 9x=1; ma=60; k=${KEY_B64}`, /bad tag name/],
    [`v=MUSE1; p=enforce; ma=60; k=${KEY_B64}; n=café`, /printable ASCII/],
    [`v=MUSE1; p=enforce; ma=60; k=${Buffer.alloc(MAX_KEY_BYTES + 1).toString('base64')}`, /more than 16384/],
  ];
  for (const [text, reason] of malformed) {
    it(`reports "${text.slice(0, 48)}…" as malformed`, () => {
      const result = parseSiteTxt([text]);
      assert.equal(result.kind, 'malformed');
      assert.match(result.kind === 'malformed' ? result.reason : '', reason);
    });
  }

  it('orders policies testing < opportunistic < enforce', () => {
    assert.equal(strongerPolicy('testing', 'enforce'), 'enforce');
    assert.equal(strongerPolicy('opportunistic', 'testing'), 'opportunistic');
    assert.equal(strongerPolicy('enforce', 'opportunistic'), 'enforce');
  });
});

describe('KEY record', () => {
  const NAME = Buffer.from('\x07openpgp\x04muse\x07invalid\x00', 'latin1');

  it('builds flags 512, protocol 2, algorithm 253, the format name, then the key', () => {
    const rdata = buildKeyRdata(KEY);
    assert.deepEqual(rdata.subarray(0, 4), Buffer.from([0x02, 0x00, 2, 253]));
    assert.deepEqual(rdata.subarray(4, 4 + NAME.length), NAME);
    assert.deepEqual(new Uint8Array(rdata.subarray(4 + NAME.length)), KEY);
    assert.deepEqual(parseKeyRdata(rdata), { kind: 'ok', key: KEY });
  });

  const rdata = (flags: number, protocol: number, algorithm: number, rest: Buffer = Buffer.concat([NAME, Buffer.from(KEY)])) =>
    Buffer.concat([Buffer.from([flags >> 8, flags & 0xff, protocol, algorithm]), rest]);

  it('reads protocol 255 (any) and name type 00 (user) too, and allows "no authentication" keys', () => {
    assert.equal(parseKeyRdata(rdata(0x0200, 255, 253)).kind, 'ok');
    assert.equal(parseKeyRdata(rdata(0x0000, 2, 253)).kind, 'ok');
    assert.equal(parseKeyRdata(rdata(0x8200, 2, 253)).kind, 'ok');
  });

  it('ignores keys that are not ours: other protocols, zone keys, "no key"', () => {
    assert.deepEqual(parseKeyRdata(rdata(0x0200, 3, 253)), { kind: 'foreign', reason: 'protocol 3 is not email' });
    assert.deepEqual(parseKeyRdata(rdata(0x0100, 2, 253)), { kind: 'foreign', reason: 'a zone key' });
    assert.deepEqual(parseKeyRdata(rdata(0xc200, 2, 253)), { kind: 'foreign', reason: 'flags say "no key"' });
  });

  it('reports email keys in other forms as unsupported', () => {
    assert.deepEqual(parseKeyRdata(rdata(0x0200, 2, 1, Buffer.from([3, 1, 0, 1]))), {
      kind: 'unsupported',
      reason: 'algorithm 1 is not 253 (PRIVATEDNS + OpenPGP)',
    });
    const other = Buffer.concat([Buffer.from('\x05other\x07invalid\x00', 'latin1'), Buffer.from(KEY)]);
    assert.deepEqual(parseKeyRdata(rdata(0x0200, 2, 253, other)), {
      kind: 'unsupported',
      reason: 'private algorithm "other.invalid" is not openpgp.muse.invalid',
    });
  });

  it('reports a key whose flags forbid confidentiality', () => {
    assert.equal(parseKeyRdata(rdata(0x4200, 2, 253)).kind, 'not-for-encryption');
  });

  it('reports broken RDATA as malformed', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from([2, 0, 2]), /at least 4/],
      [rdata(0x0300, 2, 253), /reserved name type/],
      [rdata(0x1200, 2, 253), /extended flags/],
      [rdata(0x0200, 2, 253, Buffer.from([7, 0x6f, 0x70])), /does not start with a domain name/],
      [rdata(0x0200, 2, 253, Buffer.from([0xc0, 0x0c])), /does not start with a domain name/],
      [rdata(0x0200, 2, 253, NAME), /empty key/],
      [rdata(0x0200, 2, 253, Buffer.concat([NAME, Buffer.alloc(MAX_KEY_BYTES + 1)])), /more than 16384/],
    ];
    for (const [bytes, reason] of cases) {
      const result = parseKeyRdata(bytes);
      assert.equal(result.kind, 'malformed', bytes.toString('hex'));
      assert.match(result.kind === 'malformed' ? result.reason : '', reason);
    }
  });
});
