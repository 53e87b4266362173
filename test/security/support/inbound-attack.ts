/**
 * The receiving side of the inbound attack tests: our daemon for site.test, reached over the milter protocol, with a
 * fake `_muse` zone in which attacker.test, victim.test and third.test publish site keys; and builders for the
 * messages an attacker can make, each shape of RFC 3156 with whatever header it likes inside: combined
 * sign+encrypt (§6.2, with or without Intended Recipient Fingerprints), a multipart/signed inside the encryption
 * (§6.1), encryption without a signature, and a multipart/signed in clear.
 */
import { createMessage, encrypt, type PrivateKey, type PublicKey } from 'openpgp';
import { armorBytes } from '../../../src/pgp/armor.ts';
import { signDetached } from '../../../src/pgp/detached.ts';
import { signAndEncrypt } from '../../../src/pgp/sign-encrypt.ts';
import { encryptedContentType, encryptedEnvelope, signedBody, signedContentType } from '../../../src/mime/pgp-mime-build.ts';
import { MuseZone } from '../../daemon/support/muse-zone.ts';
import { makeSite, REMOTE_CLIENT, sendOne, startMuse, type LogLine, type Outcome, type RunningMuse, type Settings, type TestSite } from '../../daemon/support/harness.ts';

/** A header field as the milter carries it: the value with its leading blank. */
export interface Field {
  readonly name: string;
  readonly value: string;
}

/** `name: value` as a field (one blank after the colon, as mail clients write it). */
export function field(name: string, value: string): Field {
  return { name, value: ` ${value}` };
}

/** The sites of the attack tests. */
export interface Sites {
  /** The receiving site (its daemon is under test). */
  readonly ours: TestSite;
  readonly attacker: TestSite;
  readonly victim: TestSite;
  /** A third site, to which the victim really wrote. */
  readonly third: TestSite;
  /** A key no domain publishes (someone's own key). */
  readonly stray: TestSite;
}

/** The running receiver. */
export interface Receiver {
  readonly zone: MuseZone;
  readonly sites: Sites;
  readonly daemon: RunningMuse;
  /** Sends a message from the Internet to bob@site.test; `queueId` names its summary line. */
  send(message: { headers: readonly Field[]; body: Buffer }, queueId: string): Promise<Outcome>;
  /** The summary line of `queueId`. */
  summary(queueId: string): LogLine;
  close(): Promise<void>;
}

/** Starts the zone (attacker.test, victim.test and third.test publish their keys) and our daemon. */
export async function startReceiver(settings: Settings = {}): Promise<Receiver> {
  const zone = await MuseZone.start();
  const [ours, attacker, victim, third, stray] = await Promise.all(['site.test', 'attacker.test', 'victim.test', 'third.test', 'stray.test'].map(makeSite)) as [TestSite, TestSite, TestSite, TestSite, TestSite];
  for (const site of [attacker, victim, third]) zone.publish(site.domain, [site.bytes]);
  let daemon: RunningMuse;
  try {
    daemon = await startMuse({ site: ours, dnsServer: zone.address, settings });
  } catch (error) {
    await zone.close();
    throw error;
  }
  return {
    zone,
    sites: { ours, attacker, victim, third, stray },
    daemon,
    send: (message, queueId) =>
      sendOne(daemon.address, { sender: '<x@attacker.test>', recipients: ['<bob@site.test>'], headers: message.headers.map((h) => ({ ...h })), body: message.body, macros: { i: queueId } }, REMOTE_CLIENT),
    summary: (queueId) => {
      const line = daemon.summaries().find((l) => l.queueId === queueId);
      if (line === undefined) throw new Error(`no summary line for ${queueId}`);
      return line;
    },
    close: async () => {
      await daemon.stop();
      await zone.close();
    },
  };
}

export const DATE = 'Mon, 02 Jun 2025 12:00:00 +0000';
export const BODY_TEXT = 'Please wire 50000 EUR to the account below today.\r\n';

/** A MIME entity: the fields, a blank line, the body (CRLF throughout). */
export function entity(fields: readonly Field[], body = BODY_TEXT): Buffer {
  return Buffer.from(`${fields.map((f) => `${f.name}:${f.value}\r\n`).join('')}\r\n${body}`, 'utf8');
}

/** The header of an inner text entity claiming `from`, to bob@site.test unless `to` says otherwise. */
export function innerFields(from: string, extra: { to?: string; subject?: string; more?: readonly Field[] } = {}): Field[] {
  return [
    field('From', from),
    field('To', extra.to ?? 'Bob <bob@site.test>'),
    field('Subject', extra.subject ?? 'Urgent: payment today'),
    field('Date', DATE),
    field('Message-ID', '<inner-1@victim.test>'),
    ...(extra.more ?? []),
    field('MIME-Version', '1.0'),
    field('Content-Type', 'text/plain; charset=utf-8'),
  ];
}

/** The transport header of an attack message (before its MIME fields): the From SPF and DKIM would have checked. */
export function transportFields(from: string): Field[] {
  return [field('From', from), field('To', 'Bob <bob@site.test>'), field('Subject', '...'), field('Date', DATE), field('Message-ID', '<outer-1@attacker.test>')];
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** RFC 3156 §6.2 as our outbound writes it: one-pass signed by `signer`, Intended Recipient Fingerprints of `to`. */
export async function signedAndEncrypted(inner: Buffer, signer: PrivateKey, to: readonly PublicKey[]): Promise<Buffer> {
  const binary = await collect(await signAndEncrypt({ plaintext: inner, signingKey: signer, encryptionKeys: to, date: new Date() }));
  return armorBytes('MESSAGE', binary);
}

/** RFC 3156 §6.2 as openpgp.js (and GnuPG 2.2) write it: signed, without Intended Recipient Fingerprints. */
export async function signedAndEncryptedUnbound(inner: Buffer, signer: PrivateKey, to: readonly PublicKey[]): Promise<Buffer> {
  const message = await createMessage({ binary: inner, format: 'binary' });
  const binary = await encrypt({ message, encryptionKeys: [...to], signingKeys: signer, format: 'binary' });
  return armorBytes('MESSAGE', binary);
}

/** Encrypted to `to` without any signature. */
export async function encryptedOnly(inner: Buffer, to: readonly PublicKey[]): Promise<Buffer> {
  const message = await createMessage({ binary: inner, format: 'binary' });
  const binary = await encrypt({ message, encryptionKeys: [...to], format: 'binary' });
  return armorBytes('MESSAGE', binary);
}

/** A multipart/signed (RFC 3156 §5) of `signedPart` by `signer`: its Content-Type value and body. */
export async function multipartSigned(signedPart: Buffer, signer: PrivateKey): Promise<{ contentType: string; body: Buffer }> {
  const signature = await signDetached(signedPart, signer, new Date());
  return { contentType: signedContentType('sig-b', signature.micalg), body: Buffer.concat(signedBody('sig-b', signedPart, signature.armored)) };
}

/**
 * RFC 3156 §6.1: a multipart/signed entity (`payloadFields`, then the Content-Type) whose signed part is
 * `signedPart`, encrypted to `to` without a signature of its own.
 */
export async function nestedSigned(signedPart: Buffer, signer: PrivateKey, to: readonly PublicKey[], payloadFields: readonly Field[] = []): Promise<Buffer> {
  const signed = await multipartSigned(signedPart, signer);
  const payload = Buffer.concat([Buffer.from(`${payloadFields.map((f) => `${f.name}:${f.value}\r\n`).join('')}Content-Type:${signed.contentType}\r\n\r\n`, 'utf8'), signed.body]);
  return encryptedOnly(payload, to);
}

/** The outer Content-Type of {@link pgpMime}, folded with CRLF as written. */
export const ENCRYPTED_TYPE = encryptedContentType('enc-b');

/** A multipart/encrypted message: `outer`, MIME-Version, the Content-Type, and the armored message in the body. */
export function pgpMime(outer: readonly Field[], armored: Buffer): { headers: Field[]; body: Buffer } {
  const envelope = encryptedEnvelope('enc-b');
  return { headers: [...outer, field('MIME-Version', '1.0'), { name: 'Content-Type', value: ENCRYPTED_TYPE }], body: Buffer.concat([envelope.head, armored, envelope.tail]) };
}

/** What a verdict says, as the A-R field of site.test writes it. */
export interface ExpectedVerdict {
  readonly result: 'pass' | 'policy' | 'fail' | 'none' | 'temperror';
  readonly reason: string;
  readonly from?: string;
  readonly fingerprint?: string;
  readonly dnssec?: boolean;
  readonly encrypted: boolean;
}

/** The Authentication-Results field our daemon adds for `verdict`, folded with LF as the milter carries it. */
export function authResults(verdict: ExpectedVerdict): Field {
  const parts = [`x-muse=${verdict.result} reason="${verdict.reason}"`];
  if (verdict.from !== undefined) parts.push(`header.from=${verdict.from}`);
  if (verdict.fingerprint !== undefined) parts.push(`policy.key-fingerprint=${verdict.fingerprint}`);
  if (verdict.dnssec !== undefined) parts.push(`policy.dnssec=${verdict.dnssec ? 'yes' : 'no'}`);
  parts.push(`policy.encrypted=${verdict.encrypted ? 'yes' : 'no'}`);
  return { name: 'Authentication-Results', value: ` site.test;\n\t${parts.join('\n\t')}` };
}

/** The summary-line reason for a verdict (`fail (signer-not-published) from victim.test`). */
export function summaryReason(verdict: ExpectedVerdict): string {
  return `${verdict.result} (${verdict.reason})${verdict.from === undefined ? '' : ` from ${verdict.from}`}`;
}
