/**
 * The replacement body handed back to the daemon. Small bodies stay in memory as the list of
 * chunks they were produced in (never concatenated unless asked); once a body grows past the spool
 * threshold it is written to a private temporary file instead, so a 50 MiB message costs one
 * pass through memory rather than several copies.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from './errors.ts';

/** A finished body; call {@link OutputBody.dispose} when done with it. */
export interface OutputBody {
  /** Total bytes. */
  readonly size: number;
  /** Whether the bytes live in a spool file rather than in memory. */
  readonly spooled: boolean;
  /** Streams the bytes (can be called repeatedly until disposed). */
  chunks(): AsyncIterable<Buffer>;
  /** The whole body in one Buffer (reads the file when spooled). */
  toBuffer(): Promise<Buffer>;
  /** Deletes the spool file, if any. Idempotent. */
  dispose(): Promise<void>;
}

/** Where and from what size bodies are spooled. */
export interface SpoolOptions {
  /** Bodies larger than this go to a file. Default 4 MiB. */
  readonly thresholdBytes: number;
  /** Directory for spool files (a private subdirectory is created per body). Default the OS temp dir. */
  readonly dir: string;
}

/** Default spool settings. */
export const DEFAULT_SPOOL: SpoolOptions = Object.freeze({ thresholdBytes: 4 * 1024 * 1024, dir: tmpdir() });

/** Read size for spooled bodies; matches the largest body chunk a milter reply carries (64 KiB). */
const READ_CHUNK = 64 * 1024;

/** An in-memory body made of `parts`, kept as they are. */
export function memoryBody(parts: readonly Buffer[]): OutputBody {
  const size = parts.reduce((sum, p) => sum + p.length, 0);
  return {
    size,
    spooled: false,
    async *chunks() {
      yield* parts;
    },
    async toBuffer() {
      return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
    },
    async dispose() {},
  };
}

/** Accumulates a body, moving it to a spool file once it exceeds the threshold. */
export class BodySink {
  readonly #options: SpoolOptions;
  #parts: Buffer[] = [];
  #size = 0;
  #file: { dir: string; path: string; handle: FileHandle } | null = null;

  constructor(options: SpoolOptions) {
    this.#options = options;
  }

  /** Appends a chunk (kept by reference while in memory). */
  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.#size += chunk.length;
    if (this.#file === null) {
      this.#parts.push(chunk);
      if (this.#size > this.#options.thresholdBytes) await this.#spool();
      return;
    }
    await this.#writeFile(chunk);
  }

  /** Completes the body. */
  async finish(): Promise<OutputBody> {
    if (this.#file === null) return memoryBody(this.#parts);
    const { dir, path, handle } = this.#file;
    await handle.close();
    return spooledBody(dir, path, this.#size);
  }

  /** Discards everything written, removing the spool file. */
  async abort(): Promise<void> {
    this.#parts = [];
    if (this.#file === null) return;
    const { dir, handle } = this.#file;
    this.#file = null;
    await handle.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }

  async #spool(): Promise<void> {
    try {
      const dir = await mkdtemp(join(this.#options.dir, 'muse-body-'));
      const path = join(dir, 'body');
      // 0600: the file holds message content.
      const handle = await open(path, 'wx', 0o600);
      this.#file = { dir, path, handle };
    } catch (error) {
      throw new EngineError('SPOOL_FAILED', 'cannot create the spool file', { cause: error });
    }
    const parts = this.#parts;
    this.#parts = [];
    for (const part of parts) await this.#writeFile(part);
  }

  async #writeFile(chunk: Buffer): Promise<void> {
    try {
      const { handle } = this.#file as { handle: FileHandle };
      // A write may be short; loop until the whole chunk is on disk.
      for (let done = 0; done < chunk.length; ) done += (await handle.write(chunk, done)).bytesWritten;
    } catch (error) {
      throw new EngineError('SPOOL_FAILED', 'cannot write the spool file', { cause: error });
    }
  }
}

function spooledBody(dir: string, path: string, size: number): OutputBody {
  return {
    size,
    spooled: true,
    async *chunks() {
      for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) yield chunk as Buffer;
    },
    toBuffer: () => readFile(path),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
