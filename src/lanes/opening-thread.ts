/**
 * An opening thread: opens inbound messages ({@link openInbound}) for the daemon's event loop, which keeps the
 * milter protocol. The background lane's thread lowers its own CPU priority to the lowest (nice 19) when it
 * starts, so what it runs takes only the CPU that nothing else wants. Linux gives each thread its own nice value.
 */
import { createHash } from 'node:crypto';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { readKey, readPrivateKey, type PrivateKey, type PublicKey } from 'openpgp';
import { LRUCache } from 'lru-cache';
import { DecryptionQueues, DEFAULT_STREAM_ABOVE_BYTES, EngineError, openInbound, Slots, type InboundResult, type OutputBody, type SenderKeys } from '../engine/index.ts';
import { CpuLedger } from './thread-cpu.ts';
import { pacedChunks } from '../stream/collection-pacer.ts';
import { PortRpc } from './port-rpc.ts';
import { pullChunks, serveChunks } from './pulled-chunks.ts';
import { RPC, SLOT_COUNTS, STREAMS, type OpeningThreadData, type CrossingResult, type KeysetMessage, type OpenJob, type OpenReply, type SenderKeysReply } from './opening-jobs.ts';

/** A {@link Slots} queue that also keeps the shared counters, so the event loop reads them when scraped. */
class CountingSlots extends Slots {
  constructor(
    size: number,
    readonly counts: Int32Array,
  ) {
    super(size);
  }

  override run<T>(task: () => Promise<T>): Promise<T> {
    Atomics.add(this.counts, SLOT_COUNTS.queued, 1);
    return super.run(async () => {
      Atomics.sub(this.counts, SLOT_COUNTS.queued, 1);
      Atomics.add(this.counts, SLOT_COUNTS.active, 1);
      try {
        return await task();
      } finally {
        Atomics.sub(this.counts, SLOT_COUNTS.active, 1);
      }
    });
  }
}

/** Parsed sender keys, by the digest of their bytes: the ordinary senders' keys are parsed once, not per message. */
const PARSED_KEYS = 1024;

function main(): void {
  const port = parentPort;
  if (port === null) throw new Error('opening-thread.ts runs as a worker thread');
  const data = workerData as OpeningThreadData;
  if (data.nice !== 0) {
    try {
      setPriority(data.nice);
    } catch {
      // Left at the process's priority; the lane still keeps its work off the event loop.
    }
  }
  const counts = new Int32Array(data.slotCounts);
  const rpc = new PortRpc(port);
  const ledger = new CpuLedger();
  const keysets = new Map<number, PrivateKey[]>();
  const parsed = new LRUCache<string, PublicKey>({ max: PARSED_KEYS });
  const opened = new Map<number, OutputBody>();
  let queues: DecryptionQueues | undefined;
  let streams = 0;

  const parse = async (bytes: Uint8Array): Promise<PublicKey> => {
    const digest = createHash('sha256').update(bytes).digest('base64');
    const known = parsed.get(digest);
    if (known !== undefined) return known;
    const key = await readKey({ binaryKey: bytes });
    parsed.set(digest, key);
    return key;
  };

  rpc.handle(RPC.keyset, async (payload) => {
    const message = payload as KeysetMessage;
    keysets.set(message.id, await Promise.all(message.keys.map((binaryKey) => readPrivateKey({ binaryKey }))));
    // A reload brings a new set; the ones before it are kept only while jobs may still name them.
    for (const id of keysets.keys()) if (id < message.id - 4) keysets.delete(id);
    return { value: null };
  });

  rpc.handle(RPC.open, async (payload) => {
    const job = payload as OpenJob;
    const siteKeys = keysets.get(job.keyset);
    if (siteKeys === undefined) throw new Error(`unknown keyset ${job.keyset}`);
    if (queues === undefined) queues = new DecryptionQueues(job.maxConcurrentDecryptions, DEFAULT_STREAM_ABOVE_BYTES, (size) => new CountingSlots(size, counts));
    else queues.resize(job.maxConcurrentDecryptions);
    ledger.start(job.job);
    let result: InboundResult;
    try {
      result = await openInbound({
        headers: job.headers,
        // Counted for the paced collections: each chunk is a buffer of its own, garbage once read.
        body: () => pacedChunks(pullChunks(rpc, STREAMS.received, { job: job.job, stream: streams++ })),
        siteKeys,
        senderKeys: async (domain): Promise<SenderKeys | null> => {
          ledger.pause(job.job);
          let reply: SenderKeysReply;
          try {
            reply = (await rpc.request(RPC.senderKeys, { job: job.job, domain })) as SenderKeysReply;
          } finally {
            ledger.resume(job.job);
          }
          if (reply === null) return null;
          return { keys: await Promise.all(reply.keys.map(parse)), unvouched: await Promise.all(reply.unvouched.map(parse)), dnssec: reply.dnssec };
        },
        authservId: job.authservId,
        localDomains: job.localDomains,
        alignment: job.alignment,
        unwrapSigned: job.unwrapSigned,
        headerEncoding: job.headerEncoding,
        limits: job.limits,
        decryptionSlots: queues,
        now: () => new Date(Date.now() + job.clockOffsetMs),
        spool: { dir: job.spoolDirectory },
        onRoute: (route) => void rpc.request(RPC.route, { job: job.job, route }).catch(() => undefined),
      });
    } catch (error) {
      // An exception is still charged to its sender: it can be the costly part.
      const reply: OpenReply = { error: error instanceof Error ? error.message : String(error), costMs: ledger.end(job.job) };
      return { value: reply };
    }
    if (result.kind === 'opened') opened.set(job.job, result.body);
    const reply: OpenReply = { result: crossing(result), costMs: ledger.end(job.job) };
    return { value: reply };
  });

  serveChunks(rpc, STREAMS.opened, (ref) => {
    const body = opened.get(ref.job);
    if (body === undefined) throw new Error(`no opened body for job ${ref.job}`);
    return body.chunks();
  });
  rpc.handle(RPC.disposeBody, async (payload) => {
    const job = payload as number;
    const body = opened.get(job);
    opened.delete(job);
    await body?.dispose();
    return { value: null };
  });
}

/** The result as it can cross to the event loop. */
function crossing(result: InboundResult): CrossingResult {
  switch (result.kind) {
    case 'opened':
      return { ...result, body: { size: result.body.size, spooled: result.body.spooled } };
    case 'failed': {
      const error = result.error;
      return { kind: 'failed', error: { code: error instanceof EngineError ? error.code : 'BODY_READ_FAILED', message: error.message } };
    }
    default:
      return result;
  }
}

main();
