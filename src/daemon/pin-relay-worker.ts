/**
 * A worker's side of the pin relay (`milter.workers` above 1): the worker keeps a copy of the primary's pins in
 * memory, which its key service reads. A pin the worker learns holds in its copy at once, so the worker enforces it
 * from that moment, and is reported to the primary, the only writer; the message that taught it waits until the
 * primary says the pin is on disk. Every change the primary makes, from whichever worker, replaces the copy's entry
 * for that domain as it arrives: the primary's word is final, including when it judged a report differently.
 */
import type { MilterLogger } from '../../milter/src/index.ts';
import type { Pin, PinInput, PinKeeper, PinUpdate } from '../pins/index.ts';
import {
  errorFromWire,
  lookupToWire,
  MALFORMED_PIN_MESSAGE_LOG,
  PIN_RELAY_TAG,
  PinRelayError,
  receiveFromPrimary,
  type WorkerPinMessage,
} from './pin-relay-messages.ts';

/** A worker's end of the channel to the primary. */
export interface PrimaryChannel {
  /** Sends a message; false when the channel is closed and nothing was sent. */
  send(message: WorkerPinMessage): boolean;
  /** Calls `listener` with every message that arrives, pin relay traffic or not. */
  onMessage(listener: (raw: unknown) => void): void;
  /** Calls `listener` once, when the channel closes. */
  onClose(listener: () => void): void;
}

/** A worker's copy of the primary's pins. */
class RelayedPins implements PinKeeper {
  readonly #pins = new Map<string, Pin>();

  /** @param report sends a lookup that changed a pin to the primary; settles when the primary answers */
  constructor(private readonly report: (lookup: PinInput, at: Date) => Promise<void>) {}

  get(domain: string): Pin | undefined {
    return this.#pins.get(domain);
  }

  learn(lookup: PinInput, update: PinUpdate, at: Date): Promise<void> {
    if (update.kind === 'keep') return Promise.resolve();
    this.accept(lookup.domain, update.kind === 'set' ? { ...update.pin, domain: lookup.domain } : null);
    return this.report(lookup, at);
  }

  /** Takes the primary's word for a domain's pin (null: none). */
  accept(domain: string, pin: Pin | null): void {
    if (pin === null) this.#pins.delete(domain);
    else this.#pins.set(domain, pin);
  }
}

/** The requests a worker has sent and not yet seen answered. */
interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

/** The worker's end of the pin relay: opens its copy of the pins and carries its reports. */
export class PinRelayWorker {
  readonly #channel: PrimaryChannel;
  readonly #log: MilterLogger;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  /** Copies waiting for the rest of their snapshot, by the number of their `open` request. */
  readonly #loading = new Map<number, { readonly directory: string; readonly pins: RelayedPins }>();
  /** The copy in force once opened; the primary keeps one directory, so a worker needs one copy. */
  #current: { readonly directory: string; readonly pins: RelayedPins } | undefined;
  #closed = false;

  /**
   * @param channel the IPC channel to the primary
   * @param log where malformed messages are reported
   */
  constructor(channel: PrimaryChannel, log: MilterLogger) {
    this.#channel = channel;
    this.#log = log;
    channel.onMessage((raw) => this.#receive(raw));
    channel.onClose(() => this.#close());
  }

  /**
   * The copy of the pins kept in `directory`, fetched from the primary the first time; later calls (a reload)
   * return the same copy, so a new key service starts from everything learnt so far.
   * @throws PinStoreError when the primary cannot open the store; PinRelayError `PIN_RELAY_DIRECTORY` when
   *   `directory` is not the primary's, `PIN_RELAY_CLOSED` when the primary is gone
   */
  async open(directory: string): Promise<PinKeeper> {
    if (this.#current?.directory === directory) return this.#current.pins;
    const id = this.#nextId++;
    const pins = new RelayedPins((lookup, at) => this.#request({ muse: PIN_RELAY_TAG, op: 'learn', id: this.#nextId++, at: at.toISOString(), lookup: lookupToWire(lookup) }));
    this.#loading.set(id, { directory, pins });
    try {
      await this.#request({ muse: PIN_RELAY_TAG, op: 'open', id, directory });
    } finally {
      this.#loading.delete(id);
    }
    return pins;
  }

  /** Sends a request; settles with the primary's `done`, or rejects at once when the channel is closed. */
  #request(message: WorkerPinMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(channelClosed());
      this.#pending.set(message.id, { resolve, reject });
      if (!this.#channel.send(message)) {
        this.#pending.delete(message.id);
        reject(channelClosed());
      }
    });
  }

  #receive(raw: unknown): void {
    const received = receiveFromPrimary(raw);
    if (received.kind === 'other') return;
    if (received.kind === 'malformed') {
      this.#log.warn(MALFORMED_PIN_MESSAGE_LOG, { problem: received.problem });
      // An answer that cannot be read still ends its request: the message waiting on it must not wait for ever.
      if (received.id !== undefined) this.#settle(received.id, new PinRelayError('PIN_RELAY_MALFORMED', `malformed answer: ${received.problem}`));
      return;
    }
    const message = received.message;
    switch (message.op) {
      case 'snapshot': {
        const loading = this.#loading.get(message.id);
        if (loading === undefined) return this.#log.warn(MALFORMED_PIN_MESSAGE_LOG, { problem: `snapshot for no open request (${message.id})` });
        for (const pin of message.pins) loading.pins.accept(pin.domain, pin);
        return;
      }
      case 'pin':
        // Before the first snapshot there is no copy yet, and the snapshot, sent later, holds this change.
        this.#current?.pins.accept(message.domain, message.pin === null ? null : { ...message.pin, domain: message.domain });
        return;
      case 'done': {
        const loading = this.#loading.get(message.id);
        // In force now, not after a promise turn: the next message may already be a change to apply.
        if (loading !== undefined && message.error === undefined) this.#current = loading;
        this.#settle(message.id, message.error === undefined ? undefined : errorFromWire(message.error));
        return;
      }
    }
  }

  /** Ends request `id`, failed when `error` is given. */
  #settle(id: number, error?: Error): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) {
      this.#log.warn(MALFORMED_PIN_MESSAGE_LOG, { problem: `answer to no request (${id})` });
      return;
    }
    this.#pending.delete(id);
    if (error === undefined) pending.resolve();
    else pending.reject(error);
  }

  /** The primary is gone: nothing more can be saved; every waiting request fails now. */
  #close(): void {
    this.#closed = true;
    for (const pending of this.#pending.values()) pending.reject(channelClosed());
    this.#pending.clear();
  }
}

/** The failure of every request once the primary is gone (pins learnt still hold in this process's copy). */
function channelClosed(): PinRelayError {
  return new PinRelayError('PIN_RELAY_CLOSED', 'the channel to the primary process is closed: pins cannot be fetched or saved');
}
