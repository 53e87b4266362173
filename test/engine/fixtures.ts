/**
 * Shared test fixtures: the committed test keys, the message corpus read from disk, and
 * deterministic clock and boundaries.
 */
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readKey, readPrivateKey, type PrivateKey, type PublicKey } from 'openpgp';
import { parseEntity } from '../../src/mime/entity.ts';
import type { HeaderEncoding, HeaderField } from '../../src/mime/header-fields.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
/** Folder of the message corpus. */
export const MESSAGES_DIR = join(root, 'messages');
const KEYS_DIR = join(root, 'keys');

/** One test key pair. */
export interface TestKey {
  readonly secret: PrivateKey;
  readonly public: PublicKey;
  readonly secretArmored: string;
  readonly publicArmored: string;
}

/** The test keys of test/fixtures/keys (see its README). */
export interface TestKeys {
  readonly senderSite: TestKey;
  readonly receiverSite: TestKey;
  readonly stranger: TestKey;
  readonly gpgSite: TestKey;
}

async function loadKey(name: string): Promise<TestKey> {
  const secretArmored = await readFile(join(KEYS_DIR, `${name}.sec.asc`), 'utf8');
  const publicArmored = await readFile(join(KEYS_DIR, `${name}.pub.asc`), 'utf8');
  return {
    secret: await readPrivateKey({ armoredKey: secretArmored }),
    public: await readKey({ armoredKey: publicArmored }),
    secretArmored,
    publicArmored,
  };
}

let keys: Promise<TestKeys> | undefined;

/** Loads (once per process) the committed test keys. */
export function testKeys(): Promise<TestKeys> {
  keys ??= (async () => ({
    senderSite: await loadKey('sender-site-test'),
    receiverSite: await loadKey('receiver-site-test'),
    stranger: await loadKey('stranger-test'),
    gpgSite: await loadKey('gpg-site-test'),
  }))();
  return keys;
}

/** A message split into the milter's view: header fields and raw body. */
export interface RawMessage {
  readonly headers: HeaderField[];
  readonly body: Buffer;
}

/** Splits raw message bytes into header fields and body. */
export function splitMessage(bytes: Buffer, encoding: HeaderEncoding = 'utf8'): RawMessage {
  const parsed = parseEntity(bytes, encoding);
  return { headers: parsed.fields, body: bytes.subarray(parsed.bodyOffset) };
}

/** Names of the corpus files, sorted. */
export async function corpusNames(): Promise<string[]> {
  return (await readdir(MESSAGES_DIR)).filter((n) => n.endsWith('.eml')).sort();
}

/** Reads one corpus message. */
export async function readCorpusMessage(name: string, encoding: HeaderEncoding = 'utf8'): Promise<RawMessage> {
  return splitMessage(await readFile(join(MESSAGES_DIR, name)), encoding);
}

/** The fixed clock of the tests: after the keys' creation, before any expiry. */
export const FIXED_NOW = new Date('2025-06-02T12:00:00Z');

/** A boundary generator yielding `=_test_1`, `=_test_2`, … */
export function countingBoundary(prefix = '=_test_'): () => string {
  let n = 0;
  return () => `${prefix}${++n}`;
}

/** Serialises header fields and body back into message bytes. */
export function joinMessage(headers: readonly HeaderField[], body: Buffer, encoding: HeaderEncoding = 'utf8'): Buffer {
  return Buffer.concat([Buffer.from(headers.map((h) => `${h.name}:${h.value}\r\n`).join('') + '\r\n', encoding), body]);
}
