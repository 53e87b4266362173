/**
 * The replacement body handed back to the daemon. Small bodies stay in memory, never concatenated
 * unless asked; once a body grows past the spool threshold it is written to a private temporary file
 * instead, so a 50 MiB message never sits in the heap.
 */
import { tmpdir } from 'node:os';
import { BodySpool } from '../../milter/src/index.ts';
import { readBack } from '../stream/collection-pacer.ts';
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
  /** Put in the subdirectory's name (the milter library's `BodySpool` `tag`). */
  readonly tag?: string;
}

/** Default spool settings. */
export const DEFAULT_SPOOL: SpoolOptions = Object.freeze({ thresholdBytes: 4 * 1024 * 1024, dir: tmpdir() });

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

/**
 * The bytes of `body` from `offset` on (a decrypted entity's body after its header). Disposing of it disposes
 * of `body`.
 */
export function offsetBody(body: OutputBody, offset: number): OutputBody {
  const size = Math.max(0, body.size - offset);
  const chunks = async function* (): AsyncGenerator<Buffer> {
    let skip = offset;
    for await (const chunk of body.chunks()) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      yield skip === 0 ? chunk : chunk.subarray(skip);
      skip = 0;
    }
  };
  return {
    size,
    spooled: body.spooled,
    chunks,
    async toBuffer() {
      const parts: Buffer[] = [];
      for await (const chunk of chunks()) parts.push(chunk);
      return Buffer.concat(parts, size);
    },
    dispose: () => body.dispose(),
  };
}

/**
 * Accumulates a body, moving it to a spool file once it exceeds the threshold: the milter library's body
 * store (private 0600 file in a 0700 directory, writes and reads in 1 MiB), with its failures reported as
 * {@link EngineError} `SPOOL_FAILED`.
 */
export class BodySink {
  readonly #spool: BodySpool;

  constructor(options: SpoolOptions) {
    this.#spool = new BodySpool({ maxMemory: options.thresholdBytes, directory: options.dir, ...(options.tag === undefined ? {} : { tag: options.tag }) });
  }

  /** Appends a chunk (copied; the caller may reuse it). */
  async write(chunk: Buffer): Promise<void> {
    const wasSpilled = this.#spool.spilled;
    try {
      await this.#spool.write(chunk);
    } catch (error) {
      throw spoolFailed(wasSpilled, error);
    }
  }

  /** Completes the body: everything written is in memory or in the file. */
  async finish(): Promise<OutputBody> {
    const spool = this.#spool;
    try {
      await spool.flush();
    } catch (error) {
      throw spoolFailed(true, error);
    }
    return {
      size: spool.size,
      spooled: spool.spilled,
      // Read back in full for large messages, several times: paced, so what was read is collected (collection-pacer.ts).
      chunks: () => readBack(spool),
      toBuffer: () => spool.toBuffer(),
      dispose: () => spool.dispose(),
    };
  }

  /** Discards everything written, removing the spool file. */
  async abort(): Promise<void> {
    await this.#spool.dispose();
  }
}

function spoolFailed(hadFile: boolean, cause: unknown): EngineError {
  return new EngineError('SPOOL_FAILED', hadFile ? 'cannot write the spool file' : 'cannot create the spool file', { cause });
}
