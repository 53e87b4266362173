/**
 * Inbound messages are opened (decrypted, verified, their header restored) on two worker threads, not on the
 * event loop that speaks the milter protocol: the foreground lane at the process's priority, the background lane
 * at the lowest (nice 19). A sender whose messages have cost more than their share, and any large message, go to
 * the background ({@link SenderCosts}), so a stream of costly messages takes only the CPU that ordinary mail
 * leaves, and ordinary mail never waits behind it (docs/security.md §7). Each lane has its own decryption queues
 * (`limits.maxConcurrentDecryptions` each), so no foreground message waits for a slot a background one holds.
 *
 * A thread is started when its lane first has a message and again after it stops (a crash fails the messages it
 * held, which the daemon tempfails; the MTA retries them).
 */
import type { Worker } from 'node:worker_threads';
import type { PrivateKey } from 'openpgp';
import type { MilterLogger } from '../../milter/src/index.ts';
import { EngineError, type HeaderField, type InboundResult, type OutputBody } from '../engine/index.ts';
import type { Runtime } from '../daemon/runtime.ts';
import { engineLimits } from '../daemon/runtime.ts';
import { RPC, SLOT_COUNTS, STREAMS, type OpeningThreadData, type CrossingResult, type OpenJob, type OpenReply, type RouteMessage, type SenderKeysReply, type SenderKeysRequest } from './opening-jobs.ts';
import { PortRpc } from './port-rpc.ts';
import { pullChunks, serveChunks } from './pulled-chunks.ts';
import { SenderCosts, type Lane } from './sender-costs.ts';
import { siblingModule, startWorker } from './thread-start.ts';
import { pacedChunks } from '../stream/collection-pacer.ts';

/** The nice value of each lane's thread. */
export const LANE_NICE: Readonly<Record<Lane, number>> = { foreground: 0, background: 19 };

/** One message to open. */
export interface OpeningRequest {
  readonly runtime: Runtime;
  readonly headers: readonly HeaderField[];
  /** Reads the received body from its start (it may be read more than once). */
  readonly body: () => AsyncIterable<Buffer>;
  /** Whose account the cost goes to: the SMTP client's address, or the milter connection. */
  readonly sender: string;
  readonly bodyBytes: number;
  /** The connection's logger (a debug line names the reader and the lane). */
  readonly log?: MilterLogger;
}

/** What {@link OpeningLanes.open} gives back. */
export interface Opening {
  readonly result: InboundResult;
  readonly lane: Lane;
  /** CPU the opening cost (ms). */
  readonly costMs: number;
}

/** The event loop's side of one job while it runs. */
interface JobContext {
  readonly request: OpeningRequest;
  readonly lane: Lane;
}

/** The thread's module, next to this one. */
const THREAD_ENTRY = siblingModule(import.meta.url, 'opening-thread');

/** One lane's thread, with the keysets it has been given. */
class LaneThread {
  readonly worker: Worker;
  readonly rpc: PortRpc;
  readonly keysets = new Set<number>();
  /** Decryptions running and waiting in the thread (see {@link SLOT_COUNTS}). */
  readonly slotCounts = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  stopped = false;

  constructor(lane: Lane, jobs: Map<number, JobContext>, onStop: () => void) {
    const workerData: OpeningThreadData = { nice: LANE_NICE[lane], slotCounts: this.slotCounts.buffer as SharedArrayBuffer };
    this.worker = startWorker(THREAD_ENTRY, { workerData, name: `muse-open-${lane}` });
    this.rpc = new PortRpc(this.worker);
    const stop = (reason: Error): void => {
      if (this.stopped) return;
      this.stopped = true;
      this.rpc.close(reason);
      onStop();
    };
    this.worker.on('error', (error) => stop(new Error(`the ${lane} opening thread failed: ${error.message}`)));
    this.worker.on('exit', (code) => stop(new Error(`the ${lane} opening thread stopped (exit code ${code})`)));
    serveChunks(this.rpc, STREAMS.received, (ref) => {
      const job = jobs.get(ref.job);
      if (job === undefined) throw new Error(`no job ${ref.job}`);
      return job.request.body();
    });
    this.rpc.handle(RPC.senderKeys, async (payload) => {
      const { job, domain } = payload as SenderKeysRequest;
      const context = jobs.get(job);
      if (context === undefined) throw new Error(`no job ${job}`);
      const found = await context.request.runtime.keys.senderKeys(domain);
      const value: SenderKeysReply = found === null ? null : { keys: found.keys.map((k) => k.write()), unvouched: (found.unvouched ?? []).map((k) => k.write()), dnssec: found.dnssec };
      return { value };
    });
    this.rpc.handle(RPC.route, (payload) => {
      const { job, route } = payload as RouteMessage;
      const context = jobs.get(job);
      context?.request.log?.debug('inbound message read', { route, lane: context.lane });
      return { value: null };
    });
    // The daemon's shutdown waits for its connections, not for idle threads. Last: a listener added to the worker
    // after unref() would hold the process again.
    this.worker.unref();
  }
}

/** The two lanes of a process; one instance for the process's life, kept across reloads. */
export class OpeningLanes {
  readonly costs: SenderCosts;
  readonly #threads: Partial<Record<Lane, LaneThread>> = {};
  readonly #jobs = new Map<number, JobContext>();
  readonly #keysetIds = new WeakMap<readonly PrivateKey[], number>();
  #nextKeyset = 1;
  #nextJob = 1;

  /**
   * @param share `limits.backgroundAboveCpuShare`: see {@link SenderCosts}
   * @param largeAboveBytes bodies larger than this always open in the background
   */
  constructor(share: number, largeAboveBytes: number) {
    this.costs = new SenderCosts(share, largeAboveBytes);
  }

  /** Opens one inbound message in the lane its sender and size call for. */
  async open(request: OpeningRequest): Promise<Opening> {
    const { runtime } = request;
    const lane = this.costs.laneFor(request.sender, request.bodyBytes);
    const thread = this.#thread(lane);
    const keyset = await this.#keysetFor(thread, runtime.decryptionKeys);
    const job = this.#nextJob++;
    this.#jobs.set(job, { request, lane });
    const config = runtime.config;
    const payload: OpenJob = {
      job,
      keyset,
      headers: request.headers,
      authservId: config.inbound.authservId,
      localDomains: config.site.localDomains,
      alignment: config.inbound.alignment,
      unwrapSigned: config.policy.unwrapSigned,
      headerEncoding: 'latin1',
      limits: engineLimits(config),
      spoolDirectory: config.milter.spoolDirectory as string,
      clockOffsetMs: runtime.now().getTime() - Date.now(),
      maxConcurrentDecryptions: config.limits.maxConcurrentDecryptions,
    };
    let reply: OpenReply;
    try {
      reply = (await thread.rpc.request(RPC.open, payload)) as OpenReply;
    } finally {
      this.#jobs.delete(job);
    }
    this.costs.record(request.sender, reply.costMs);
    if (reply.result === undefined) throw new Error(reply.error ?? 'the opening thread gave no result');
    return { result: this.#received(reply.result, thread, job), lane, costMs: reply.costMs };
  }

  /** Decryptions running now, in both lanes (for the metrics). */
  get active(): number {
    return this.#count(SLOT_COUNTS.active);
  }

  /** Decryptions waiting for a slot, in both lanes. */
  get queued(): number {
    return this.#count(SLOT_COUNTS.queued);
  }

  #count(at: number): number {
    let sum = 0;
    for (const thread of Object.values(this.#threads)) if (!thread.stopped) sum += Atomics.load(thread.slotCounts, at);
    return sum;
  }

  /** Stops both threads (tests, and the end of a worker process). */
  async close(): Promise<void> {
    const threads = Object.values(this.#threads);
    for (const lane of Object.keys(this.#threads) as Lane[]) delete this.#threads[lane];
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  #thread(lane: Lane): LaneThread {
    const running = this.#threads[lane];
    if (running !== undefined && !running.stopped) return running;
    const thread = new LaneThread(lane, this.#jobs, () => {
      if (this.#threads[lane] === thread) delete this.#threads[lane];
    });
    this.#threads[lane] = thread;
    return thread;
  }

  /** The number under which `thread` knows `keys`, sending them first when it does not. */
  async #keysetFor(thread: LaneThread, keys: readonly PrivateKey[]): Promise<number> {
    let id = this.#keysetIds.get(keys);
    if (id === undefined) {
      id = this.#nextKeyset++;
      this.#keysetIds.set(keys, id);
    }
    if (!thread.keysets.has(id)) {
      await thread.rpc.request(RPC.keyset, { id, keys: keys.map((key) => key.write()) });
      thread.keysets.add(id);
    }
    return id;
  }

  /** The result on this side: an opened body is read from the thread as the connection sends it. */
  #received(result: CrossingResult, thread: LaneThread, job: number): InboundResult {
    switch (result.kind) {
      case 'opened':
        return { ...result, body: remoteBody(thread, job, result.body) };
      case 'failed':
        return { kind: 'failed', error: new EngineError(result.error.code, result.error.message) };
      default:
        return result;
    }
  }
}

/** A decrypted body held by the thread, read over the port. */
function remoteBody(thread: LaneThread, job: number, shape: { size: number; spooled: boolean }): OutputBody {
  let reads = 0;
  let disposed = false;
  // Each chunk arrives in a buffer of its own that is garbage once written to the MTA: counted for the paced
  // collections (collection-pacer.ts), as a chunk read back from a spool file is.
  const chunks = (): AsyncIterable<Buffer> => pacedChunks(pullChunks(thread.rpc, STREAMS.opened, { job, stream: reads++ }));
  return {
    size: shape.size,
    spooled: shape.spooled,
    chunks,
    async toBuffer() {
      const parts: Buffer[] = [];
      for await (const chunk of chunks()) parts.push(chunk);
      return Buffer.concat(parts, shape.size);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      if (!thread.stopped) await thread.rpc.request(RPC.disposeBody, job).catch(() => undefined);
    },
  };
}
