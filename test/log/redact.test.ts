/** The redaction guard: what it replaces, what it keeps. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyError } from '../../src/keys/index.ts';
import { REDACTED, redactFields, redactText } from '../../src/log/index.ts';

const ARMOR = '-----BEGIN PGP MESSAGE-----\n\nwV4D...\n-----END PGP MESSAGE-----';

describe('redactText', () => {
  it('replaces any text holding armored OpenPGP data', () => {
    assert.equal(redactText(`decrypt failed on ${ARMOR}`), REDACTED);
    assert.equal(redactText('-----BEGIN PGP SIGNATURE-----'), REDACTED);
  });

  it('keeps other text', () => {
    assert.equal(redactText('no key published for partner.test'), 'no key published for partner.test');
  });
});

describe('redactFields', () => {
  it('replaces content under sensitive names, keeping counts and flags', () => {
    assert.deepEqual(
      redactFields({
        body: 'hello',
        rawBody: ['a'],
        bodyBytes: 5,
        plaintext: 'x',
        ciphertext: 'y',
        payload: { a: 1 },
        privateKey: 'k',
        secret: 's',
        markerSecret: Buffer.from('s'),
        passphrase: 'p',
        password: 'p',
        armored: 'a',
        subject: 'Hello',
        Subject: 'Hello',
        key: 'k',
        keyMaterial: 'k',
        hasBody: true,
        secretLength: null,
      }),
      {
        body: REDACTED,
        rawBody: REDACTED,
        bodyBytes: 5,
        plaintext: REDACTED,
        ciphertext: REDACTED,
        payload: REDACTED,
        privateKey: REDACTED,
        secret: REDACTED,
        markerSecret: REDACTED,
        passphrase: REDACTED,
        password: REDACTED,
        armored: REDACTED,
        subject: REDACTED,
        Subject: REDACTED,
        key: REDACTED,
        keyMaterial: REDACTED,
        hasBody: true,
        secretLength: null,
      },
    );
  });

  it('keeps paths, fingerprints and ordinary fields', () => {
    const fields = {
      privateKeyFile: '/etc/muse-milter/keys/example.org.private.asc',
      secretPath: '/var/lib/muse-milter/marker-secret',
      keyDirectory: '/etc/muse-milter/keys',
      keys: ['862933CBAF2F61E09CDAF7852A7F6FF72EE99B9A'],
      fingerprint: '862933CBAF2F61E09CDAF7852A7F6FF72EE99B9A',
      queueId: '4F2A1',
      recipientDomains: ['a.test'],
      dnssec: false,
    };
    assert.deepEqual(redactFields(fields), fields);
  });

  it('catches armored data under any name and at any depth', () => {
    assert.deepEqual(redactFields({ note: ARMOR, list: ['ok', ARMOR], deep: { deeper: { text: ARMOR, body: 'x', ok: 'fine' } } }), {
      note: REDACTED,
      list: ['ok', REDACTED],
      deep: { deeper: { text: REDACTED, body: REDACTED, ok: 'fine' } },
    });
  });

  it('replaces bytes by their length and objects it cannot see into', () => {
    class Holder {
      secret = 'inside';
    }
    assert.deepEqual(
      redactFields({ bytes: Buffer.from('abc'), view: new Uint8Array(4), buffer: new ArrayBuffer(2), instance: new Holder(), map: new Map([['k', 'v']]) }),
      { bytes: `${REDACTED} 3 bytes`, view: `${REDACTED} 4 bytes`, buffer: `${REDACTED} 2 bytes`, instance: REDACTED, map: REDACTED },
    );
  });

  it('reduces errors to name, code and message, redacting the message too', () => {
    assert.deepEqual(
      redactFields({
        error: new KeyError('KEY_FILE_INSECURE', 'private key file /k has mode 0640'),
        plain: new Error('boom'),
        leaky: new Error(`cannot parse ${ARMOR}`),
      }),
      { error: 'KeyError KEY_FILE_INSECURE: private key file /k has mode 0640', plain: 'Error: boom', leaky: REDACTED },
    );
  });

  it('drops functions and symbols, writes dates and big integers as text, and stops at a nesting bound', () => {
    assert.deepEqual(
      redactFields({ fn: () => 1, sym: Symbol('s'), when: new Date(0), big: 10n, nested: { a: { b: { c: { d: { e: 1 } } } } } }),
      { when: '1970-01-01T00:00:00.000Z', big: '10', nested: { a: { b: { c: { d: REDACTED } } } } },
    );
  });
});
