/**
 * The crypto limit: Node's native crypto (OpenSSL) doing the primitives of one signed and encrypted message,
 * for the same bytes, on every core (one worker thread per core), with nothing else — no OpenPGP packets, no
 * MIME, no milter protocol. Per message:
 * - per recipient key: an ephemeral X25519 key pair and the shared secret with the recipient's key, SHA-256
 *   over it (the KDF), AES-256 key wrap of the session key;
 * - SHA-512 over the message and an Ed25519 signature of the digest;
 * - AES-256-CFB over the message and SHA-1 over it (SEIPDv1 and its modification detection code).
 */
import {
  createCipheriv,
  createHash,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { round } from '../stats.ts';

/** What the worker threads are given. */
interface LimitWorkerData {
  readonly crypto: true;
  readonly message: Uint8Array;
  readonly recipients: number;
  readonly durationMs: number;
}

/** What the crypto limit measured. */
export interface CryptoLimitResult {
  readonly threads: number;
  readonly messages: number;
  readonly elapsedMs: number;
  readonly messagesPerSecond: number;
  readonly bytesPerSecond: number;
  /** Mean time of one message on one core, milliseconds. */
  readonly perMessageMs: number;
}

const WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

function protectOnce(message: Uint8Array, recipientKeys: readonly KeyObject[], signingKey: KeyObject): number {
  const sessionKey = randomBytes(32);
  let out = 0;
  for (const recipient of recipientKeys) {
    const ephemeral = generateKeyPairSync('x25519');
    const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
    const kek = createHash('sha256').update(shared).update('Anonymous Sender    ').digest();
    out += createCipheriv('id-aes256-wrap', kek, WRAP_IV).update(sessionKey).length;
  }
  const digest = createHash('sha512').update(message).digest();
  out += sign(null, digest, signingKey).length;
  const cipher = createCipheriv('aes-256-cfb', sessionKey, Buffer.alloc(16));
  out += cipher.update(message).length + cipher.final().length;
  out += createHash('sha1').update(message).digest().length;
  return out;
}

function measure(data: LimitWorkerData): { messages: number; elapsedMs: number } {
  const recipientKeys = Array.from({ length: data.recipients }, () => generateKeyPairSync('x25519').publicKey);
  const signingKey = generateKeyPairSync('ed25519').privateKey;
  const message = Buffer.from(data.message);
  protectOnce(message, recipientKeys, signingKey);
  const started = performance.now();
  let messages = 0;
  while (performance.now() - started < data.durationMs) {
    protectOnce(message, recipientKeys, signingKey);
    messages++;
  }
  return { messages, elapsedMs: performance.now() - started };
}

/** Runs the crypto limit on `threads` worker threads (default: one per core) for `durationMs`. */
export async function runCryptoLimit(message: Buffer, recipients: number, durationMs: number, threads = availableParallelism()): Promise<CryptoLimitResult> {
  const results = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<{ messages: number; elapsedMs: number }>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { crypto: true, message, recipients, durationMs } satisfies LimitWorkerData });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const messages = results.reduce((sum, r) => sum + r.messages, 0);
  const elapsedMs = Math.max(...results.map((r) => r.elapsedMs));
  return {
    threads,
    messages,
    elapsedMs: round(elapsedMs, 1),
    messagesPerSecond: round((messages * 1000) / elapsedMs, 1),
    bytesPerSecond: Math.round((messages * message.length * 1000) / elapsedMs),
    perMessageMs: round((elapsedMs * threads) / messages, 4),
  };
}

if (!isMainThread && (workerData as LimitWorkerData | undefined)?.crypto === true) {
  parentPort?.postMessage(measure(workerData as LimitWorkerData));
}
