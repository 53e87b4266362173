/**
 * The pin store: one JSON file, `pins.json`, in the pin directory. Written atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory) with mode 0600, so a crash leaves either the old or the new
 * file, never a torn one. One process (the daemon) writes it; operator tools only read it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { SITE_POLICIES } from '../keys/index.ts';
import type { Pin, PinUpdate } from './evaluate.ts';

/** Name of the store file inside the pin directory. */
export const PIN_FILE_NAME = 'pins.json';

/** Most pins kept; past it, those expiring soonest are dropped first. Bounds the file and each rewrite. */
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

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date');
const pinSchema = z.object({
  fingerprints: z.array(z.string().regex(/^[0-9A-F]{40}$/)).min(1),
  policy: z.enum(SITE_POLICIES),
  maxAge: z.number().int().min(0),
  firstSeen: isoDate,
  lastSeen: isoDate,
  expiresAt: isoDate,
  dnssec: z.boolean(),
});
const fileSchema = z.object({ version: z.literal(1), pins: z.record(z.string(), pinSchema) });

/** Pins by domain, backed by a file. */
export class PinStore {
  readonly #path: string;
  readonly #pins: Map<string, Pin>;
  /** Writes run one after another; a write started after a change always sees it. */
  #writing: Promise<void> = Promise.resolve();

  private constructor(path: string, pins: Map<string, Pin>) {
    this.#path = path;
    this.#pins = pins;
  }

  /**
   * Opens the store in `dir`; a missing file is an empty store (the directory is created on first write).
   * @throws PinStoreError `PIN_STORE_CORRUPT` for a file that is not a valid store, `PIN_STORE_IO` when unreadable
   */
  static async open(dir: string): Promise<PinStore> {
    const path = join(dir, PIN_FILE_NAME);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new PinStore(path, new Map());
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
    return new PinStore(path, pins);
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
   * Applies an evaluation's update and, when it changed anything, persists the store.
   * @returns whether the file was rewritten
   * @throws PinStoreError `PIN_STORE_IO`
   */
  async apply(domain: string, update: PinUpdate): Promise<boolean> {
    if (update.kind === 'keep') return false;
    if (update.kind === 'delete') {
      if (!this.#pins.delete(domain)) return false;
    } else {
      this.#pins.set(domain, { ...update.pin, domain });
    }
    await this.save();
    return true;
  }

  /**
   * Writes the store: expired pins are dropped, and past {@link MAX_PINS} those expiring soonest.
   * @throws PinStoreError `PIN_STORE_IO`
   */
  save(now: Date = new Date()): Promise<void> {
    const write = this.#writing.catch(() => undefined).then(() => this.#write(now));
    this.#writing = write;
    return write;
  }

  async #write(now: Date): Promise<void> {
    const live = [...this.#pins.values()]
      .filter((pin) => Date.parse(pin.expiresAt) > now.getTime())
      .sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt))
      .slice(0, MAX_PINS);
    this.#pins.clear();
    const pins: Record<string, Omit<Pin, 'domain'>> = {};
    for (const { domain, ...pin } of live.sort((a, b) => a.domain.localeCompare(b.domain))) {
      this.#pins.set(domain, { domain, ...pin });
      pins[domain] = pin;
    }
    await writeAtomically(this.#path, `${JSON.stringify({ version: 1, pins }, null, 2)}\n`);
  }
}

/** Replaces `path` with `text`, atomically and durably, mode 0600. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const dir = join(path, '..');
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    // The rename is durable only once the directory entry is on disk too.
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new PinStoreError('PIN_STORE_IO', `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
}
