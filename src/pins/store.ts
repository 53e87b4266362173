/**
 * The pin store: one JSON file, `pins.json`, in the pin directory. Written atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory) with mode 0600, so a crash leaves either the old or the new
 * file, never a torn one. One process writes it: the daemon, or with several worker processes their primary
 * (src/daemon/pin-relay-primary.ts); operator tools only read it.
 *
 * Writes are coalesced: while one is under way, every further change waits for one following write that carries
 * them all, so a burst of new pins costs two rewrites and fsyncs, not one per pin.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFileAtomically } from '../fs/atomic-file.ts';
import { z } from 'zod';
import type { Pin, PinInput, PinUpdate } from './evaluate.ts';
import type { PinKeeper } from './keeper.ts';
import { claimPinDirectory } from './owner.ts';
import { pinFieldsSchema } from './pin-schema.ts';

/** Name of the store file inside the pin directory. */
export const PIN_FILE_NAME = 'pins.json';

/**
 * Most pins in force kept. Bounds the file and each rewrite. A pin in force is never evicted to make room: the
 * lookups that create pins are triggered by whoever sends mail (a local sender's recipients, a remote site's
 * domain), so eviction of any kind would let a sender push a site's pin out with a flood of pins for domains of
 * its own and then downgrade that site. A full store instead learns no pin for a domain it does not hold yet;
 * expired pins make room as they expire (docs/dns-records.md §7).
 */
export const MAX_PINS = 100_000;

/** Stable codes of {@link PinStoreError}. */
export type PinStoreErrorCode = 'PIN_STORE_CORRUPT' | 'PIN_STORE_IO';

/** A pin store failure. A corrupt store is an error, not an empty one: silently forgetting pins would undo them. */
export class PinStoreError extends Error {
  override readonly name = 'PinStoreError';

  /**
   * @param code stable failure code
   * @param message what went wrong, with the file name
   */
  constructor(
    readonly code: PinStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Replaces the store file at `path` with `text`; rejects with {@link PinStoreError} `PIN_STORE_IO`. */
export type PinFileWriter = (path: string, text: string) => Promise<void>;

/** How a store is opened. */
export interface PinStoreOptions {
  /** How the file is written; default {@link writePinFileAtomically}. Tests observe or fail writes with it. */
  readonly writer?: PinFileWriter;
  /** Most pins in force kept (default {@link MAX_PINS}). */
  readonly maxPins?: number;
  /**
   * Told of each new pin not kept because the store is full, with the count since the store was opened: a full
   * store is either a site that outgrew the limit or a flood of lookups for made-up domains, and an administrator
   * should hear of it either way.
   */
  readonly onFull?: (domain: string, refused: number) => void;
}

/** The version this store writes: 2 added the pinned keys' public key bytes (`publicKeys`). */
export const PIN_FILE_VERSION = 2;

/** Version 1 files (no key bytes) are read too; the next write makes them version 2. */
const fileSchema = z.object({ version: z.union([z.literal(1), z.literal(PIN_FILE_VERSION)]), pins: z.record(z.string(), pinFieldsSchema) });

/** Pins by domain, backed by a file. */
export class PinStore implements PinKeeper {
  readonly #path: string;
  readonly #pins: Map<string, Pin>;
  readonly #writer: PinFileWriter;
  readonly #maxPins: number;
  /** New pins not kept because the store was full, since it was opened. */
  #refused = 0;
  /** The write under way, if any. */
  #inFlight: Promise<void> | undefined;
  /** The one write that follows it: every change made while a write is under way waits for this one. */
  #queued: Promise<void> | undefined;
  /** A write failed and none has succeeded since: memory holds changes the file lacks. */
  #unsaved = false;

  readonly #onFull: ((domain: string, refused: number) => void) | undefined;

  private constructor(path: string, pins: Map<string, Pin>, writer: PinFileWriter, options: PinStoreOptions) {
    this.#path = path;
    this.#pins = pins;
    this.#writer = writer;
    this.#maxPins = options.maxPins ?? MAX_PINS;
    this.#onFull = options.onFull;
  }

  /**
   * Opens the store in `dir`; a missing file is an empty store (the directory is created on first write).
   * @throws PinStoreError `PIN_STORE_CORRUPT` for a file that is not a valid store, `PIN_STORE_IO` when unreadable
   */
  static async open(dir: string, options: PinStoreOptions = {}): Promise<PinStore> {
    const path = join(dir, PIN_FILE_NAME);
    const writer = options.writer ?? writePinFileAtomically;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new PinStore(path, new Map(), writer, options);
      throw new PinStoreError('PIN_STORE_IO', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
    let parsed: z.infer<typeof fileSchema>;
    try {
      parsed = fileSchema.parse(JSON.parse(text));
    } catch (error) {
      throw new PinStoreError('PIN_STORE_CORRUPT', `${path} is not a valid pin store`, { cause: error });
    }
    const pins = new Map<string, Pin>();
    for (const [domain, pin] of Object.entries(parsed.pins)) {
      pins.set(domain, { domain, ...pin });
    }
    return new PinStore(path, pins, writer, options);
  }

  /** New pins not kept because {@link MAX_PINS} pins were in force, since the store was opened. */
  get refused(): number {
    return this.#refused;
  }

  /** The file behind the store. */
  get path(): string {
    return this.#path;
  }

  /** The stored pin of a (normalised) domain, expired or not. */
  get(domain: string): Pin | undefined {
    return this.#pins.get(domain);
  }

  /** Every stored pin, by domain. */
  all(): readonly Pin[] {
    return [...this.#pins.values()].sort((a, b) => a.domain.localeCompare(b.domain));
  }

  /**
   * Applies an evaluation's update and, when it changed anything, persists the store. The change holds for
   * {@link get} as soon as this returns; the promise settles only once a write carrying the change has completed.
   *
   * A pin for a domain without a pin in force is not kept while the store holds its maximum of pins in force
   * ({@link MAX_PINS}): the domain stays unpinned, as on first contact, and no pin in force is ever dropped for it.
   * @param now the time that decides which pins are in force
   * @returns whether anything changed (and so was written)
   * @throws PinStoreError `PIN_STORE_IO`; the change stays in memory and goes with the next write
   */
  async apply(domain: string, update: PinUpdate, now: Date = new Date()): Promise<boolean> {
    if (update.kind === 'keep') return false;
    if (update.kind === 'delete') {
      if (!this.#pins.delete(domain)) return false;
    } else {
      if (!this.#hasRoomFor(domain, now)) {
        this.#refused++;
        this.#onFull?.(domain, this.#refused);
        return false;
      }
      this.#pins.set(domain, { ...update.pin, domain });
    }
    await this.save();
    return true;
  }

  /** {@link PinKeeper.learn} for a single process: the store applies the update itself. */
  async learn(lookup: PinInput, update: PinUpdate, at?: Date): Promise<void> {
    await this.apply(lookup.domain, update, at);
  }

  /**
   * Whether a pin for `domain` may be set: always when the domain has a pin in force (a renewal, a rotation), else
   * only below the maximum of pins in force. Expired pins are dropped first: they hold nothing any more.
   */
  #hasRoomFor(domain: string, now: Date): boolean {
    const inForce = (pin: Pin): boolean => Date.parse(pin.expiresAt) > now.getTime();
    const current = this.#pins.get(domain);
    if (current !== undefined && inForce(current)) return true;
    if (this.#pins.size < this.#maxPins) return true;
    for (const [name, pin] of this.#pins) if (!inForce(pin)) this.#pins.delete(name);
    return this.#pins.size < this.#maxPins;
  }

  /**
   * Writes the store: expired pins are dropped (the bound on pins in force is kept by {@link apply}). With a write under
   * way, this joins the one write queued behind it, so changes made meanwhile are saved together.
   * @throws PinStoreError `PIN_STORE_IO`
   */
  save(): Promise<void> {
    if (this.#queued !== undefined) return this.#queued;
    const inFlight = this.#inFlight;
    if (inFlight === undefined) return this.#begin();
    const queued = inFlight
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#begin();
      });
    this.#queued = queued;
    return queued;
  }

  /**
   * Resolves once every change made so far is on disk: at once when nothing is pending, after the pending writes
   * otherwise, and after a new write when an earlier one failed.
   * @throws PinStoreError `PIN_STORE_IO` when the write carrying the changes fails
   */
  flushed(): Promise<void> {
    if (this.#queued !== undefined) return this.#queued;
    if (this.#unsaved) return this.save();
    return this.#inFlight ?? Promise.resolve();
  }

  /** Starts a write of what memory holds now. */
  #begin(): Promise<void> {
    this.#unsaved = false;
    const write = this.#write(new Date());
    this.#inFlight = write;
    const done = (failed: boolean): void => {
      if (failed) this.#unsaved = true;
      if (this.#inFlight === write) this.#inFlight = undefined;
    };
    write.then(
      () => done(false),
      () => done(true),
    );
    return write;
  }

  /** Takes the file's content from memory before its first await (so later changes go to the next write), then writes it. */
  async #write(now: Date): Promise<void> {
    const live = [...this.#pins.values()].filter((pin) => Date.parse(pin.expiresAt) > now.getTime());
    this.#pins.clear();
    const pins: Record<string, Omit<Pin, 'domain'>> = {};
    for (const { domain, ...pin } of live.sort((a, b) => a.domain.localeCompare(b.domain))) {
      this.#pins.set(domain, { domain, ...pin });
      pins[domain] = pin;
    }
    await this.#writer(this.#path, `${JSON.stringify({ version: PIN_FILE_VERSION, pins }, null, 2)}\n`);
  }
}

/**
 * Opens the store in `dir` as its writer: creates the directory (mode 0700) first, so that a location the daemon
 * cannot use stops it at start-up instead of failing at the first pin, and records this process as the store's
 * writer (owner.ts), so operator tools do not change the file under it.
 * @throws PinStoreError as {@link PinStore.open}; the error of `mkdir` or of the owner file's write
 */
export async function openPinDirectory(dir: string, options: PinStoreOptions = {}): Promise<PinStore> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const store = await PinStore.open(dir, options);
  await claimPinDirectory(dir);
  return store;
}

/** The default {@link PinFileWriter}: replaces `path` with `text`, atomically and durably, mode 0600. */
export async function writePinFileAtomically(path: string, text: string): Promise<void> {
  const dir = join(path, '..');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await replaceFileAtomically(path, text);
  } catch (error) {
    throw new PinStoreError('PIN_STORE_IO', `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
}
