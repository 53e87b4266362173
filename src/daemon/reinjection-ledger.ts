/**
 * The re-injection ledger: which split-off copies the MTA has already queued, so that a message the MTA tries
 * again (the milter's end-of-message reply was lost, or came too late, and the client sends the message anew)
 * does not re-inject its copy a second time. An entry is keyed by what stays the same across such a retry: the
 * envelope sender, the copy's recipient set, the Message-ID field and the original body (queue ids change).
 *
 * One small file per entry in a private directory (mode 0700, files 0600), written atomically (temporary file,
 * fsync, rename, fsync of the directory) like the pin store. Files rather than one shared document because the
 * daemon may run as several worker processes: creating a file needs no read-modify-write, so no process can
 * lose another's entry. Entries expire with the marker's lifetime (each file's modification time is its expiry);
 * the number of files is bounded, the oldest going first.
 *
 * The ledger is a guard against duplicates, never a reason to lose mail: an entry that cannot be read counts
 * as absent (the copy is sent again), and one that cannot be written leaves a retry free to send it again.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFileAtomically } from '../fs/atomic-file.ts';
import { encodeParts, identityParts, type CopyIdentity } from './copy-identity.ts';
import { MARKER_LIFETIME_SECONDS } from './reinjection-marker.ts';

/** Most entries kept; beyond it the oldest are removed (a retry of one of those would send its copy again). */
export const LEDGER_MAX_ENTRIES = 10_000;

/** Entries written between two sweeps of the directory at most, and the longest time between them. */
const SWEEP_EVERY_ENTRIES = 500;
const SWEEP_EVERY_MS = 60_000;

const ENTRY_NAME = /^([0-9a-f]{64})\.json$/;
const TEMPORARY_NAME = /^[0-9a-f]{64}\.json\.\d+\.[0-9a-f]{12}\.tmp$/;

/** What the ledger remembers of a queued copy. */
export interface LedgerEntry {
  /** Queue id of the transaction that queued the copy. */
  readonly original: string;
  /** The MTA's reply that accepted the copy. */
  readonly reply: string;
  readonly recordedAt: string;
  readonly expiresAt: string;
}

/** The ledger key of a copy: SHA-256 (hex) over its {@link CopyIdentity}, with the original's body digest. */
export function ledgerKey(identity: CopyIdentity): string {
  return createHash('sha256').update(encodeParts(['muse-reinjection-ledger', '1', ...identityParts(identity)])).digest('hex');
}

function isEntry(value: unknown): value is LedgerEntry & { version: 1 } {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    entry.version === 1 &&
    typeof entry.original === 'string' &&
    typeof entry.reply === 'string' &&
    typeof entry.recordedAt === 'string' &&
    typeof entry.expiresAt === 'string' &&
    Number.isFinite(Date.parse(entry.expiresAt))
  );
}

/** Options of {@link ReinjectionLedger.open}. */
export interface LedgerOptions {
  /** Most entries kept. Default {@link LEDGER_MAX_ENTRIES}. */
  readonly maxEntries?: number;
  /** Seconds an entry lasts. Default the marker lifetime. */
  readonly lifetimeSeconds?: number;
}

/** The ledger of one data directory. */
export class ReinjectionLedger {
  readonly #dir: string;
  readonly #maxEntries: number;
  readonly #lifetimeMs: number;
  #writtenSinceSweep = 0;
  #lastSweep = 0;
  #sweeping: Promise<void> | undefined;

  private constructor(dir: string, options: LedgerOptions) {
    this.#dir = dir;
    this.#maxEntries = options.maxEntries ?? LEDGER_MAX_ENTRIES;
    this.#lifetimeMs = (options.lifetimeSeconds ?? MARKER_LIFETIME_SECONDS) * 1000;
  }

  /** Opens (creating, mode 0700) the ledger directory, so an unusable location stops the daemon at start-up. */
  static async open(dir: string, options: LedgerOptions = {}): Promise<ReinjectionLedger> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const ledger = new ReinjectionLedger(dir, options);
    await readdir(dir);
    return ledger;
  }

  /** The directory of the entries. */
  get directory(): string {
    return this.#dir;
  }

  /**
   * The live entry under `key`, or undefined. Throws when the entry exists but cannot be read (the caller decides
   * what that means: the filter sends the copy again).
   */
  async find(key: string, now: Date): Promise<LedgerEntry | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const value: unknown = JSON.parse(text);
    if (!isEntry(value)) throw new Error(`ledger entry ${key} is not an entry`);
    if (Date.parse(value.expiresAt) <= now.getTime()) return undefined;
    return { original: value.original, reply: value.reply, recordedAt: value.recordedAt, expiresAt: value.expiresAt };
  }

  /** Records that the copy under `key` was queued; durable once this resolves. Throws when it cannot be written. */
  async record(key: string, entry: Pick<LedgerEntry, 'original' | 'reply'>, now: Date): Promise<void> {
    const path = this.#path(key);
    const expiresAt = new Date(now.getTime() + this.#lifetimeMs);
    const text = `${JSON.stringify({ version: 1, original: entry.original, reply: entry.reply, recordedAt: now.toISOString(), expiresAt: expiresAt.toISOString() })}\n`;
    // The modification time is the expiry: a sweep learns it from the directory listing, without reading files.
    await replaceFileAtomically(path, text, expiresAt);
    this.#writtenSinceSweep++;
    if (this.#writtenSinceSweep >= SWEEP_EVERY_ENTRIES || now.getTime() - this.#lastSweep >= SWEEP_EVERY_MS) await this.sweep(now);
  }

  /**
   * Removes expired entries, then the oldest ones beyond the bound, and temporary files a crash left behind. Runs
   * after writes (at most every minute or every few hundred entries); errors only leave files for the next sweep.
   */
  async sweep(now: Date): Promise<void> {
    if (this.#sweeping !== undefined) return this.#sweeping;
    this.#writtenSinceSweep = 0;
    this.#lastSweep = now.getTime();
    this.#sweeping = this.#sweep(now).finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(now: Date): Promise<void> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    const live: Array<{ name: string; expires: number }> = [];
    for (const name of names) {
      const entry = ENTRY_NAME.test(name);
      if (!entry && !TEMPORARY_NAME.test(name)) continue;
      const path = join(this.#dir, name);
      const expires = await stat(path).then((s) => s.mtimeMs, () => undefined);
      if (expires === undefined) continue;
      // A temporary file carries its creation time or its entry's expiry: once either is a minute past, no write
      // will finish it (a write in progress has one or the other still ahead of that).
      const expired = entry ? expires <= now.getTime() : expires + 60_000 <= now.getTime();
      if (expired) await rm(path, { force: true }).catch(() => undefined);
      else if (entry) live.push({ name, expires });
    }
    if (live.length <= this.#maxEntries) return;
    live.sort((a, b) => a.expires - b.expires || a.name.localeCompare(b.name));
    for (const { name } of live.slice(0, live.length - this.#maxEntries)) await rm(join(this.#dir, name), { force: true }).catch(() => undefined);
  }

  #path(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error('a ledger key is 64 hex digits');
    return join(this.#dir, `${key}.json`);
  }
}
