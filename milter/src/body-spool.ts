/**
 * Collects a message body in memory up to a limit, then spills it to a private temporary file, so a
 * 50 MiB message does not sit in the heap while a filter works on it.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Options of {@link BodySpool}. */
export interface BodySpoolOptions {
  /** Bytes kept in memory before spilling to disk. */
  maxMemory: number;
  /** Directory for spill files; the system temporary directory by default. */
  directory?: string;
}

/** An append-only body store that can be read back as a stream any number of times. */
export class BodySpool {
  private memory: Buffer[] = [];
  private bytes = 0;
  private file: { dir: string; path: string; handle: FileHandle } | undefined;
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
  async write(chunk: Buffer): Promise<void> {
    if (this.disposed) throw new Error('body spool already disposed');
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    if (this.file === undefined && this.bytes <= this.options.maxMemory) {
      // Frames from the decoder are views into socket buffers; keep our own copy.
      this.memory.push(Buffer.from(chunk));
      return;
    }
    if (this.file === undefined) await this.spill();
    await (this.file as { handle: FileHandle }).handle.write(chunk);
  }

  /** Reads the body back in order, in chunks of at most `chunkSize` bytes from disk. */
  async *chunks(chunkSize = 65536): AsyncGenerator<Buffer> {
    if (this.file === undefined) {
      yield* this.memory;
      return;
    }
    await this.file.handle.datasync().catch(() => undefined);
    for await (const chunk of createReadStream(this.file.path, { highWaterMark: chunkSize })) yield chunk as Buffer;
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
    const file = this.file;
    this.file = undefined;
    if (file !== undefined) {
      await file.handle.close().catch(() => undefined);
      await rm(file.dir, { recursive: true, force: true });
    }
  }

  private async spill(): Promise<void> {
    // A private directory (mode 0700) and file (0600): bodies are mail content and never world-readable.
    const dir = await mkdtemp(join(this.options.directory ?? tmpdir(), 'milter-body-'));
    const path = join(dir, 'body');
    const handle = await open(path, 'wx+', 0o600);
    this.file = { dir, path, handle };
    for (const part of this.memory) await handle.write(part);
    this.memory = [];
  }
}
