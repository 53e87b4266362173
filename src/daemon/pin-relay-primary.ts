/**
 * The primary's side of the pin relay (`milter.workers` above 1): the primary holds the one pin store and is the
 * only process that writes `pins.json`, so two workers can no longer overwrite each other's pins, and a pin one
 * worker learns reaches every other worker at once instead of at their next start.
 *
 * Reports are handled one at a time in the order they arrive, each through the same evaluation a single process
 * makes (`evaluatePin` against the stored pin, then the store's update): when two workers report different things
 * about one domain, the first to arrive sets the pin and the second is judged against it, exactly as a second
 * message would be in a single process. The outcome is sent to every worker when the pin changed, and to the
 * reporting worker alone when it did not (its own copy may have run ahead of the store); the report is answered
 * `done` only once the change is on disk.
 */
import { resolve } from 'node:path';
import type { MilterLogger } from '../../milter/src/index.ts';
import { evaluatePin, type PinStore } from '../pins/index.ts';
import {
  errorToWire,
  lookupFromWire,
  MALFORMED_PIN_MESSAGE_LOG,
  PIN_RELAY_TAG,
  pinToWire,
  receiveFromWorker,
  SNAPSHOT_CHUNK,
  type PrimaryPinMessage,
  type WireError,
  type WorkerPinMessage,
} from './pin-relay-messages.ts';

/** A worker, as the relay sees it. */
export interface PinRelayPeer {
  /** The worker's number (1…N), for log lines. */
  readonly worker: number;
  /** Sends a message to the worker; nothing happens once its channel has closed. */
  send(message: PrimaryPinMessage): void;
}

/** What the primary's relay needs. */
export interface PinRelayPrimaryOptions {
  /** `pins.directory` of the configuration the primary started with: the only store it keeps. */
  readonly directory: string;
  /** Opens the store in a directory (creating it); opened on the first request, so `pins.enabled: false` costs nothing. */
  readonly open: (directory: string) => Promise<PinStore>;
  /** Every worker, to tell them of a changed pin. */
  readonly peers: () => Iterable<PinRelayPeer>;
  readonly log: MilterLogger;
}

type OpenRequest = Extract<WorkerPinMessage, { op: 'open' }>;
type LearnRequest = Extract<WorkerPinMessage, { op: 'learn' }>;

/** The single writer of the pin store, serving the workers over the cluster IPC channel. */
export class PinRelayPrimary {
  readonly #options: PinRelayPrimaryOptions;
  /** The store, once asked for; forgotten when opening failed, so a later request tries again. */
  #store: Promise<PinStore> | undefined;

  /** @param options where the store is, how to open it, who the workers are, where to log */
  constructor(options: PinRelayPrimaryOptions) {
    this.#options = options;
  }

  /**
   * Handles one message from a worker. Other traffic is ignored; a malformed pin relay message is logged and, when
   * its request number can be read, refused, so the worker does not wait for an answer that never comes.
   */
  receive(from: PinRelayPeer, raw: unknown): void {
    const received = receiveFromWorker(raw);
    if (received.kind === 'other') return;
    if (received.kind === 'malformed') {
      this.#options.log.warn(MALFORMED_PIN_MESSAGE_LOG, { worker: from.worker, problem: received.problem });
      if (received.id !== undefined) done(from, received.id, { code: 'PIN_RELAY_MALFORMED', message: `malformed request: ${received.problem}` });
      return;
    }
    const message = received.message;
    const handled = message.op === 'open' ? this.#open(from, message) : this.#learn(from, message);
    // Whatever fails (the store cannot be read or written) ends the request with the error, for the worker to report.
    handled.catch((error: unknown) => done(from, message.id, errorToWire(error)));
  }

  /** Resolves once no write of the store is under way or queued, whatever its outcome (the workers were told). */
  async settled(): Promise<void> {
    const store = await this.#store?.catch(() => undefined);
    await store?.flushed().catch(() => undefined);
  }

  /**
   * The store, opened once. Every request awaits this same promise as its first step, so requests continue in the
   * order they arrived even while the file is being read.
   */
  #ready(): Promise<PinStore> {
    if (this.#store !== undefined) return this.#store;
    const opening = this.#options.open(this.#options.directory);
    this.#store = opening;
    opening.catch(() => {
      if (this.#store === opening) this.#store = undefined;
    });
    return opening;
  }

  /** Answers `open` with every pin held now (in memory, saved or not: what the other workers enforce). */
  async #open(from: PinRelayPeer, request: OpenRequest): Promise<void> {
    if (resolve(request.directory) !== resolve(this.#options.directory)) {
      // A reload cannot move the store: the primary would go on writing the old file while workers read another.
      done(from, request.id, {
        code: 'PIN_RELAY_DIRECTORY',
        message: `pins.directory ${request.directory} is not ${this.#options.directory}, the one muse-milter started with: restart it to change pins.directory`,
      });
      return;
    }
    const store = await this.#ready();
    // Sent without a pause, so no other message can come between the parts of the snapshot.
    const pins = store.all();
    for (let start = 0; start < pins.length; start += SNAPSHOT_CHUNK) {
      from.send({ muse: PIN_RELAY_TAG, op: 'snapshot', id: request.id, pins: pins.slice(start, start + SNAPSHOT_CHUNK).map(pinToWire) });
    }
    done(from, request.id);
  }

  /** Evaluates a worker's lookup against the store, applies the update, tells the workers, answers once durable. */
  async #learn(from: PinRelayPeer, request: LearnRequest): Promise<void> {
    const store = await this.#ready();
    const lookup = lookupFromWire(request.lookup);
    const domain = lookup.domain;
    const before = store.get(domain);
    const { update } = evaluatePin(before, lookup, new Date(request.at));
    const changed = update.kind === 'set' || (update.kind === 'delete' && before !== undefined);
    // The store changes memory at once and returns the promise of the write that carries the change.
    const written = store.apply(domain, update, new Date(request.at));
    const now = store.get(domain);
    const news: PrimaryPinMessage = { muse: PIN_RELAY_TAG, op: 'pin', domain, pin: now === undefined ? null : pinToWire(now) };
    if (changed) for (const peer of this.#options.peers()) peer.send(news);
    else from.send(news);
    // Nothing changed here, yet the pin the worker relies on may still be on its way to disk.
    if (!(await written)) await store.flushed();
    done(from, request.id);
  }
}

/** Ends request `id`, with `error` when it failed. */
function done(to: PinRelayPeer, id: number, error?: WireError): void {
  to.send(error === undefined ? { muse: PIN_RELAY_TAG, op: 'done', id } : { muse: PIN_RELAY_TAG, op: 'done', id, error });
}
