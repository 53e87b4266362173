/**
 * Bodies that look encrypted, genuinely or only by their label, for the tests of the detection of
 * already encrypted mail: OpenPGP messages made with openpgp.js, PGP/MIME framing around them,
 * and CMS objects made by the real `openssl cms` (which must be installed: a test needing it fails
 * when it cannot run).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { createMessage, encrypt, sign } from 'openpgp';
import { packet } from '../../src/pgp/fast/packet-framing.ts';
import { armorBytes } from '../../src/pgp/armor.ts';
import { encodeBase64Lines } from '../../src/mime/transfer-encoding.ts';
import { FIXED_NOW, testKeys } from '../engine/fixtures.ts';

export const PLAIN_TEXT = Buffer.from('The launch is on Friday. Tell nobody.\r\n');

/** Armored OpenPGP messages of each kind over {@link PLAIN_TEXT}. */
export interface PgpSamples {
  /** Signed and encrypted to the receiving site's key. */
  readonly encrypted: Buffer;
  /** Signed only (one-pass signature, literal data, signature): readable by anyone. */
  readonly signedOnly: Buffer;
  /** Compressed literal data: readable by anyone. */
  readonly compressedOnly: Buffer;
}

let pgp: Promise<PgpSamples> | undefined;

/** The OpenPGP samples, made once per process. */
export function pgpSamples(): Promise<PgpSamples> {
  pgp ??= (async () => {
    const keys = await testKeys();
    const message = await createMessage({ binary: PLAIN_TEXT });
    const encrypted = await encrypt({ message, encryptionKeys: keys.receiverSite.public, signingKeys: keys.senderSite.secret, date: FIXED_NOW, format: 'binary' });
    const signedOnly = await sign({ message, signingKeys: keys.senderSite.secret, date: FIXED_NOW, format: 'binary' });
    // RFC 9580 §5.6: algorithm 1 (ZIP, raw deflate) around a literal data packet (§5.9, binary, no name, time 0).
    const literal = packet(11, Buffer.concat([Buffer.from('b\0\0\0\0\0', 'latin1'), PLAIN_TEXT]));
    const compressedOnly = packet(8, Buffer.concat([Buffer.from([1]), deflateRawSync(literal)]));
    return {
      encrypted: armorBytes('MESSAGE', encrypted),
      signedOnly: armorBytes('MESSAGE', signedOnly),
      compressedOnly: armorBytes('MESSAGE', compressedOnly),
    };
  })();
  return pgp;
}

/** The Content-Type value (with its leading blank) of {@link pgpMimeBody}. */
export const PGP_MIME_TYPE = ' multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc-b"';

/** An RFC 3156 §4 body around `content` as the second part; `version` is the first part's body. */
export function pgpMimeBody(content: Buffer | string, version = 'Version: 1'): Buffer {
  return Buffer.concat([
    Buffer.from(`This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n--enc-b\r\nContent-Type: application/pgp-encrypted\r\n\r\n${version}\r\n\r\n`),
    Buffer.from('--enc-b\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'),
    Buffer.from(content),
    Buffer.from('\r\n--enc-b--\r\n'),
  ]);
}

/** A CMS object in base64 lines, as an S/MIME body. */
export function smimeBody(der: Buffer): Buffer {
  return encodeBase64Lines(der);
}

/** What `openssl cms` made: enveloped data (by -encrypt) and signed data (by -sign), both DER. */
export interface CmsSamples {
  readonly enveloped: Buffer;
  readonly authEnveloped: Buffer;
  readonly signed: Buffer;
}

let cms: Promise<CmsSamples> | undefined;

/** The CMS samples, made once per process with a throw-away certificate. */
export function cmsSamples(): Promise<CmsSamples> {
  cms ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'muse-cms-'));
    try {
      const file = (name: string) => join(dir, name);
      await writeFile(file('plain.txt'), Buffer.concat([Buffer.from('Content-Type: text/plain\r\n\r\n'), PLAIN_TEXT]));
      await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('key.pem'), '-out', file('cert.pem'), '-subj', '/CN=muse test', '-days', '2']);
      await openssl(['cms', '-encrypt', '-binary', '-aes256', '-in', file('plain.txt'), '-outform', 'DER', '-out', file('enveloped.der'), file('cert.pem')]);
      await openssl(['cms', '-encrypt', '-binary', '-aes-256-gcm', '-in', file('plain.txt'), '-outform', 'DER', '-out', file('auth.der'), file('cert.pem')]);
      await openssl(['cms', '-sign', '-binary', '-nodetach', '-in', file('plain.txt'), '-signer', file('cert.pem'), '-inkey', file('key.pem'), '-outform', 'DER', '-out', file('signed.der')]);
      return { enveloped: await readFile(file('enveloped.der')), authEnveloped: await readFile(file('auth.der')), signed: await readFile(file('signed.der')) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return cms;
}

/** Runs openssl; rejects (so the test fails) when it cannot start or exits non-zero. */
function openssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`openssl ${args[0]} ${args[1] ?? ''} exited ${code}: ${Buffer.concat(stderr).toString('utf8')}`));
    });
  });
}
