/**
 * Modifications a filter returns at end of message, and their translation into replies after checking
 * each against the actions the MTA granted.
 */
import { Readable } from 'node:stream';
import { Action, MAX_BODY_CHUNK } from './constants.ts';
import type { Response } from './codec/responses.ts';
import { MilterUsageError } from './errors.ts';

/** Something that yields the bytes of a replacement body in order. */
export type BodySource = Buffer | Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** A change to the message, applied by the MTA at end of message. */
export type Modification =
  | { kind: 'addHeader'; name: string; value: string }
  | { kind: 'insertHeader'; index: number; name: string; value: string }
  | { kind: 'changeHeader'; name: string; index: number; value: string }
  | { kind: 'deleteHeader'; name: string; index: number }
  | { kind: 'replaceBody'; body: BodySource }
  | { kind: 'addRecipient'; recipient: string; args?: string }
  | { kind: 'deleteRecipient'; recipient: string }
  | { kind: 'changeFrom'; sender: string; args?: string }
  | { kind: 'quarantine'; reason: string };

/** Appends a header after the existing ones. */
export const addHeader = (name: string, value: string): Modification => ({ kind: 'addHeader', name, value });
/** Inserts a header at a 0-based position (0 = before the first header). */
export const insertHeader = (index: number, name: string, value: string): Modification => ({ kind: 'insertHeader', index, name, value });
/** Replaces the value of the index-th (1-based) header called `name`. */
export const changeHeader = (name: string, index: number, value: string): Modification => ({ kind: 'changeHeader', name, index, value });
/** Deletes the index-th (1-based) header called `name`. */
export const deleteHeader = (name: string, index: number): Modification => ({ kind: 'deleteHeader', name, index });
/**
 * Replaces the whole body; large sources are streamed in chunks of at most 65,535 bytes. The source's buffers
 * are sent as they are, not copied: a source must not change a buffer after yielding it.
 */
export const replaceBody = (body: BodySource): Modification => ({ kind: 'replaceBody', body });
/** Adds an envelope recipient, optionally with ESMTP arguments. */
export const addRecipient = (recipient: string, args?: string): Modification =>
  args === undefined ? { kind: 'addRecipient', recipient } : { kind: 'addRecipient', recipient, args };
/** Removes an envelope recipient (as the MTA spelled it at RCPT, angle brackets included). */
export const deleteRecipient = (recipient: string): Modification => ({ kind: 'deleteRecipient', recipient });
/** Changes the envelope sender, optionally with ESMTP arguments. */
export const changeFrom = (sender: string, args?: string): Modification =>
  args === undefined ? { kind: 'changeFrom', sender } : { kind: 'changeFrom', sender, args };
/** Puts the message on hold with a reason. */
export const quarantine = (reason: string): Modification => ({ kind: 'quarantine', reason });

const HEADER_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function requireAction(granted: number, flag: number, what: string, actionName: string): void {
  if ((granted & flag) === 0) {
    throw new MilterUsageError('action-not-negotiated', `${what} needs the ${actionName} action, which was not negotiated`);
  }
}

function checkHeaderName(name: string): void {
  if (!HEADER_NAME.test(name)) throw new MilterUsageError('invalid-modification', `invalid header name ${JSON.stringify(name)}`);
}

function checkNoNul(value: string, what: string): void {
  // NUL ends a string on the wire: anything after it would silently vanish.
  if (value.includes('\0')) throw new MilterUsageError('invalid-modification', `${what} must not contain NUL`);
}

/**
 * Checks every modification against the granted actions and their own rules, before anything is sent,
 * so a filter error never leaves a half-applied set of changes at the MTA.
 */
export function checkModifications(modifications: readonly Modification[], granted: number): void {
  let bodies = 0;
  for (const m of modifications) {
    switch (m.kind) {
      case 'addHeader':
        requireAction(granted, Action.AddHeaders, 'addHeader', 'addHeaders');
        checkHeaderName(m.name);
        checkNoNul(m.value, 'header value');
        break;
      case 'insertHeader':
        requireAction(granted, Action.AddHeaders, 'insertHeader', 'addHeaders');
        checkHeaderName(m.name);
        checkNoNul(m.value, 'header value');
        if (!Number.isInteger(m.index) || m.index < 0) throw new MilterUsageError('invalid-modification', `insertHeader index ${m.index} is not >= 0`);
        break;
      case 'changeHeader':
      case 'deleteHeader':
        requireAction(granted, Action.ChangeHeaders, m.kind, 'changeHeaders');
        checkHeaderName(m.name);
        if (m.kind === 'changeHeader') checkNoNul(m.value, 'header value');
        if (!Number.isInteger(m.index) || m.index < 1) throw new MilterUsageError('invalid-modification', `${m.kind} index ${m.index} is not >= 1`);
        break;
      case 'replaceBody':
        requireAction(granted, Action.ChangeBody, 'replaceBody', 'changeBody');
        if (++bodies > 1) throw new MilterUsageError('invalid-modification', 'the body can be replaced only once per message');
        break;
      case 'addRecipient':
        if (m.args === undefined) requireAction(granted, Action.AddRecipient, 'addRecipient', 'addRecipients');
        else {
          requireAction(granted, Action.AddRecipientWithArgs, 'addRecipient with ESMTP arguments', 'addRecipientsWithArgs');
          checkNoNul(m.args, 'ESMTP arguments');
        }
        checkNoNul(m.recipient, 'recipient');
        break;
      case 'deleteRecipient':
        requireAction(granted, Action.DeleteRecipient, 'deleteRecipient', 'deleteRecipients');
        checkNoNul(m.recipient, 'recipient');
        break;
      case 'changeFrom':
        requireAction(granted, Action.ChangeFrom, 'changeFrom', 'changeFrom');
        checkNoNul(m.sender, 'sender');
        if (m.args !== undefined) checkNoNul(m.args, 'ESMTP arguments');
        break;
      case 'quarantine':
        requireAction(granted, Action.Quarantine, 'quarantine', 'quarantine');
        checkNoNul(m.reason, 'quarantine reason');
        if (m.reason.length === 0) throw new MilterUsageError('invalid-modification', 'quarantine needs a reason');
        break;
    }
  }
}

/** Splits a body source into chunks of at most {@link MAX_BODY_CHUNK} bytes without copying. */
export async function* chunkBody(source: BodySource): AsyncGenerator<Buffer> {
  const pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array> =
    source instanceof Uint8Array ? [source] : source instanceof Readable ? source : source;
  for await (const piece of pieces) {
    let rest = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (rest.length > MAX_BODY_CHUNK) {
      yield rest.subarray(0, MAX_BODY_CHUNK);
      rest = rest.subarray(MAX_BODY_CHUNK);
    }
    // The last piece is yielded with nothing of it kept here: while the writer waits for the socket, the piece is
    // no longer this generator's to hold (see frame-pool.ts: chunks held through such waits outlive the young
    // collections).
    if (rest.length > 0) yield rest;
  }
}

/** Translates checked modifications into replies, streaming body chunks. Header edits come first. */
export async function* modificationResponses(modifications: readonly Modification[]): AsyncGenerator<Response> {
  for (const m of modifications) {
    switch (m.kind) {
      case 'addHeader':
        yield { kind: 'addHeader', name: m.name, value: m.value };
        break;
      case 'insertHeader':
        yield { kind: 'insertHeader', index: m.index, name: m.name, value: m.value };
        break;
      case 'changeHeader':
        yield { kind: 'changeHeader', index: m.index, name: m.name, value: m.value };
        break;
      case 'deleteHeader':
        yield { kind: 'changeHeader', index: m.index, name: m.name, value: '' };
        break;
      case 'replaceBody': {
        let sent = false;
        for await (const chunk of chunkBody(m.body)) {
          sent = true;
          yield { kind: 'replaceBody', chunk };
        }
        // An empty replacement still has to reach the MTA, or the old body would stay.
        if (!sent) yield { kind: 'replaceBody', chunk: Buffer.alloc(0) };
        break;
      }
      case 'addRecipient':
        yield m.args === undefined
          ? { kind: 'addRecipient', recipient: m.recipient }
          : { kind: 'addRecipientWithArgs', recipient: m.recipient, args: m.args };
        break;
      case 'deleteRecipient':
        yield { kind: 'deleteRecipient', recipient: m.recipient };
        break;
      case 'changeFrom':
        yield m.args === undefined ? { kind: 'changeFrom', sender: m.sender } : { kind: 'changeFrom', sender: m.sender, args: m.args };
        break;
      case 'quarantine':
        yield { kind: 'quarantine', reason: m.reason };
        break;
    }
  }
}
