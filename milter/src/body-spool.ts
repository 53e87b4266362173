/**
 * Collects a message body in memory up to a limit, then spills it to a private temporary file, so a
 * 50 MiB message does not sit in the heap while a filter works on it.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Start of the name of every spill directory: `milter-body-<pid>-<random>`. The pid names the process that owns
 * it, so that files left by a process that died (a crash, SIGKILL) can be told apart from those of a live one
 * sharing the directory, and removed: see {@link sweepSpoolDirectory}.
 */
export const SPOOL_NAME_PREFIX = 'milter-body-';

/** Options of {@link BodySpool}. */
export interface BodySpoolOptions {
  /** Bytes kept in memory before spilling to disk. */
  maxMemory: number;
  /** Directory for spill files; the system temporary directory by default. */
  directory?: string;
  /**
   * Put in the spill directory's name after the pid (`milter-body-<pid>-<tag>-…`), so that the spills of one
   * part of a process (a thread) can be found and removed together when it stops. Letters, digits and dashes.
   */
  tag?: string;
}

/**
 * Bytes gathered before one write to the spill file (into buffers used again and again): an awaited file
 * operation per 64 KiB body chunk would cost a thread-pool round trip each, about 800 of them for a 50 MiB
 * message.
 */
const SPOOL_IO_BYTES = 1024 * 1024;

/**
 * The size of each read when the body is read back. Read buffers are fresh (their reader may keep them), so they
 * are garbage once used: at 256 KiB one is used up within a few milliseconds of its read, at 1 MiB it stayed long
 * enough to reach the collector's old generation, where spent buffers wait far longer to be freed. 200 reads for
 * a 50 MiB body.
 */
const SPOOL_READ_BYTES = 256 * 1024;

/** An append-only body store that can be read back as a stream any number of times. */
export class BodySpool {
  private memory: Buffer[] = [];
  private bytes = 0;
  private file: { dir: string; path: string; handle: FileHandle } | undefined;
  /** Bytes for the spill file not yet written: a copy, so the caller may reuse its buffer at once. */
  private pending: Buffer = Buffer.allocUnsafe(0);
  private pendingBytes = 0;
  /**
   * The one write under way, if any, and its buffer, filled again once it is done: the next megabyte is
   * gathered while the last one goes to the file, so the writer never waits for the disk at every step.
   */
  private inFlight: Promise<void> | undefined;
  private spare: Buffer | undefined;
  /** The first write to the file that failed: every later write, flush and read fails with it. */
  private failure: Error | undefined;
  /** Writes and flushes run one after another, whoever calls them and however they overlap. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly options: BodySpoolOptions) {}

  /** Total bytes written. */
  get size(): number {
    return this.bytes;
  }

  /** Whether the body went to disk. */
  get spilled(): boolean {
    return this.file !== undefined;
  }

  /** Appends bytes. The chunk is copied: the caller's buffer may be reused after this resolves. */
  write(chunk: Buffer): Promise<void> {
    return this.serially(() => this.append(chunk));
  }

  private async append(chunk: Buffer): Promise<void> {
    if (this.disposed) throw new Error('body spool already disposed');
    if (this.failure !== undefined) throw this.failure;
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    if (this.file === undefined && this.bytes <= this.options.maxMemory) {
      // Frames from the decoder are views into socket buffers; keep our own copy.
      this.memory.push(Buffer.from(chunk));
      return;
    }
    if (this.file === undefined) await this.spill();
    for (let offset = 0; offset < chunk.length; ) {
      if (this.pending.length === 0) this.pending = Buffer.allocUnsafe(SPOOL_IO_BYTES);
      const copied = chunk.copy(this.pending, this.pendingBytes, offset);
      this.pendingBytes += copied;
      offset += copied;
      if (this.pendingBytes === this.pending.length) await this.startWrite();
    }
  }

  /**
   * Reads the body back in order, in chunks of at most `chunkSize` bytes (256 KiB by default). The chunks
   * of a spilled body are fresh buffers; those of a body in memory are the spool's own copies.
   */
  async *chunks(chunkSize = SPOOL_READ_BYTES): AsyncGenerator<Buffer> {
    if (this.file === undefined) {
      yield* this.memory;
      return;
    }
    // Written data is visible to readers of the file at once; nothing needs to reach the disk itself.
    await this.flush();
    for await (const chunk of createReadStream(this.file.path, { highWaterMark: chunkSize })) yield chunk as Buffer;
  }

  /**
   * The spill file's path, once everything written is in it; undefined while the body is in memory. Another thread
   * of the process may then read the body from the file itself (it exists until {@link dispose}).
   */
  async filePath(): Promise<string | undefined> {
    if (this.file === undefined) return undefined;
    await this.flush();
    return this.file?.path;
  }

  /** The whole body as one buffer; meant for small bodies and tests. */
  async toBuffer(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.chunks()) parts.push(chunk);
    return Buffer.concat(parts);
  }

  /** Frees memory and removes the spill file. Safe to call more than once. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.memory = [];
    this.pending = Buffer.allocUnsafe(0);
    this.pendingBytes = 0;
    this.spare = undefined;
    const file = this.file;
    this.file = undefined;
    await this.inFlight;
    this.inFlight = undefined;
    if (file !== undefined) {
      await file.handle.close().catch(() => undefined);
      await rm(file.dir, { recursive: true, force: true });
    }
  }

  private async spill(): Promise<void> {
    // A private directory (mode 0700) and file (0600): bodies are mail content and never world-readable.
    const tag = this.options.tag === undefined ? '' : `${this.options.tag}-`;
    const dir = await mkdtemp(join(this.options.directory ?? tmpdir(), `${SPOOL_NAME_PREFIX}${process.pid}-${tag}`));
    const path = join(dir, 'body');
    const handle = await open(path, 'wx+', 0o600);
    this.file = { dir, path, handle };
    for (const part of this.memory) await writeAll(handle, part);
    this.memory = [];
  }

  /** Writes the bytes still buffered to the spill file, so a failure to write shows now; {@link chunks} does it too. */
  flush(): Promise<void> {
    return this.serially(async () => {
      await this.startWrite();
      await this.inFlight;
      if (this.failure !== undefined) throw this.failure;
    });
  }

  /** Runs `step` after every write and flush asked for before it. */
  private serially(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Starts writing the buffered bytes once the previous write is done (a failure of that one is thrown here). */
  private async startWrite(): Promise<void> {
    await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
    if (this.pendingBytes === 0 || this.file === undefined || this.disposed) return;
    const full = this.pending;
    const data = full.subarray(0, this.pendingBytes);
    // The buffer of the write just finished is free again: the next bytes go there.
    this.pending = this.spare ?? Buffer.allocUnsafe(SPOOL_IO_BYTES);
    this.spare = full;
    this.pendingBytes = 0;
    this.inFlight = writeAll(this.file.handle, data).catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
    });
  }
}

/**
 * Removes the spill directories in `directory` that no live process owns: those whose owner's pid is gone, and
 * those whose name carries no pid. Anything not named like a spill directory is left alone, so a spool directory
 * shared with other files loses nothing else. Call it at start, before serving; spill directories of live
 * processes (other workers of a daemon sharing the directory) are kept.
 * @returns the names removed
 */
export async function sweepSpoolDirectory(directory: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const removed: string[] = [];
  for (const name of names.sort()) {
    if (!name.startsWith(SPOOL_NAME_PREFIX)) continue;
    const owner = ownerPid(name.slice(SPOOL_NAME_PREFIX.length));
    if (owner !== undefined && (owner === process.pid || processAlive(owner))) continue;
    await rm(join(directory, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** The pid in `<pid>-<random>`, or undefined for any other shape (names written before the pid was added). */
function ownerPid(rest: string): number | undefined {
  const dash = rest.indexOf('-');
  if (dash <= 0) return undefined;
  const digits = rest.slice(0, dash);
  for (const c of digits) if (c < '0' || c > '9') return undefined;
  const pid = Number(digits);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether a process with this pid exists (one of another user counts: signalling it is refused, not unknown). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes all of `data`, continuing after a short write. */
async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length; ) done += (await handle.write(data, done)).bytesWritten;
}
