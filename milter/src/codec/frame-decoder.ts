/**
 * Sans-IO frame decoder: feed it bytes as they arrive, split anywhere, and it returns whole frames.
 */
import { MilterProtocolError } from '../errors.ts';
import { LENGTH_BYTES } from './wire.ts';

/** One frame off the wire: its code (a single character) and its data. */
export interface Frame {
  readonly code: string;
  readonly data: Buffer;
}

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * Largest accepted frame length (command byte plus data). A peer announcing more is cut off before
   * anything is buffered, so a hostile length cannot make us allocate gigabytes.
   */
  maxFrameSize: number;
}

/**
 * Reassembles frames from a byte stream. Partial input is kept until the rest arrives; complete frames
 * are returned in order. Frame data is copied out of the input chunks only when a frame spans chunks.
 */
export class FrameDecoder {
  private readonly maxFrameSize: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(options: FrameDecoderOptions) {
    this.maxFrameSize = options.maxFrameSize;
  }

  /** Bytes received but not yet part of a returned frame. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Adds input; returns every frame now complete. Throws {@link MilterProtocolError} on a bad length. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (this.pendingBytes < LENGTH_BYTES) break;
      const length = this.peekLength();
      if (length === 0) throw new MilterProtocolError('frame-empty', 'frame of length 0 has no command byte');
      if (length > this.maxFrameSize) {
        throw new MilterProtocolError(
          'frame-too-large',
          `frame of ${length} bytes exceeds the limit of ${this.maxFrameSize} bytes`,
        );
      }
      if (this.pendingBytes < LENGTH_BYTES + length) break;
      const whole = this.take(LENGTH_BYTES + length);
      frames.push({ code: String.fromCharCode(whole[LENGTH_BYTES] as number), data: whole.subarray(LENGTH_BYTES + 1) });
    }
    return frames;
  }

  /**
   * Called when the peer closed the stream. Throws if a frame was left half-received, so the caller can
   * log a truncated frame rather than silently dropping it.
   */
  end(): void {
    if (this.pendingBytes > 0) {
      throw new MilterProtocolError('truncated-frame', `connection closed inside a frame (${this.pendingBytes} bytes pending)`);
    }
  }

  private peekLength(): number {
    const first = this.pending[0] as Buffer;
    if (first.length >= LENGTH_BYTES) return first.readUInt32BE(0);
    return this.copyPrefix(LENGTH_BYTES).readUInt32BE(0);
  }

  private copyPrefix(size: number): Buffer {
    const out = Buffer.allocUnsafe(size);
    let filled = 0;
    for (const part of this.pending) {
      const n = Math.min(part.length, size - filled);
      part.copy(out, filled, 0, n);
      filled += n;
      if (filled === size) break;
    }
    return out;
  }

  /** Removes and returns the first `size` pending bytes, copying only when they span chunks. */
  private take(size: number): Buffer {
    const first = this.pending[0] as Buffer;
    let out: Buffer;
    if (first.length >= size) {
      out = first.subarray(0, size);
      if (first.length === size) this.pending.shift();
      else this.pending[0] = first.subarray(size);
    } else {
      out = Buffer.allocUnsafe(size);
      let filled = 0;
      while (filled < size) {
        const part = this.pending[0] as Buffer;
        const n = Math.min(part.length, size - filled);
        part.copy(out, filled, 0, n);
        filled += n;
        if (n === part.length) this.pending.shift();
        else this.pending[0] = part.subarray(n);
      }
    }
    this.pendingBytes -= size;
    return out;
  }
}
