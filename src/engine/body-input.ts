/**
 * Reading the caller's body, given whole or as chunks, within a byte budget. A whole buffer is
 * handed on in slices (views, not copies) so the crypto layer sees bounded chunks either way.
 */

/** The raw body: the bytes as the MTA sent them, whole or as a chunk stream. */
export type BodyInput = Uint8Array | AsyncIterable<Uint8Array>;

/** Slice size for whole-buffer input; large enough to keep per-chunk overhead negligible. */
const SLICE_BYTES = 256 * 1024;

/**
 * What went wrong while reading, if anything. Errors travel through openpgp.js streams, which may
 * wrap them, so the caller classifies a failure by this state rather than by the error caught.
 */
export interface BodyState {
  /** The body exceeded its budget. */
  exceeded: boolean;
  /** The caller's chunk stream failed. */
  readFailed: boolean;
}

/** Thrown (and recorded in the state) when the body exceeds its budget. */
export class BodyBudgetExceeded extends Error {
  constructor() {
    super('body exceeds the size limit');
    this.name = 'BodyBudgetExceeded';
  }
}

/** Yields the body as Buffers, throwing {@link BodyBudgetExceeded} past `budget` bytes. */
export async function* readBody(input: BodyInput, budget: number, state: BodyState): AsyncGenerator<Buffer> {
  if (input instanceof Uint8Array) {
    const whole = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (whole.length > budget) throw exceeded(state);
    for (let at = 0; at < whole.length; at += SLICE_BYTES) yield whole.subarray(at, at + SLICE_BYTES);
    return;
  }
  let total = 0;
  for await (const chunk of flagReadErrors(input, state)) {
    total += chunk.byteLength;
    if (total > budget) throw exceeded(state);
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/** Passes the chunks through, recording in `state` when the source itself fails. */
async function* flagReadErrors(input: AsyncIterable<Uint8Array>, state: BodyState): AsyncGenerator<Uint8Array> {
  try {
    yield* input;
  } catch (error) {
    state.readFailed = true;
    throw error;
  }
}

function exceeded(state: BodyState): BodyBudgetExceeded {
  state.exceeded = true;
  return new BodyBudgetExceeded();
}

/** Concatenates a chunk stream into one Buffer (a single copy). */
export async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/** Yields the given buffers, then everything from `rest`. */
export async function* prepend(head: readonly Buffer[], rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  yield* rest;
}

/** The first chunks of a stream, and whether they are all of it. */
export interface ReadAhead {
  readonly head: Buffer[];
  readonly complete: boolean;
}

/** Reads from `chunks` until more than `bytes` bytes are buffered or the stream ends. */
export async function readAhead(chunks: AsyncIterator<Buffer>, bytes: number): Promise<ReadAhead> {
  const head: Buffer[] = [];
  let size = 0;
  while (size <= bytes) {
    const next = await chunks.next();
    if (next.done === true) return { head, complete: true };
    head.push(next.value);
    size += next.value.length;
  }
  return { head, complete: false };
}
