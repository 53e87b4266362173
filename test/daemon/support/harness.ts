/**
 * The daemon under test, in-process: a temporary data directory holding the site key, a configuration built from
 * sections (written to `muse.yaml` there, so reload tests can rewrite it), `startDaemon` with the log captured,
 * and the MTA side through the milter library's `MilterClient` over the real socket, driven like Postfix.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { PrivateKey, PublicKey } from 'openpgp';
import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/index.ts';
import { startDaemon, type Daemon } from '../../../src/daemon/daemon.ts';
import { generateSiteKey } from '../../../src/keys/index.ts';
import {
  applyModifications,
  MAX_BODY_CHUNK,
  MilterClient,
  type DeliveredMessage,
  type EndOfMessageReply,
  type MacroValues,
  type Response,
  type Transaction,
} from '../../../milter/src/index.ts';

/** A site with its key pair. */
export interface TestSite {
  readonly domain: string;
  readonly privateKey: PrivateKey;
  readonly publicKey: PublicKey;
  /** The binary transferable public key, as published. */
  readonly bytes: Uint8Array;
  readonly fingerprint: string;
}

/** Generates a site key the way `genkey` does. */
export async function makeSite(domain: string): Promise<TestSite> {
  const privateKey = await generateSiteKey(domain);
  const publicKey = privateKey.toPublic();
  return { domain, privateKey, publicKey, bytes: publicKey.write(), fingerprint: publicKey.getFingerprint().toUpperCase() };
}

/** A configuration section tree; objects merge into the defaults of {@link baseSettings}, anything else replaces. */
export type Settings = { readonly [key: string]: unknown };

/** Merges `override` into `base`: nested objects merge, arrays and scalars replace. */
export function mergeSettings(base: Settings, override: Settings): Settings {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = merged[key];
    const bothObjects = isPlainObject(current) && isPlainObject(value);
    merged[key] = bothObjects ? mergeSettings(current, value) : value;
  }
  return merged;
}

function isPlainObject(value: unknown): value is Settings {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The settings every daemon test starts from: the milter on an ephemeral loopback port, DNS at the test zone with
 * one try per query and no TTL floor, the re-injection endpoint at `reinjectPort`, JSON log lines, no metrics, and
 * every clear-text message signed (`policy.signCleartext: always`; the tests of the default set it back).
 */
export function baseSettings(dataDir: string, site: TestSite, dnsServer: string, reinjectPort: number): Settings {
  return {
    dataDirectory: dataDir,
    site: { domain: site.domain, keyFile: `keys/${site.domain}.private.asc` },
    milter: { listen: 'inet:0@127.0.0.1', shutdownTimeout: '10s' },
    // One try per query, patient enough for a loaded machine; tests of an unanswered server set a shorter timeout.
    dns: { servers: [dnsServer], timeout: '3s', attempts: 1, overallTimeout: '6s', minTtl: 0 },
    mixedRecipients: { reinject: { host: '127.0.0.1', port: reinjectPort, timeout: '5s' } },
    logging: { format: 'json', target: 'stdout', level: 'info' },
    metrics: { enabled: false },
    policy: { signCleartext: 'always' },
  };
}

/** Writes the site's private key (mode 0600) where {@link baseSettings} points `site.keyFile`. */
export async function writeSiteKey(dataDir: string, site: TestSite): Promise<string> {
  await mkdir(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'keys', `${site.domain}.private.asc`);
  await writeFile(path, site.privateKey.armor(), { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

/** One parsed JSON log line. */
export type LogLine = Record<string, unknown>;

/** A daemon started by {@link startMuse}. */
export interface RunningMuse {
  readonly daemon: Daemon;
  /** The milter address, `inet:127.0.0.1:PORT`. */
  readonly address: string;
  readonly dataDir: string;
  /** The configuration file (reload reads it). */
  readonly configPath: string;
  /** Every log line so far, parsed. */
  readonly lines: LogLine[];
  /** The `message processed` lines so far. */
  summaries(): LogLine[];
  /** Writes a new configuration file from the base settings and `settings` (for reload tests). */
  rewriteConfig(settings: Settings | string): Promise<void>;
  /** Stops the daemon and removes the data directory. */
  stop(): Promise<void>;
}

/** What {@link startMuse} needs. */
export interface MuseOptions {
  readonly site: TestSite;
  readonly dnsServer: string;
  /** Port of the re-injection endpoint (an SmtpSink); default 1 (nothing listens: copies fail). */
  readonly reinjectPort?: number;
  readonly settings?: Settings;
}

/** Starts the daemon in-process with a fresh data directory. Call `stop()` (in `t.after`) when done. */
export async function startMuse(options: MuseOptions): Promise<RunningMuse> {
  const dataDir = await mkdtemp(join(tmpdir(), 'muse-daemon-'));
  const configPath = join(dataDir, 'muse.yaml');
  const base = baseSettings(dataDir, options.site, options.dnsServer, options.reinjectPort ?? 1);
  const yamlOf = (settings: Settings): string => stringify(mergeSettings(base, settings));
  const lines: LogLine[] = [];
  let pending = '';
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending += chunk.toString('utf8');
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        lines.push(JSON.parse(pending.slice(0, end)) as LogLine);
        pending = pending.slice(end + 1);
      }
      done();
    },
  });
  try {
    await writeSiteKey(dataDir, options.site);
    const text = yamlOf(options.settings ?? {});
    await writeFile(configPath, text);
    const daemon = await startDaemon({ configPath, initialConfig: parseConfig(text, configPath), handleSignals: false, logStream });
    let stopped = false;
    return {
      daemon,
      address: daemon.milterAddress,
      dataDir,
      configPath,
      lines,
      summaries: () => lines.filter((line) => line.message === 'message processed'),
      rewriteConfig: (settings) => writeFile(configPath, typeof settings === 'string' ? settings : yamlOf(settings)),
      stop: async () => {
        if (!stopped) await daemon.stop();
        stopped = true;
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/** The SMTP client as the MTA describes it to the milter. */
export type ClientInfo = NonNullable<Transaction['client']>;

/** A client on the loopback network: internal, so its mail is outbound. */
export const LOCAL_CLIENT: ClientInfo = { hostname: 'localhost', family: 'inet', port: 40000, address: '127.0.0.1' };

/** A client on the Internet (documentation range): not internal, so its mail is inbound by default. */
export const REMOTE_CLIENT: ClientInfo = { hostname: 'mx.a.test', family: 'inet', port: 40001, address: '192.0.2.25' };

/** A message as the MTA hands it over. */
export interface TestMessage {
  /** With angle brackets, as Postfix sends it. */
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly headers: ReadonlyArray<{ name: string; value: string }>;
  readonly body: Buffer;
  /** Macro values for MAIL, RCPT and end of message (`i`, `{auth_authen}`, ...). */
  readonly macros?: MacroValues;
}

/** What the milter answered to one message. */
export interface Outcome {
  /** The replies to RCPT, one per recipient. */
  readonly rcpt: readonly Response[];
  /** End of message; undefined when every recipient was refused (no DATA, as in Postfix). */
  readonly eom: EndOfMessageReply | undefined;
  /** The message as the MTA would deliver it, when the verdict lets it through. */
  readonly delivered: DeliveredMessage | undefined;
}

/** Bound on every reply from the daemon. */
const REPLY_TIMEOUT_MS = 15_000;

/** Connects to the daemon and opens an SMTP session (connect, HELO) with the connect-stage `macros`. */
export async function openSession(address: string, client: ClientInfo = LOCAL_CLIENT, macros: MacroValues = {}): Promise<MilterClient> {
  const mta = await MilterClient.connect(address, { replyTimeout: REPLY_TIMEOUT_MS, connectTimeout: 5_000 });
  try {
    for (const step of [await mta.connect(client, macros), await mta.helo('client.test', macros)]) {
      if (step.reply.kind !== 'continue') throw new Error(`session refused: ${JSON.stringify(step.reply)}`);
    }
  } catch (error) {
    await mta.close();
    throw error;
  }
  return mta;
}

/**
 * Sends one message on an open session, from MAIL to end of message, then resets the transaction with ABORT as
 * Postfix's smtpd does. Recipients refused at RCPT are left out of the delivered message; when all are refused
 * there is no DATA.
 */
export async function transact(mta: MilterClient, message: TestMessage): Promise<Outcome> {
  const macros = message.macros ?? {};
  try {
    const mail = await mta.mailFrom(message.sender, [], macros);
    if (mail.reply.kind !== 'continue') throw new Error(`MAIL refused: ${JSON.stringify(mail.reply)}`);
    const rcpt: Response[] = [];
    const accepted: string[] = [];
    for (const recipient of message.recipients) {
      const step = await mta.rcptTo(recipient, [], macros);
      rcpt.push(step.reply);
      if (step.reply.kind === 'continue') accepted.push(recipient);
    }
    if (accepted.length === 0) return { rcpt, eom: undefined, delivered: undefined };
    await expectContinue(mta.data(macros), 'DATA');
    for (const header of message.headers) await expectContinue(mta.header(header.name, header.value, macros), `header ${header.name}`);
    await expectContinue(mta.endOfHeaders(macros), 'end of headers');
    for (let offset = 0; offset < message.body.length; offset += MAX_BODY_CHUNK) {
      await expectContinue(mta.body(message.body.subarray(offset, offset + MAX_BODY_CHUNK), macros), 'body');
    }
    const eom = await mta.endOfMessage(macros);
    const passes = eom.verdict.kind === 'continue' || eom.verdict.kind === 'accept';
    const original = { sender: message.sender, recipients: accepted, headers: message.headers.map((h) => ({ ...h })), body: message.body, quarantine: undefined };
    return { rcpt, eom, delivered: passes ? applyModifications(original, eom.modifications) : undefined };
  } finally {
    mta.abort();
  }
}

async function expectContinue(step: Promise<{ reply: Response }>, what: string): Promise<void> {
  const { reply } = await step;
  if (reply.kind !== 'continue') throw new Error(`${what} answered ${JSON.stringify(reply)}`);
}

/** Sends one message on a session of its own. */
export async function sendOne(address: string, message: TestMessage, client: ClientInfo = LOCAL_CLIENT): Promise<Outcome> {
  const mta = await openSession(address, client, message.macros);
  try {
    return await transact(mta, message);
  } finally {
    await mta.close();
  }
}

/** The `replyCode` response the milter library decodes from `reply(code, enhanced, text)`. */
export function replyCode(code: number, enhanced: string, text: string): Response {
  return { kind: 'replyCode', reply: `${code} ${enhanced} ${text}` };
}

/** CRLF-terminated lines as a body. */
export function crlfBody(...lines: string[]): Buffer {
  return Buffer.from(lines.map((line) => `${line}\r\n`).join(''), 'utf8');
}

/** The documented fields of a summary line (`message processed`), without the ones that vary between runs. */
export function summaryFields(line: LogLine | undefined): LogLine {
  if (line === undefined) throw new Error('no summary line');
  const { queueId, direction, senderDomain, recipientDomains, action, reason, keys, dnssec } = line;
  if (typeof line.durationMs !== 'number' || line.level !== 'info') throw new Error(`malformed summary line ${JSON.stringify(line)}`);
  return { queueId, direction, senderDomain, recipientDomains, action, reason, keys, dnssec };
}
