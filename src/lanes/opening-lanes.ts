/**
 * Inbound messages are opened (decrypted, verified, their header restored) on two worker threads, not on the
 * event loop that speaks the milter protocol: the foreground lane at the process's priority, the background lane
 * at the lowest (nice 19). A sender whose messages have cost more than their share, and any large message, go to
 * the background ({@link SenderCosts}), so a stream of costly messages gets the CPU after the foreground mail
 * (docs/security.md §7). Each lane has its own decryption queues (`limits.maxConcurrentDecryptions` each), so no
 * foreground message waits for a slot a background one holds.
 *
 * A thread is started when its lane first has a message and again after it stops (a crash fails the messages it
 * held, which the daemon tempfails; the MTA retries them).
 */
import type { Worker } from 'node:worker_threads';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SPOOL_NAME_PREFIX, type MilterLogger } from '../../milter/src/index.ts';
import { EngineError, type HeaderField, type InboundResult, type OutputBody } from '../engine/index.ts';
import type { Runtime } from '../daemon/runtime.ts';
import { engineLimits } from '../daemon/runtime.ts';
import { RPC, SLOT_COUNTS, STREAMS, type OpeningThreadData, type CrossingError, type CrossingResult, type OpenJob, type OpenReply, type RouteMessage, type SenderKeysReply, type SenderKeysRequest } from './opening-jobs.ts';
import { PortRpc } from './port-rpc.ts';
import { pullChunks, serveChunks } from './pulled-chunks.ts';
import { SenderCosts, type Lane } from './sender-costs.ts';
import { siblingModule, startWorker } from './thread-start.ts';

/** The nice value of each lane's thread. */
export const LANE_NICE: Readonly<Record<Lane, number>> = { foreground: 0, background: 19 };

/** One message to open. */
export interface OpeningRequest {
  readonly runtime: Runtime;
  readonly headers: readonly HeaderField[];
  /** Reads the received body from its start (it may be read more than once). */
  readonly body: () => AsyncIterable<Buffer>;
  /**
   * The received body's spill file, when it went to one: the thread then reads it there, and the bytes of a large
   * message do not pass through the event loop (nor add to its garbage) on their way in.
   */
  readonly bodyFile?: () => Promise<string | undefined>;
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
  /** The sender's share of a core when the lane was chosen (for the debug line). */
  readonly share: number;
}

/** The thread's module, next to this one. */
const THREAD_ENTRY = siblingModule(import.meta.url, 'opening-thread');

/** Thread starts so far in this process, to name each thread's spool directory. */
let threadStarts = 0;

/** One lane's thread, with the keysets it has been given and the spool directories it writes in. */
class LaneThread {
  readonly worker: Worker;
  readonly rpc: PortRpc;
  readonly keysets = new Set<string>();
  /** The spool directories the thread was given, to clear of its files if it stops. */
  readonly spoolDirectories = new Set<string>();
  readonly serial = ++threadStarts;
  /** Jobs sent and not answered: while there are any, the thread holds the process open (ref), else not. */
  #busy = 0;
  /** Decryptions running and waiting in the thread (see {@link SLOT_COUNTS}). */
  readonly slotCounts = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  stopped = false;

  constructor(
    readonly lane: Lane,
    jobs: Map<number, JobContext>,
    onStop: (thread: LaneThread) => void,
  ) {
    const workerData: OpeningThreadData = { nice: LANE_NICE[lane], slotCounts: this.slotCounts.buffer as SharedArrayBuffer };
    this.worker = startWorker(THREAD_ENTRY, { workerData, name: `muse-open-${lane}` });
    this.rpc = new PortRpc(this.worker);
    const stop = (reason: Error): void => {
      if (this.stopped) return;
      this.stopped = true;
      this.rpc.close(reason);
      onStop(this);
      void this.removeSpills();
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
      context?.request.log?.debug('inbound message read', { route, lane: context.lane, senderShare: Math.round(context.share * 1000) / 1000 });
      return { value: null };
    });
    // The daemon's shutdown waits for its connections, not for idle threads. Last: a listener added to the worker
    // after unref() would hold the process again.
    this.worker.unref();
  }

  /** Runs `job` with the thread holding the process open meanwhile. */
  async holding<T>(job: () => Promise<T>): Promise<T> {
    this.#hold();
    try {
      return await job();
    } finally {
      this.#release();
    }
  }

  /** Yields `chunks` (read from the thread) with the thread holding the process open meanwhile. */
  async *holdingWhile(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    this.#hold();
    try {
      yield* chunks;
    } finally {
      this.#release();
    }
  }

  #hold(): void {
    if (this.#busy++ === 0) this.worker.ref();
  }

  #release(): void {
    if (--this.#busy === 0) this.worker.unref();
  }

  /** Put in the names of the thread's spill directories (`milter-body-<pid>-<tag>-…`). */
  get spoolTag(): string {
    return `lane-${this.lane}-${this.serial}`;
  }

  /**
   * Removes what the thread spooled (decrypted content among it): bodies it held for the MTA die with it, and its
   * files must not outlive it in a process that goes on. A crash of the whole process leaves them to the start-up
   * sweep, as any spill directory of a process that is gone.
   */
  async removeSpills(): Promise<void> {
    const prefix = `${SPOOL_NAME_PREFIX}${process.pid}-${this.spoolTag}-`;
    for (const directory of this.spoolDirectories) {
      const names = await readdir(directory).catch(() => [] as string[]);
      for (const name of names) if (name.startsWith(prefix)) await rm(join(directory, name), { recursive: true, force: true });
    }
  }
}

/** The two lanes of a process; one instance for the process's life, kept across reloads. */
export class OpeningLanes {
  readonly costs: SenderCosts;
  readonly #threads: Partial<Record<Lane, LaneThread>> = {};
  readonly #jobs = new Map<number, JobContext>();
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
    const lane = this.costs.laneFor(request.sender, request.bodyBytes);
    const thread = this.#thread(lane);
    const job = this.#nextJob++;
    this.#jobs.set(job, { request, lane, share: this.costs.shareOf(request.sender) });
    this.costs.begin(request.sender);
    let reply: OpenReply;
    try {
      reply = await thread.holding(() => this.#run(thread, job, request));
    } catch (error) {
      // The thread stopped under this message (it had the message, so it may be why): its sender is charged.
      if (thread.stopped) this.costs.crashed(request.sender);
      else this.costs.end(request.sender, 0);
      throw error;
    } finally {
      this.#jobs.delete(job);
    }
    this.costs.end(request.sender, reply.costMs);
    if (reply.result === undefined) throw errorFrom(reply.error ?? { message: 'the opening thread gave no result' });
    return { result: this.#received(reply.result, thread, job), lane, costMs: reply.costMs };
  }

  /** Sends the job, and its keyset first when the thread does not hold it (any more). */
  async #run(thread: LaneThread, job: number, request: OpeningRequest): Promise<OpenReply> {
    const { runtime } = request;
    const config = runtime.config;
    const keys = runtime.decryptionKeys;
    const keyset = keys.map((key) => key.getFingerprint()).join(' ');
    thread.spoolDirectories.add(config.milter.spoolDirectory as string);
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
      spoolTag: thread.spoolTag,
      bodyFile: (await request.bodyFile?.()) ?? null,
      clockOffsetMs: runtime.now().getTime() - Date.now(),
      maxConcurrentDecryptions: config.limits.maxConcurrentDecryptions,
    };
    for (let attempt = 0; ; attempt++) {
      if (!thread.keysets.has(keyset)) {
        await thread.rpc.request(RPC.keyset, { id: keyset, keys: keys.map((key) => key.write()) });
        thread.keysets.add(keyset);
      }
      const reply = (await thread.rpc.request(RPC.open, payload)) as OpenReply;
      if (reply.unknownKeyset !== true || attempt > 0) return reply;
      thread.keysets.delete(keyset);
    }
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
    const thread = new LaneThread(lane, this.#jobs, (stopped) => {
      if (this.#threads[lane] === stopped) delete this.#threads[lane];
    });
    this.#threads[lane] = thread;
    return thread;
  }

  /** The result on this side: an opened body is read from the thread as the connection sends it. */
  #received(result: CrossingResult, thread: LaneThread, job: number): InboundResult {
    switch (result.kind) {
      case 'opened':
        return { ...result, body: remoteBody(thread, job, result.body) };
      case 'failed': {
        const error = errorFrom(result.error);
        return { kind: 'failed', error: error instanceof EngineError ? error : new EngineError('BODY_READ_FAILED', error.message, { cause: error }) };
      }
      default:
        return result;
    }
  }
}

/** The error a thread reported, rebuilt: an {@link EngineError} when it had a code, its cause kept as text. */
function errorFrom(crossing: CrossingError): Error {
  const options = crossing.cause === undefined ? undefined : { cause: new Error(crossing.cause) };
  return crossing.code === undefined ? new Error(crossing.message, options) : new EngineError(crossing.code, crossing.message, options);
}

/** A decrypted body held by the thread, read over the port. */
function remoteBody(thread: LaneThread, job: number, shape: { size: number; spooled: boolean }): OutputBody {
  let reads = 0;
  let disposed = false;
  // Not counted for the paced collections (collection-pacer.ts): the milter library copies each chunk into a
  // reusable frame at once, so the chunk is garbage while young, and a forced full collection of the event loop's
  // heap would pause every connection for tens of milliseconds.
  const chunks = (): AsyncIterable<Buffer> => {
    if (thread.stopped) throw new Error(`the ${thread.lane} opening thread stopped before the opened body was read`);
    return thread.holdingWhile(pullChunks(thread.rpc, STREAMS.opened, { job, stream: reads++ }));
  };
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
      if (!thread.stopped) await thread.holding(() => thread.rpc.request(RPC.disposeBody, job)).catch(() => undefined);
    },
  };
}
