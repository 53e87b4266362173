/**
 * The hostile-load phase: does a stream of hostile messages slow down ordinary mail, and does the milter's memory
 * stay within what its limits imply? One muse-milter with the shipped configuration (one worker, every limit at
 * its default) gets ordinary mail at a fixed paced rate, well below saturation: 4 KiB outbound messages (the
 * benchmark's ordinary shape) and 4 KiB inbound messages signed by a published site and encrypted to us. Their
 * latency is measured alone, then with one hostile shape in flight at a time (docs/security.md §7):
 *
 * - inner-header flood: an encrypted message whose inner header has 8 000 distinct fields;
 * - decompression bomb: 30 MiB of one letter, compressed and encrypted (about 40 KB on the wire);
 * - PKESK flood: 2 000 session key packets naming our key, none of which opens;
 * - connection flood: idle connections up to `milter.maxConnections`, and a stream of connections beyond it;
 * - spool flood: a body larger than `limits.maxMessageSize`, sent in 64 KiB chunks;
 * - large decryptions: several large encrypted messages at once, more than `limits.maxConcurrentDecryptions`.
 *
 * For each it records the ordinary p50/p99 (and their ratio to the unloaded run), the peak resident memory of
 * the milter's processes against a bound computed from its limits ({@link memoryBound}), and what the hostile
 * messages got (the documented failure action, counted).
 */
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { generateKey, type PrivateKey, type PublicKey } from 'openpgp';
import { MAX_BODY_CHUNK, MilterClient, type Transaction } from '../milter/src/index.ts';
import { loadConfig, type Config } from '../src/config/index.ts';
import { encryptedContentType, encryptedEnvelope } from '../src/mime/pgp-mime-build.ts';
import { armorBytes } from '../src/pgp/armor.ts';
import { signAndEncrypt } from '../src/pgp/sign-encrypt.ts';
import { bombEntity, encryptedTo, headerFloodEntity, sessionKeyPacketFlood } from '../test/support/hostile-messages.ts';
import { siblingModule, startWorker } from '../src/lanes/thread-start.ts';
import type { HostileSenderData, HostileSenderResult } from './hostile-sender.ts';
import { runLoad, type LoadResult, type ReplyCheck } from './load-generator.ts';
import { buildMessage, SENDER_DOMAIN, recipientDomains, textBody, type BenchMessage } from './messages.ts';
import { ProcessMonitor, treeRssMiB } from './process-monitor.ts';
import type { HostileLoadReport, HostileRun, OrdinaryFigures } from './report.ts';
import { round } from './stats.ts';
import { startMuse } from './targets/muse.ts';

const KiB = 1024;
const MiB = 1024 * 1024;

/** The limits the memory bound and the hostile shapes depend on, as the instance's configuration sets them. */
export interface HostileLimits {
  readonly workers: number;
  readonly maxConnections: number;
  readonly maxBufferedBody: number;
  readonly maxFrameSize: number;
  readonly maxMessageSize: number;
  readonly maxDecompressionRatio: number;
  readonly maxHeaderFields: number;
  readonly maxSessionKeyPackets: number;
  readonly maxConcurrentDecryptions: number;
}

/** The limits of a parsed configuration (the instance's own file, so they are the defaults it really runs with). */
function limitsOf(config: Config): HostileLimits {
  return {
    workers: config.milter.workers === 'auto' ? availableParallelism() : config.milter.workers,
    maxConnections: config.milter.maxConnections,
    maxBufferedBody: config.milter.maxBufferedBody,
    maxFrameSize: config.milter.maxFrameSize,
    maxMessageSize: config.limits.maxMessageSize,
    maxDecompressionRatio: config.limits.maxDecompressionRatio,
    maxHeaderFields: config.limits.maxHeaderFields,
    maxSessionKeyPackets: config.limits.maxSessionKeyPackets,
    maxConcurrentDecryptions: config.limits.maxConcurrentDecryptions,
  };
}

/** Ordinary mail: messages per second in each direction, and connections per direction. */
const ORDINARY_RATE = 50;
const ORDINARY_CONNECTIONS = 8;

/** Where the hostile sender's mail comes from: outside the internal networks, so it is inbound. */
const REMOTE = { hostname: 'mx.attacker.example', family: 'inet' as const, port: 41000, address: '192.0.2.25' };
/**
 * Where the ordinary inbound mail comes from: the mail servers of several sending sites, as a site receives it,
 * each another host than the attacker's. Message `i` comes from server `i mod` {@link PEER_SERVERS}.
 */
const PEER_SERVERS = 8;
function peerRemote(index: number): Remote {
  const n = index % PEER_SERVERS;
  return { hostname: `mx${n}.peer.example`, family: 'inet', port: 41000, address: `198.51.100.${10 + n}` };
}
type Remote = typeof REMOTE;
const OUR_RECIPIENT = `postmaster@${SENDER_DOMAIN}`;

/** What the phase needs from the benchmark. */
export interface HostileSetup {
  /** A fresh directory for the instance. */
  readonly dir: string;
  /** The loopback DNS server. */
  readonly dns: string;
  readonly metricsPort: number;
  /** Our site's key (the milter holds it). */
  readonly siteKey: PrivateKey;
  /** A site that publishes its key in the benchmark's DNS, with its private key: it sends us ordinary mail. */
  readonly peer: { readonly domain: string; readonly key: PrivateKey };
  /** Multiplies every duration (`--scale`). */
  readonly scale: number;
  readonly log: (text: string) => void;
}

/** One hostile shape: how its messages (or connections) are made and what each must get. */
interface Shape {
  readonly name: string;
  readonly description: string;
  /** The final reply each hostile message must get (a label of {@link LoadResult.verdicts}). */
  readonly expected: string;
  /** Concurrent hostile connections sending back to back. */
  readonly connections: number;
  /** Plaintext one decryption of this shape may produce under the limits (bytes); 0 when none is decrypted. */
  readonly decryptedBytes: number;
  readonly message?: BenchMessage;
  /** For the connection flood: not messages, connections. */
  readonly connectionFlood?: true;
}

/** An inbound transaction from a remote client (the attacker's by default) to us. */
function inbound(from: string, headers: Transaction['headers'], body: Buffer, index: number, tag: string, remote: Remote = REMOTE): BenchMessage {
  const queueId = `${tag}${index.toString(16).toUpperCase().padStart(8, '0')}`;
  const transaction: Transaction = {
    client: { ...remote, port: remote.port + (index % 20000) },
    helo: remote.hostname,
    sender: `<${from}>`,
    recipients: [`<${OUR_RECIPIENT}>`],
    headers,
    body,
    macros: { i: queueId, j: `mx.${SENDER_DOMAIN}`, '{daemon_name}': 'smtpd', '{client_addr}': remote.address, v: 'Postfix 3.7.11' },
  };
  const headerText = headers.map((h) => `${h.name}:${h.value}\r\n`).join('');
  return { transaction, raw: Buffer.concat([Buffer.from(`${headerText}\r\n`, 'latin1'), body]) };
}

/** The outer header of an encrypted message from `from` to us. */
function encryptedHeaders(from: string, subject: string): Transaction['headers'] {
  return [
    { name: 'From', value: ` <${from}>` },
    { name: 'To', value: ` <${OUR_RECIPIENT}>` },
    { name: 'Subject', value: ` ${subject}` },
    { name: 'Date', value: ' Mon, 23 Nov 2026 10:00:00 +0000' },
    { name: 'Message-ID', value: ` <${subject.replace(/\W/g, '')}@bench.test>` },
    { name: 'MIME-Version', value: ' 1.0' },
    { name: 'Content-Type', value: encryptedContentType('enc-b') },
  ];
}

/** A PGP/MIME body (RFC 3156) around a binary OpenPGP message. */
function pgpMimeBody(binary: Uint8Array): Buffer {
  const envelope = encryptedEnvelope('enc-b');
  return Buffer.concat([envelope.head, armorBytes('MESSAGE', binary), envelope.tail]);
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/**
 * The ordinary inbound message: 4 KiB in all (3 KiB of text, or `textBytes`), signed by `peer` and encrypted to us,
 * as another site's milter sends it.
 */
async function ordinaryInbound(peer: HostileSetup['peer'], ours: PublicKey, textBytes = 3 * KiB): Promise<(index: number) => BenchMessage> {
  const from = `alice@${peer.domain}`;
  const innerHeader = [
    `From: Alice <${from}>`,
    `To: <${OUR_RECIPIENT}>`,
    'Subject: Quarterly figures',
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    `Message-ID: <ordinary@${peer.domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    '',
  ].join('\r\n');
  const inner = Buffer.concat([Buffer.from(innerHeader, 'latin1'), textBody(textBytes)]);
  const binary = await collect(await signAndEncrypt({ plaintext: inner, signingKey: peer.key, encryptionKeys: [ours], date: new Date() }));
  const body = pgpMimeBody(binary);
  const headers = encryptedHeaders(from, 'Quarterly figures');
  return (index) => inbound(from, headers, body, index, 'I', peerRemote(index));
}

/** Every hostile shape, its message built once. */
async function hostileShapes(ours: PublicKey, limits: HostileLimits): Promise<Shape[]> {
  const attacker = 'mallory@attacker.example';
  const { publicKey: stranger } = await generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ email: 'stranger@stranger.example' }], format: 'object' });
  const encrypted = async (name: string, binary: Uint8Array): Promise<BenchMessage> => inbound(attacker, encryptedHeaders(attacker, name), pgpMimeBody(binary), 0, 'H');
  const headerFlood = headerFloodEntity(8000);
  const bomb = await encryptedTo(ours, bombEntity(30 * MiB), 'zlib');
  const large = Buffer.concat([Buffer.from('Content-Type: text/plain\r\n\r\n'), textBody(8 * MiB)]);
  const control = Buffer.concat([Buffer.from('Content-Type: text/plain\r\n\r\n'), textBody(200 * KiB)]);
  const spoolBody = textBody(limits.maxMessageSize + 2 * MiB);
  return [
    {
      name: 'inner-header flood',
      description: `encrypted to us, 8 000 distinct inner header fields (limit ${limits.maxHeaderFields})`,
      expected: 'reply 451 4.3.4',
      connections: 2,
      decryptedBytes: headerFlood.length,
      message: await encrypted('header flood', await encryptedTo(ours, headerFlood)),
    },
    {
      name: 'decompression bomb',
      description: `30 MiB of one letter, zlib, encrypted to us (${round(bomb.length / KiB, 0)} KiB of OpenPGP data)`,
      expected: 'reply 451 4.3.4',
      connections: 2,
      decryptedBytes: Math.min(limits.maxDecompressionRatio * bomb.length, limits.maxMessageSize),
      message: await encrypted('bomb', bomb),
    },
    {
      name: 'PKESK flood',
      description: `2 000 session key packets naming our key, none opens (limit ${limits.maxSessionKeyPackets})`,
      expected: 'reply 451 4.3.4',
      connections: 2,
      decryptedBytes: 0,
      message: await encrypted('pkesk flood', await sessionKeyPacketFlood(ours, stranger, 2000)),
    },
    {
      name: 'connection flood',
      description: `idle connections up to maxConnections (${limits.maxConnections}), then connections beyond it, 2 at a time`,
      expected: 'tempfail',
      connections: 2,
      decryptedBytes: 0,
      connectionFlood: true,
    },
    {
      name: 'spool flood',
      description: `a ${round(spoolBody.length / MiB, 0)} MiB body (limit ${limits.maxMessageSize / MiB} MiB) in chunks of ${MAX_BODY_CHUNK} bytes`,
      expected: 'reply 451 4.3.4',
      connections: 2,
      decryptedBytes: 0,
      message: inbound(attacker, [{ name: 'From', value: ` <${attacker}>` }, { name: 'Subject', value: ' flood' }], spoolBody, 0, 'S'),
    },
    {
      // Not hostile: ordinary mail of the floods' size, sent the same way. Beside it, the rows above show whether a
      // hostile shape costs more than any mail of its size does, or only what a busy sender's mail costs.
      name: 'control: ordinary 200 KiB',
      description: `control, not hostile: an ordinary ${round(control.length / KiB, 0)} KiB message encrypted to us, back to back as the floods`,
      expected: 'continue',
      connections: 2,
      decryptedBytes: control.length,
      message: await encrypted('control', await encryptedTo(ours, control)),
    },
    {
      name: 'large decryptions',
      description: `8 connections, each an 8 MiB message encrypted to us (${limits.maxConcurrentDecryptions} decrypt at once)`,
      expected: 'continue',
      connections: 8,
      decryptedBytes: large.length,
      message: await encrypted('large', await encryptedTo(ours, large)),
    },
  ];
}

/** The ordinary outbound check: encrypted (as the main phases check it). */
const outboundCheck: ReplyCheck = (reply) => {
  if (reply.verdict.kind !== 'continue') return `verdict ${reply.verdict.kind}`;
  const encrypted = reply.modifications.some((m) => 'name' in m && m.name === 'Content-Type' && 'value' in m && m.value.includes('multipart/encrypted'));
  return encrypted && reply.modifications.some((m) => m.kind === 'replaceBody') ? undefined : 'not encrypted';
};

/** The ordinary inbound check: decrypted, and the sending site's signature verified (x-muse=pass). */
const inboundCheck: ReplyCheck = (reply) => {
  if (reply.verdict.kind !== 'continue') return `verdict ${reply.verdict.kind}`;
  if (!reply.modifications.some((m) => m.kind === 'replaceBody')) return 'not decrypted';
  const results = reply.modifications.find((m) => 'name' in m && m.name === 'Authentication-Results');
  return results !== undefined && 'value' in results && results.value.includes('x-muse=pass') ? undefined : 'no x-muse=pass';
};

/** What one connection flood did: connections admitted and held until one was refused, then every later one by its answer. */
export interface FloodOutcome {
  admitted: number;
  outcomes: Record<string, number>;
}

/**
 * Opens connections (each negotiated, then CONNECT) and holds them idle until one is refused, then keeps opening
 * `parallel` at a time until `signal` aborts; every one beyond the limit must get a tempfail at CONNECT.
 */
export async function connectionFlood(address: string, parallel: number, signal: AbortSignal): Promise<FloodOutcome> {
  const held: MilterClient[] = [];
  const outcome: FloodOutcome = { admitted: 0, outcomes: {} };
  let port = 0;
  /** One connection: `continue` (admitted, kept open when `keep`), or how it was turned away. */
  const attempt = async (keep: boolean): Promise<string> => {
    let client: MilterClient | undefined;
    try {
      client = await MilterClient.connect(address, { replyTimeout: 30_000 });
      const { reply } = await client.connect({ ...REMOTE, port: 50000 + (port++ % 10000) }, {});
      if (reply.kind === 'continue' && keep) {
        held.push(client);
        client = undefined;
      }
      return reply.kind;
    } catch (error) {
      return `error: ${(error as Error).message}`;
    } finally {
      await client?.close().catch(() => undefined);
    }
  };
  const count = (label: string): void => {
    outcome.outcomes[label] = (outcome.outcomes[label] ?? 0) + 1;
  };
  try {
    for (;;) {
      const label = await attempt(true);
      if (label === 'continue') {
        outcome.admitted++;
        continue;
      }
      count(label);
      break;
    }
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        // Beyond the limit every one must be refused; one admitted here is counted as `continue`. An attempt that
        // ends after the ordinary load began closing its connections is not counted: it may have found room.
        while (!signal.aborted) {
          const label = await attempt(false);
          if (!signal.aborted) count(label);
        }
      }),
    );
  } finally {
    await Promise.all(held.map((client) => client.close().catch(() => undefined)));
  }
  return outcome;
}

/**
 * The bound the limits imply on the milter's resident memory during one run, MiB: what it held when the run
 * began, plus for every connection open at once its buffered body and one frame being read
 * (`milter.maxBufferedBody` + `milter.maxFrameSize`; the rest of a body goes to the spool directory), plus for
 * every decryption running at once (at most `limits.maxConcurrentDecryptions` per worker) three times the
 * plaintext the limits let it produce: the decrypted data, the plaintext it becomes and the delivered body built
 * from it. That plaintext is the message's own, or for compressed data `maxDecompressionRatio` times the
 * OpenPGP data, never more than `limits.maxMessageSize`.
 */
export function memoryBound(limits: HostileLimits, startMiB: number, openConnections: number, decryptionsAtOnce: number, decryptedBytes: number): number {
  const perConnection = (limits.maxBufferedBody + limits.maxFrameSize) / MiB;
  const slots = Math.min(decryptionsAtOnce, limits.maxConcurrentDecryptions * limits.workers);
  return round(startMiB + openConnections * perConnection + (slots * 3 * Math.min(decryptedBytes, limits.maxMessageSize)) / MiB, 0);
}

function figures(direction: OrdinaryFigures['direction'], result: LoadResult): OrdinaryFigures {
  return {
    direction,
    rate: ORDINARY_RATE,
    messages: result.messages,
    errors: result.errors,
    errorSamples: result.errorSamples,
    latencyP50Ms: result.latencyMs.p50,
    latencyP99Ms: result.latencyMs.p99,
  };
}

/** The hostile sender's thread (bench/hostile-sender.ts). */
const SENDER_MODULE = siblingModule(import.meta.url, 'hostile-sender');

/**
 * Sends `shape` from a thread of its own until `signal` aborts, and gives what it got: the attacker's sending
 * does not hold up the event loop that times the ordinary messages.
 */
async function hostileSender(address: string, shape: Shape, signal: AbortSignal): Promise<HostileSenderResult> {
  const workerData: HostileSenderData = { address, connections: shape.connections, expected: shape.expected, ...(shape.message === undefined ? {} : { message: shape.message }) };
  const worker = startWorker(SENDER_MODULE, { workerData });
  const stopped = (): void => worker.postMessage('stop');
  if (signal.aborted) stopped();
  else signal.addEventListener('abort', stopped, { once: true });
  try {
    const [result] = (await once(worker, 'message')) as [HostileSenderResult];
    return result;
  } finally {
    signal.removeEventListener('abort', stopped);
    await worker.terminate();
  }
}

/** Runs the phase: its own muse-milter, the unloaded run, then one run per hostile shape. */
export async function runHostileLoad(setup: HostileSetup): Promise<HostileLoadReport> {
  const startedAt = new Date().toISOString();
  const seconds = Math.max(2, Math.round(30 * setup.scale));
  const warmupMs = 2000;
  const ours = setup.siteKey.toPublic();
  const outbound = (index: number): BenchMessage => buildMessage(4 * KiB, recipientDomains(1, index, false, 'hostile'), index);
  const inboundOrdinary = await ordinaryInbound(setup.peer, ours);
  const instance = await startMuse({
    dir: setup.dir,
    listen: 'unix',
    // The shipped default (examples/muse.yaml): one worker.
    workers: 1,
    dns: setup.dns,
    metricsPort: setup.metricsPort,
    siteKey: setup.siteKey.armor(),
    defaultLimits: true,
  });
  const runs: HostileRun[] = [];
  try {
    const limits = limitsOf(await loadConfig(instance.configFile));
    // BENCH_HOSTILE_SHAPES (names' beginnings, comma-separated) runs only those, for work on one shape.
    const shapes = (await hostileShapes(ours, limits)).filter((s) => process.env.BENCH_HOSTILE_SHAPES === undefined || process.env.BENCH_HOSTILE_SHAPES.split(',').some((n) => s.name.startsWith(n)));
    // A few seconds of unrecorded ordinary load: JIT, DNS cache and key cache warm before anything is measured.
    await Promise.all([
      runLoad({ address: instance.address, connections: ORDINARY_CONNECTIONS, message: outbound, durationMs: 2000, rate: ORDINARY_RATE, check: outboundCheck }),
      runLoad({ address: instance.address, connections: ORDINARY_CONNECTIONS, message: inboundOrdinary, durationMs: 2000, rate: ORDINARY_RATE, check: inboundCheck }),
    ]);
    // And one large message (opened in the background lane): both opening threads have started before the idle
    // RSS and the first run's start are read, as in a milter that has been serving mail.
    await runLoad({ address: instance.address, connections: 1, message: await ordinaryInbound(setup.peer, ours, 2 * MiB), count: 1, check: inboundCheck });
    const idleMiB = round(treeRssMiB(instance.process.pid), 0);
    // Ordinary mail alone at the start, in the middle and at the end: the unloaded p99 is their median, so the
    // machine's drift over the phase and one disturbed window do not set every ratio (report.ts, unloadedP99).
    const middle = Math.ceil(shapes.length / 2);
    for (const shape of [undefined, ...shapes.slice(0, middle), undefined, ...shapes.slice(middle), undefined]) {
      const monitor = new ProcessMonitor(instance.process.pid);
      monitor.start();
      const stop = new AbortController();
      let connected = 0;
      let hostileStarted!: () => void;
      const bothConnected = new Promise<void>((resolve) => (hostileStarted = resolve));
      const onConnected = (): void => {
        if (++connected === 2) hostileStarted();
      };
      // The hostile stream ends when the first ordinary load has its last reply, before it closes a connection.
      const onFinished = (): void => stop.abort();
      // The ordinary connections are opened first and held for the whole run: a connection flood can then take
      // only what is left of maxConnections, and its refusals are exactly the connections beyond the limit.
      const ordinary = Promise.all([
        runLoad({ address: instance.address, connections: ORDINARY_CONNECTIONS, message: outbound, durationMs: seconds * 1000, warmupMs, rate: ORDINARY_RATE, check: outboundCheck, messagesPerConnection: Infinity, lateReplies: true, onConnected, onFinished }),
        runLoad({ address: instance.address, connections: ORDINARY_CONNECTIONS, message: inboundOrdinary, durationMs: seconds * 1000, warmupMs, rate: ORDINARY_RATE, check: inboundCheck, messagesPerConnection: Infinity, lateReplies: true, onConnected, onFinished }),
      ]);
      // An ordinary load that cannot connect rejects here rather than leaving the phase waiting.
      await Promise.race([bothConnected, ordinary]);
      const sent = shape === undefined ? undefined : hostileSender(instance.address, shape, stop.signal);
      const [out, inb] = await ordinary;
      const sender = await sent;
      const floodOutcome = sender?.kind === 'flood' ? sender.outcome : undefined;
      const hostileResult = sender?.kind === 'load' ? sender.result : undefined;
      const usage = monitor.stop();
      const hostileConnections = shape === undefined ? 0 : floodOutcome !== undefined ? floodOutcome.admitted + shape.connections : shape.connections;
      const run: HostileRun = {
        shape: shape?.name ?? 'none',
        description: shape?.description ?? 'ordinary mail alone',
        ordinary: [figures('outbound', out), figures('inbound', inb)],
        peakRssMiB: usage.peakRssMiB,
        startRssMiB: usage.startRssMiB,
        boundMiB: memoryBound(limits, usage.startRssMiB, 2 * ORDINARY_CONNECTIONS + hostileConnections, shape?.connections ?? 0, shape?.decryptedBytes ?? 0),
        cpuCores: usage.cpuCores,
        ...(shape === undefined
          ? {}
          : {
              hostile: {
                expected: shape.expected,
                ...(floodOutcome === undefined
                  ? { sent: Object.values(hostileResult?.verdicts ?? {}).reduce((a, b) => a + b, 0), outcomes: { ...(hostileResult?.verdicts ?? {}) }, errorSamples: hostileResult?.errorSamples ?? [] }
                  : {
                      sent: floodOutcome.admitted + Object.values(floodOutcome.outcomes).reduce((a, b) => a + b, 0),
                      outcomes: { ...floodOutcome.outcomes, [`admitted (held idle: ${limits.maxConnections} - ${2 * ORDINARY_CONNECTIONS} ordinary)`]: floodOutcome.admitted },
                      errorSamples: [],
                    }),
              },
            }),
      };
      runs.push(run);
      setup.log(
        `hostile ${run.shape}: ordinary p99 out ${out.latencyMs.p99} ms, in ${inb.latencyMs.p99} ms (errors ${out.errors}/${inb.errors}` +
          `${out.errors + inb.errors > 0 ? `: ${[...out.errorSamples, ...inb.errorSamples].join('; ')}` : ''}), rss ${usage.startRssMiB} → ${usage.peakRssMiB} MiB (bound ${run.boundMiB})` +
          (run.hostile === undefined ? '' : `, hostile ${JSON.stringify(run.hostile.outcomes)}${run.hostile.errorSamples.length > 0 ? ` ${run.hostile.errorSamples.join('; ')}` : ''}`),
      );
    }
    return {
      startedAt,
      workers: limits.workers,
      ordinaryRate: ORDINARY_RATE,
      ordinaryConnections: ORDINARY_CONNECTIONS,
      seconds,
      idleRssMiB: idleMiB,
      limits: { ...limits },
      runs,
    };
  } finally {
    await instance.process.stop();
  }
}
