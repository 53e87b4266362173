/**
 * What the daemon's event loop and an opening thread say to each other: a job is one inbound message to open
 * (the {@link openInbound} options that can cross a thread, the rest being asked for as the job runs), and its
 * reply is the result with the decrypted body left in the thread until the connection has read it.
 */
import type { HeaderEncoding, HeaderField, HeaderEdit, InboundLayer, LimitExceeded, Limits, UnchangedReason, Verdict, Alignment } from '../engine/index.ts';
import type { EngineErrorCode } from '../engine/index.ts';
import type { HeaderProtectionMode } from '../mime/inner-entity.ts';
import type { InboundRoute } from '../engine/inbound.ts';

/** What the thread is started with. */
export interface OpeningThreadData {
  /** The nice value the thread sets for itself (0: left as it is). */
  readonly nice: number;
  /** Two counters the thread keeps for the metrics: decryptions running ({@link SLOT_COUNTS}) and waiting. */
  readonly slotCounts: SharedArrayBuffer;
}

/** Where each count is in {@link OpeningThreadData.slotCounts}. */
export const SLOT_COUNTS = { active: 0, queued: 1 } as const;

/** Request types (thread → event loop and back). */
export const RPC = {
  /** Event loop → thread: open a message ({@link OpenJob} → {@link OpenReply}). */
  open: 'open',
  /** Event loop → thread: the site's decryption keys under a number ({@link KeysetMessage}). */
  keyset: 'keyset',
  /** Event loop → thread: the decrypted body of a job is no longer needed. */
  disposeBody: 'dispose-body',
  /** Thread → event loop: a sending domain's keys ({@link SenderKeysRequest} → {@link SenderKeysReply}). */
  senderKeys: 'sender-keys',
  /** Thread → event loop: which reader opened the message (for the connection's log). */
  route: 'route',
} as const;

/** Stream names for {@link serveChunks}: the received body (thread pulls), the decrypted body (event loop pulls). */
export const STREAMS = { received: 'received', opened: 'opened' } as const;

/** The site's decryption keys, as OpenPGP binary (unlocked), under their fingerprints joined. */
export interface KeysetMessage {
  readonly id: string;
  readonly keys: readonly Uint8Array[];
}

/** One message to open. */
export interface OpenJob {
  readonly job: number;
  readonly keyset: string;
  readonly headers: readonly HeaderField[];
  readonly authservId: string;
  readonly localDomains: readonly string[];
  readonly alignment: Alignment;
  readonly unwrapSigned: boolean;
  readonly headerEncoding: HeaderEncoding;
  readonly limits: Partial<Limits>;
  readonly spoolDirectory: string;
  /** Named in the thread's spool directories, so they can be removed if it stops. */
  readonly spoolTag: string;
  /** The received body's spill file, read by the thread itself; null: pulled from the event loop. */
  readonly bodyFile: string | null;
  /** The daemon's clock minus the wall clock (ms): a testing clock set to another date holds in the thread too. */
  readonly clockOffsetMs: number;
  /** `limits.maxConcurrentDecryptions` in force. */
  readonly maxConcurrentDecryptions: number;
}

/** The result, as it crosses: an opened body stays behind ({@link STREAMS.opened}), a failure is its code and text. */
export type CrossingResult =
  | {
      readonly kind: 'opened';
      readonly layer: InboundLayer;
      readonly verdict: Verdict;
      readonly headerProtection: HeaderProtectionMode | null;
      readonly headerEdits: HeaderEdit[];
      readonly body: { readonly size: number; readonly spooled: boolean };
    }
  | { readonly kind: 'annotated'; readonly layer: InboundLayer; readonly verdict: Verdict; readonly headerEdits: HeaderEdit[] }
  | { readonly kind: 'unchanged'; readonly reason: UnchangedReason; readonly headerEdits: HeaderEdit[] }
  | LimitExceeded
  | { readonly kind: 'failed'; readonly error: CrossingError };

/** An error as it crosses: its engine code when it has one, its message and its cause's (ENOSPC and the like). */
export interface CrossingError {
  readonly code?: EngineErrorCode;
  readonly message: string;
  readonly cause?: string;
}

/** The reply to {@link OpenJob}. */
export interface OpenReply {
  /** The result, or {@link error} when the opening threw. */
  readonly result?: CrossingResult;
  readonly error?: CrossingError;
  /** The thread no longer holds the job's keyset (it keeps the last few): send it again and retry. */
  readonly unknownKeyset?: true;
  /** CPU the opening cost in the thread (ms), waits for DNS answers excluded. */
  readonly costMs: number;
}

/** A sending domain's keys asked for by a job. */
export interface SenderKeysRequest {
  readonly job: number;
  readonly domain: string;
}

/** Its answer: `null` when the domain publishes none. */
export type SenderKeysReply = { readonly keys: readonly Uint8Array[]; readonly unvouched: readonly Uint8Array[]; readonly dnssec: boolean } | null;

/** Which reader opened a job's message. */
export interface RouteMessage {
  readonly job: number;
  readonly route: InboundRoute;
}
