/**
 * An opening thread: opens inbound messages ({@link openInbound}) for the daemon's event loop, which keeps the
 * milter protocol. The background lane's thread lowers its own CPU priority to the lowest (nice 19) when it
 * starts, so what it runs gets the CPU only after threads at normal priority. Linux gives each thread its own nice
 * value; the work V8's collector helpers and libuv's pool do for it still runs at the process's priority.
 *
 * What each job cost is measured on this thread's CPU clock ({@link CpuLedger}), with the job paused while it
 * waits for a DNS answer, a body chunk or a decryption slot, so that a job is not charged for the CPU others
 * used while it waited.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createReadStream } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { readPrivateKey, type PrivateKey } from 'openpgp';
import { LRUCache } from 'lru-cache';
import { DecryptionQueues, DEFAULT_STREAM_ABOVE_BYTES, EngineError, openInbound, Slots, type InboundResult, type OutputBody, type SenderKeys } from '../engine/index.ts';
import { ParsedKeyCache } from '../keys/parsed-key-cache.ts';
import { CpuLedger } from './thread-cpu.ts';
import { pacedChunks } from '../stream/collection-pacer.ts';
import { PortRpc } from './port-rpc.ts';
import { pullChunks, serveChunks } from './pulled-chunks.ts';
import { RPC, SLOT_COUNTS, STREAMS, type OpeningThreadData, type CrossingError, type CrossingResult, type KeysetMessage, type OpenJob, type OpenReply, type SenderKeysReply } from './opening-jobs.ts';

/** The job whose code is running (each opening runs inside it). */
const currentJob = new AsyncLocalStorage<number>();

/**
 * A {@link Slots} queue that also keeps the shared counters, so the event loop reads them when scraped, and pauses
 * the waiting job's CPU account until its turn comes.
 */
class CountingSlots extends Slots {
  constructor(
    size: number,
    readonly counts: Int32Array,
    readonly ledger: CpuLedger,
  ) {
    super(size);
  }

  override run<T>(task: () => Promise<T>): Promise<T> {
    Atomics.add(this.counts, SLOT_COUNTS.queued, 1);
    const job = currentJob.getStore();
    if (job !== undefined) this.ledger.pause(job);
    return super.run(async () => {
      if (job !== undefined) this.ledger.resume(job);
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

/** Reads of a received body's spill file: as the milter library reads it back (short-lived, collected young). */
const FILE_READ_BYTES = 256 * 1024;

/** Keysets kept (the current one and those of the last reloads). */
const KEYSETS = 4;

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
  // The last few keysets: a reload that changed the keys leaves messages in flight with the ones before.
  const keysets = new LRUCache<string, PrivateKey[]>({ max: KEYSETS });
  const parsed = new ParsedKeyCache(PARSED_KEYS);
  const opened = new Map<number, OutputBody>();
  let queues: DecryptionQueues | undefined;
  let streams = 0;

  rpc.handle(RPC.keyset, async (payload) => {
    const message = payload as KeysetMessage;
    keysets.set(message.id, await Promise.all(message.keys.map((binaryKey) => readPrivateKey({ binaryKey }))));
    return { value: null };
  });

  rpc.handle(RPC.open, async (payload) => {
    const job = payload as OpenJob;
    const siteKeys = keysets.get(job.keyset);
    if (siteKeys === undefined) {
      const reply: OpenReply = { unknownKeyset: true, costMs: 0 };
      return { value: reply };
    }
    if (queues === undefined) queues = new DecryptionQueues(job.maxConcurrentDecryptions, DEFAULT_STREAM_ABOVE_BYTES, (size) => new CountingSlots(size, counts, ledger));
    else queues.resize(job.maxConcurrentDecryptions);
    ledger.start(job.job);
    let result: InboundResult;
    try {
      result = await currentJob.run(job.job, () => openInbound({
        headers: job.headers,
        // Counted for the paced collections: each chunk is a buffer of its own, garbage once read.
        body: () =>
          pacedChunks(
            job.bodyFile === null
              ? waitedFor(ledger, job.job, pullChunks(rpc, STREAMS.received, { job: job.job, stream: streams++ }))
              : waitedFor(ledger, job.job, createReadStream(job.bodyFile, { highWaterMark: FILE_READ_BYTES }) as AsyncIterable<Buffer>),
          ),
        siteKeys,
        senderKeys: async (domain): Promise<SenderKeys | null> => {
          const reply = (await ledger.waiting(job.job, () => rpc.request(RPC.senderKeys, { job: job.job, domain }))) as SenderKeysReply;
          if (reply === null) return null;
          return { keys: await Promise.all(reply.keys.map((bytes) => parsed.read(bytes))), unvouched: await Promise.all(reply.unvouched.map((bytes) => parsed.read(bytes))), dnssec: reply.dnssec };
        },
        authservId: job.authservId,
        localDomains: job.localDomains,
        alignment: job.alignment,
        unwrapSigned: job.unwrapSigned,
        headerEncoding: job.headerEncoding,
        limits: job.limits,
        decryptionSlots: queues,
        now: () => new Date(Date.now() + job.clockOffsetMs),
        spool: { dir: job.spoolDirectory, tag: job.spoolTag },
        onRoute: (route) => void rpc.request(RPC.route, { job: job.job, route }).catch(() => undefined),
      }));
    } catch (error) {
      // An exception is still charged to its sender: it can be the costly part.
      const reply: OpenReply = { error: crossingError(error), costMs: ledger.end(job.job) };
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

/** `chunks`, with `job` paused while each is being fetched from the event loop. */
async function* waitedFor(ledger: CpuLedger, job: number, chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const iterator = chunks[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await ledger.waiting(job, () => iterator.next());
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    await iterator.return?.();
  }
}

/** An error as it can cross: code, message, and the cause's message. */
function crossingError(error: unknown): CrossingError {
  if (!(error instanceof Error)) return { message: String(error) };
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  return { ...(error instanceof EngineError ? { code: error.code } : {}), message: error.message, ...(cause === undefined ? {} : { cause }) };
}

/** The result as it can cross to the event loop. */
function crossing(result: InboundResult): CrossingResult {
  switch (result.kind) {
    case 'opened':
      return { ...result, body: { size: result.body.size, spooled: result.body.spooled } };
    case 'failed':
      return { kind: 'failed', error: { ...crossingError(result.error), code: result.error.code } };
    default:
      return result;
  }
}

main();
