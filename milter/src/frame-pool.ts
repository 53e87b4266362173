/**
 * Reusable buffers for the body frames a filter writes back (`SMFIR_REPLBODY`). A body chunk handed to the socket
 * lives until the MTA has read it, which under load takes long enough for the chunk to outlive the young
 * collections; the old generation then grows with every large body sent, and its collections pause the event loop
 * for every connection. Copying each chunk into a frame from this pool instead lets the chunk die young, and the
 * frames, returned once the socket is done with them, are never garbage.
 */
import { encodeFrame, FRAME_HEADER_BYTES, writeFrame } from './codec/wire.ts';
import { MAX_BODY_CHUNK } from './constants.ts';

/** Bytes of one pooled buffer: the largest body frame. */
export const POOLED_FRAME_BYTES = FRAME_HEADER_BYTES + MAX_BODY_CHUNK;

/** Buffers kept for reuse by default: 4 MiB, the frames of 16 connections' write batches at once. */
export const DEFAULT_POOLED_FRAMES = 64;

/** A frame taken from the pool: `frame` is what goes to the socket, `release` returns its buffer once written. */
export interface PooledFrame {
  readonly frame: Buffer;
  readonly release: () => void;
}

/** A free list of frame buffers, at most `keep` of them kept; beyond it frames are allocated and left to the collector. */
export class FramePool {
  readonly #free: Buffer[] = [];
  /** Buffers the pool has made: free, or in flight until released. */
  #made = 0;

  constructor(readonly keep: number = DEFAULT_POOLED_FRAMES) {}

  /** Buffers waiting for reuse. */
  get idle(): number {
    return this.#free.length;
  }

  /** A body frame (`code`, then `chunk` copied), in a pooled buffer while the pool has or may make one. */
  frame(code: string, chunk: Uint8Array): PooledFrame {
    let buffer = this.#free.pop();
    if (buffer === undefined && this.#made < this.keep) {
      buffer = Buffer.allocUnsafeSlow(POOLED_FRAME_BYTES);
      this.#made++;
    }
    if (buffer === undefined || chunk.length > MAX_BODY_CHUNK) {
      // The pool is all in flight: a frame of its own, as without a pool.
      if (buffer !== undefined) this.#free.push(buffer);
      return { frame: encodeFrame(code, chunk), release: () => undefined };
    }
    const pooled = buffer;
    let released = false;
    return {
      frame: writeFrame(pooled, code, chunk),
      release: () => {
        if (released) return;
        released = true;
        this.#free.push(pooled);
      },
    };
  }
}

