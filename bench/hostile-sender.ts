/**
 * The hostile sender of the hostile-load phase, on a thread of its own: its sending (a 52 MiB body in 64 KiB
 * chunks, thousands of connections) then never holds up the event loop that times the ordinary messages, as an
 * attacker on another machine would not. For the same reason it runs at the lowest CPU priority (nice 19): an
 * attacker's own CPU is not the site's, and on a benchmark machine of two cores, at normal priority, its sending
 * took CPU from the ordinary mail that no remote sender could take. It still gets every cycle the milter and the
 * ordinary mail leave, and the number of hostile messages it got through is reported. It sends until the phase
 * posts `stop`, then posts what it got.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { Transaction } from '../milter/src/index.ts';
import { connectionFlood, type FloodOutcome } from './hostile-load.ts';
import { runLoad, verdictLabel, type LoadResult } from './load-generator.ts';
import type { BenchMessage } from './messages.ts';

/** What the thread is started with. */
export interface HostileSenderData {
  readonly address: string;
  readonly connections: number;
  /** The final reply each message must get (a verdict label). */
  readonly expected: string;
  /** The message sent back to back; absent for the connection flood. */
  readonly message?: BenchMessage;
}

/** What it posts when stopped. */
export type HostileSenderResult = { readonly kind: 'load'; readonly result: LoadResult } | { readonly kind: 'flood'; readonly outcome: FloodOutcome };

/** A Buffer over the bytes a structured clone turned into a plain Uint8Array. */
function buffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('hostile-sender.ts runs as a worker thread');
  const data = workerData as HostileSenderData;
  setPriority(19);
  const stop = new AbortController();
  port.once('message', () => stop.abort());
  let result: HostileSenderResult;
  if (data.message === undefined) {
    result = { kind: 'flood', outcome: await connectionFlood(data.address, data.connections, stop.signal) };
  } else {
    const transaction: Transaction = { ...data.message.transaction, body: buffer(data.message.transaction.body) };
    const message: BenchMessage = { transaction, raw: buffer(data.message.raw) };
    const loaded = await runLoad({
      address: data.address,
      connections: data.connections,
      message: () => message,
      signal: stop.signal,
      check: (reply) => (verdictLabel(reply) === data.expected ? undefined : `got ${verdictLabel(reply)}`),
    });
    result = { kind: 'load', result: loaded };
  }
  port.postMessage(result);
  port.close();
}

void main();
